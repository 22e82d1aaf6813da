"""Reminders and deadlines of open asks: an engine part (plugged in by engine/assemble.py).

Every `asks.poll_seconds` it looks at the open asks. A recipient is reminded after
`asks.remind_after_seconds`, then after that times `asks.remind_backoff` for each reminder already
sent, at most `asks.max_reminders` times, but never while it is working on it (its status is
`working` and it has seen the ask). An ask past its `--due` time is reported to its sender once. Both are
messages from the engine (`system`), journalled with an `ask.remind` / `ask.overdue` event, so the count
and the report survive restarts, rebuilds and sync.

Time comes from `clock` (a test passes its own and calls `tick`); the loop only decides how often.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from thrum_engine.durations import human_age, iso, parse_iso
from thrum_engine.engine.per_engine import PerEngine
from thrum_engine.engine.tasks import cancel_and_wait
from thrum_engine.store import queries

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

log = logging.getLogger("thrum.asks")


def _t(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return parse_iso(ts)
    except ValueError:
        return None


def preview(text: str, n: int = 160) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


class AskService:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self._task: asyncio.Task | None = None
        self.reminded = 0
        self.overdue = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="thrum-asks")

    async def stop(self) -> None:
        await cancel_and_wait(self._task, log=log)
        self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.engine.settings.asks.poll_seconds)
            try:
                await self.tick()
            except Exception:  # a boundary: one bad round never ends the reminders
                log.exception("ask reminders failed")

    def next_reminder(self, row: dict) -> float | None:
        """When `row`'s recipient is next reminded (None: no more reminders)."""
        s = self.engine.settings.asks
        n = row["reminders"]
        if n >= s.max_reminders:
            return None
        start = _t(row["reminded_at"]) if n else _t(row["created_at"])
        if start is None:
            return None
        return start + s.remind_after_seconds * (s.remind_backoff**n)

    def local(self, agent: str) -> bool:
        """Whether `agent` was registered on this clone (or before sync): only here is it reminded."""
        origin = self.engine.agents.get(agent, {}).get("origin", "")
        return self.engine.journal.fires(origin)

    def working_on_it(self, row: dict) -> bool:
        agent = self.engine.agents.get(row["recipient"], {})
        return agent.get("status") == "working" and bool(row["seen_at"] or row["read_at"])

    async def tick(self, now: float | None = None) -> dict:
        """One look at the open asks at `now` (the clock's): reminders and overdue reports sent."""
        now = self.clock() if now is None else now
        rows = await queries.open_asks(self.engine.store, limit=10_000)
        overdue: dict[str, list[dict]] = {}
        reminded = 0
        for row in rows:
            if row["recipient"] not in self.engine.agents:
                continue
            due = _t(row["due_at"])
            if due is not None and row["overdue_at"] is None and now >= due and self.local(row["sender"]):
                overdue.setdefault(row["message_id"], []).append(row)
            if not self.local(row["recipient"]):
                continue  # its own clone's engine reminds it (sync brings the asks to every clone)
            at = self.next_reminder(row)
            if at is None or now < at or self.working_on_it(row):
                continue
            await self._remind(row, now)
            reminded += 1
        for rows_of in overdue.values():
            await self._report_overdue(rows_of, now)
        self.reminded += reminded
        self.overdue += len(overdue)
        return {"reminded": reminded, "overdue": len(overdue)}

    async def _remind(self, row: dict, now: float) -> None:
        mid, me = row["message_id"], row["recipient"]
        n = row["reminders"] + 1
        age = human_age(max(0.0, now - (_t(row["created_at"]) or now)))
        body = (
            f"Reminder {n}/{self.engine.settings.asks.max_reminders}: @{row['sender']} asked you {age} ago"
            f" and is waiting for an answer ({mid}): {preview(row['content'])}\n"
            f"Answer with `thrum reply {mid} TEXT`, or `thrum ack {mid} --note TEXT` when no reply is needed."
        )

        def also(_reminder_id: str) -> list[dict]:
            return [
                self.engine.event(
                    "ask.remind", "system", {"message_id": mid, "recipient": me, "at": iso(now)}
                )
            ]

        await self.engine.post(
            "system", body, to=["@" + me], also=also, extra={"reminds": mid}, meta={"reminds": mid}
        )
        log.info("reminded @%s of %s (%d)", me, mid, n)

    async def _report_overdue(self, rows: list[dict], now: float) -> None:
        first = rows[0]
        mid, sender = first["message_id"], first["sender"]
        who = [r["recipient"] for r in rows]
        mark = self.engine.event(
            "ask.overdue", "system", {"message_id": mid, "recipients": who, "at": iso(now)}
        )
        if sender not in self.engine.agents:
            await self.engine.commit(mark)  # nobody to tell: the ask is marked all the same
            return
        body = (
            f"Unanswered past its due time: your ask {mid} to {', '.join('@' + w for w in who)}"
            f" (due {first['due_at']}): {preview(first['content'])}"
        )
        await self.engine.post(
            "system", body, to=["@" + sender], also=lambda _id: [mark], extra={"overdue": mid}
        )
        log.info("ask %s overdue for %s", mid, ", ".join(who))


attach: PerEngine[AskService] = PerEngine(AskService)  # the engine's reminder service

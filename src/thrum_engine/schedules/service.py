"""The schedules' one timer: a heap of next fire times and a single asyncio timer for all of them.

Pending schedules cost nothing while they wait: no task or poll per schedule, one timer armed for
the soonest (and at most every MAX_SLEEP seconds, so a clock that jumps is noticed). A fire stores
the message and the `schedule.fire` event in one commit (both or neither), so a restart never
delivers twice; a fire missed while the engine was down is delivered once at start, marked late.
The heap follows the applied events (create, fire, cancel: local and synced alike), never a query.
`--until-reply` schedules are cancelled when someone other than their author writes in their thread.
With sync, every clone shows every schedule, but only the clone that created one fires it.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from thrum_engine.cron import cron_next
from thrum_engine.durations import iso, parse_iso
from thrum_engine.engine.tasks import cancel_and_wait
from thrum_engine.errors import ThrumError
from thrum_engine.schedules.model import LATE_AFTER
from thrum_engine.store import schedules as store_schedules

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

log = logging.getLogger("thrum.schedules")

MAX_SLEEP = 60.0
MAX_BATCH = 256  # fires started together (a backlog after downtime goes in rounds of this many)


class ScheduleService:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self._heap: list[tuple[float, str]] = []
        self._next: dict[str, float] = {}  # pending id -> its next fire (a heap entry that differs is stale)
        self._threads: dict[str, set[str]] = {}  # thread id -> its --until-reply schedules
        self._authors: dict[str, str] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._again = False
        self._unlisten: Callable[[], None] | None = None
        self._cancelling: set[asyncio.Task] = set()
        self.started_at = 0.0
        self.fired = 0
        self.lateness: deque[float] = deque(maxlen=10_000)  # seconds after its time each fire was stored
        self.wakeups = 0

    # -- lifecycle --
    async def start(self) -> None:
        self.started_at = self.clock()
        for r in await store_schedules.pending(self.engine.store):
            if self._ours(r["origin"]):
                self._track(r["id"], r["next_at"], r["author"], r["thread_id"] if r["until_reply"] else None)
        heapq.heapify(self._heap)
        self._unlisten = self.engine.bus.listen(self._on_applied)
        self._arm()

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        await cancel_and_wait(self._task, *self._cancelling, log=log)  # a fire's failure is only logged
        self._task = None

    def _ours(self, origin: str) -> bool:
        """Schedules are fired (and ended by a reply) by the clone that created them, never twice."""
        return self.engine.journal.fires(origin)

    @property
    def pending(self) -> int:
        return len(self._next)

    def next_fire(self) -> float | None:
        while self._heap and self._next.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # stale entries (fired, cancelled, moved) leave lazily
        return self._heap[0][0] if self._heap else None

    # -- the heap, kept by the applied events --
    def _track(
        self, sid: str, next_at: str | None, author: str, thread: str | None, *, push: bool = False
    ) -> None:
        if not next_at:
            return
        try:
            t = parse_iso(next_at)
        except ValueError:
            log.warning("schedule %s has an unreadable next fire time %r", sid, next_at)
            return
        self._next[sid] = t
        self._authors[sid] = author
        if thread:
            self._threads.setdefault(thread, set()).add(sid)
        if push:
            heapq.heappush(self._heap, (t, sid))
        else:
            self._heap.append((t, sid))

    def _untrack(self, sid: str) -> None:
        self._next.pop(sid, None)
        self._authors.pop(sid, None)
        for thread, group in list(self._threads.items()):
            if sid in group:
                group.discard(sid)
                if not group:
                    del self._threads[thread]

    def _on_applied(self, events: list[dict]) -> None:
        changed = False
        for ev in events:
            t = ev["type"]
            if t.startswith("schedule."):
                d = ev["data"]
                sid = d["schedule_id"]
                if t == "schedule.create":
                    if self._ours(d.get("origin", "")):
                        thread = d.get("thread_id") if d.get("until_reply") else None
                        self._track(sid, d.get("next_at"), ev["author"], thread, push=True)
                elif t == "schedule.fire":
                    if d.get("next_at") and sid in self._next:
                        t_next = parse_iso(d["next_at"])
                        self._next[sid] = t_next
                        heapq.heappush(self._heap, (t_next, sid))
                    else:
                        self._untrack(sid)
                else:
                    self._untrack(sid)
                changed = True
            elif t == "message.create" and self._threads:
                thread = ev["data"].get("thread_id")
                group = self._threads.get(thread) if thread else None
                if group:
                    answered = [s for s in group if self._authors.get(s) != ev["author"]]
                    if answered:
                        self._cancel_later(answered, f"answered by @{ev['author']}")
        if changed:
            self._arm()

    def _cancel_later(self, sids: list[str], reason: str) -> None:
        async def cancel() -> None:
            events = [
                self.engine.event("schedule.cancel", self._authors[s], {"schedule_id": s, "reason": reason})
                for s in sids
                if s in self._next
            ]
            if events:
                await self.engine.commit(*events)

        task = asyncio.get_running_loop().create_task(cancel())
        self._cancelling.add(task)
        task.add_done_callback(self._cancel_done)

    def _cancel_done(self, task: asyncio.Task) -> None:
        self._cancelling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("cancelling answered schedules failed: %s", task.exception())

    # -- the timer --
    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        soonest = self.next_fire()
        if soonest is None:
            return
        delay = min(max(0.0, soonest - self.clock()), MAX_SLEEP)
        self._handle = asyncio.get_running_loop().call_later(delay, self.wake)

    def wake(self) -> None:
        """Fire whatever is due now (by `clock`): the timer's callback, and a test's after moving its clock."""
        self._handle = None
        self.wakeups += 1
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._fire_due(), name="thrum-schedules")

    async def _fire_due(self) -> None:
        try:
            while True:
                self._again = False
                now = self.clock()
                due: list[tuple[str, float]] = []
                while len(due) < MAX_BATCH:
                    soonest = self.next_fire()
                    if soonest is None or soonest > now:
                        break
                    sid = heapq.heappop(self._heap)[1]
                    if all(sid != d[0] for d in due):  # a schedule fires at most once a round
                        due.append((sid, soonest))
                if due:
                    # Together: the writer's group commit stores a burst of fires in one fsync.
                    await asyncio.gather(*(self._fire_guarded(sid, t, now) for sid, t in due))
                if not self._again and len(due) < MAX_BATCH:
                    break
        finally:
            self._arm()

    async def _fire_guarded(self, sid: str, due: float, now: float) -> None:
        try:
            await self._fire(sid, due, now)
        except Exception:  # a boundary: one bad schedule never stops the others
            log.exception("schedule %s did not fire", sid)
            self._untrack(sid)

    async def _fire(self, sid: str, due: float, now: float) -> None:
        engine = self.engine
        row = await store_schedules.one(engine.store, sid)
        if row is None or row["status"] != "pending":
            self._untrack(sid)
            return
        author = row["author"]
        if author not in engine.agents:
            await self._end(sid, author, f"its author @{author} is no longer registered")
            return
        late = due < self.started_at - 0.5 or now - due > LATE_AFTER
        next_at = iso(cron_next(row["cron"], max(now, due))) if row["kind"] == "cron" else None
        scheduled = {"schedule_id": sid, "due": iso(due), "late": late}
        meta: dict = {"scheduled": scheduled}

        def fired(message_id: str) -> list[dict]:
            data = {"schedule_id": sid, "due": iso(due), "message_id": message_id, "late": late}
            if next_at:
                data["next_at"] = next_at
            return [engine.event("schedule.fire", author, data)]

        try:
            await engine.post(
                author,
                row["content"],
                to=_addresses(row["addressed"]),
                fmt=row["format"],
                thread_id=row["thread_id"],
                meta=meta,
                ask=bool(row["ask"]),  # each fire opens an ask for every recipient (asks/)
                also=fired,
            )
        except ThrumError as exc:  # nobody left to deliver to, the body over a lowered cap, ...
            await self._end(sid, author, f"failed: {exc}")
            return
        self.fired += 1
        self.lateness.append(self.clock() - due)

    async def _end(self, sid: str, author: str, reason: str) -> None:
        log.warning("schedule %s cancelled: %s", sid, reason)
        self._untrack(sid)
        await self.engine.commit(
            self.engine.event("schedule.cancel", author, {"schedule_id": sid, "reason": reason})
        )


def _addresses(stored: str) -> list[str]:
    import json

    return list(json.loads(stored))

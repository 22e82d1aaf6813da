"""Nudges: one line typed into an agent's pane when mail arrives for it.

Only when the pane is idle at its prompt, never while a human is typing in
an attached client, never into a dialog (deferred until it clears), never to
the sender, and at most one pending per pane (later mail coalesces into it).
A backstop re-nudges mail left unread too long.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from thrum_engine import delivery_paths
from thrum_engine.durations import iso
from thrum_engine.engine.tasks import TaskSet, cancel_and_wait
from thrum_engine.self_notes import note_to_self
from thrum_engine.store import queries
from thrum_engine.tmux.manager import Session, TmuxManager
from thrum_engine.tmux.panes import PaneState
from thrum_engine.tmux.server import TmuxError

log = logging.getLogger("thrum.nudge")


@dataclass
class Pending:
    agent: str
    message_ids: list[str] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)
    since: float = field(default_factory=time.time)


def nudge_text(p: Pending, runtime: str) -> str:
    senders = ", ".join("@" + s for s in dict.fromkeys(p.senders))
    n = len(p.message_ids)
    what = f"New message from {senders}" if n == 1 else f"{n} new messages from {senders}"
    text = f"{what} — run `thrum inbox` (reads and marks them read)"
    # In a plain shell the line would run as a command: make it a comment.
    return "# " + text if runtime == "shell" else text


class Nudger:
    def __init__(self, engine, manager: TmuxManager) -> None:
        self.engine = engine
        self.m = manager
        self.pending: dict[str, Pending] = {}  # session name -> what to say
        self._busy: set[str] = set()  # sessions with a delivery attempt in flight
        self._retry: dict[str, asyncio.TimerHandle] = {}
        self._backstop: asyncio.Task | None = None
        self._renudged: dict[str, float] = {}  # agent -> when the backstop last fired for it
        self._tasks = TaskSet(log)  # deliveries in flight
        self.sent = 0

    def start(self) -> None:
        delivery_paths.attach(self.engine)  # the other paths see each message before the nudger does
        self._unlisten = self.engine.bus.listen(self.on_events)
        self.m.listeners.append(self.on_pane_state)
        self._backstop = asyncio.create_task(self._backstop_loop(), name="thrum-nudge-backstop")

    async def stop(self) -> None:
        self._unlisten()
        for h in self._retry.values():
            h.cancel()
        await self._tasks.close()
        await cancel_and_wait(self._backstop)

    # -- triggers --
    def on_events(self, events: list[dict]) -> None:
        for ev in events:
            if ev["type"] != "message.create" or ev["data"].get("typed"):
                continue  # a typed first prompt is in the pane already
            for r in ev["data"].get("recipients", ()):
                if note_to_self(ev, r):
                    continue
                s = self.m.for_agent(r)
                if s is None:
                    continue
                p = self.pending.setdefault(s.name, Pending(agent=r))
                p.message_ids.append(ev["data"]["message_id"])
                p.senders.append(ev["author"])
                self.kick(s.name)

    def on_pane_state(self, s: Session, state: PaneState) -> None:
        if s.name in self.pending and state.state == "idle":
            self.kick(s.name)

    def kick(self, name: str, delay: float = 0.0) -> None:
        if name in self._retry:
            self._retry.pop(name).cancel()
        if delay > 0:
            self._retry[name] = asyncio.get_running_loop().call_later(delay, self.kick, name)
            return
        if name not in self._busy:
            self._busy.add(name)
            self._tasks.spawn(self._deliver(name), name=f"thrum-nudge-{name}")

    # -- delivery --
    async def _deliver(self, name: str) -> None:
        try:
            s = self.m.sessions.get(name)
            p = self.pending.get(name)
            if s is None or p is None:
                self.pending.pop(name, None)
                return
            await self.m.refresh(s)  # the freshest reading of the stream, right before typing
            if s.state.state != "idle":
                return  # deferred: the next change to idle kicks again
            if await self.m.human_typing(s):
                self.kick(name, delay=self.m.settings.typing_seconds)
                return
            if self.pending.get(name) is not p:
                return
            # A channel, a wait or a hook may deliver it without typing: only the rest is nudged.
            asked = list(p.message_ids)
            keep, retry = await delivery_paths.attach(self.engine).sift(p.agent, asked)
            if self.pending.get(name) is not p:
                return
            if retry is not None or not keep:
                if retry is None:
                    del self.pending[name]
                else:
                    self.kick(name, delay=retry)
                return
            gone = set(asked) - set(keep)
            p.senders = [s for m, s in zip(p.message_ids, p.senders) if m not in gone]
            p.message_ids = [m for m in p.message_ids if m not in gone]
            del self.pending[name]

            session = s

            async def still_idle() -> bool:  # in the pane's typing turn: another writer may have typed
                return (await self.m.refresh(session)).state == "idle"

            try:
                typed = await self.m.type_into(s, nudge_text(p, s.runtime.name), ready=still_idle)
            except TmuxError as exc:
                log.warning("nudge into %s failed: %s", name, exc)
                self._put_back(name, p)
                return
            if not typed:
                self._put_back(name, p)  # the next change to idle kicks again
                return
            self.sent += 1
            await self.engine.commit(
                self.engine.event(
                    "message.notified",
                    "system",
                    {"recipient": p.agent, "message_ids": p.message_ids, "at": iso(), "via": "nudge"},
                )
            )
        except Exception:
            log.exception("nudge for %s failed", name)
        finally:
            self._busy.discard(name)
            if name in self.pending and name not in self._retry:
                s = self.m.sessions.get(name)
                if s is not None and s.state.state == "idle":
                    self.kick(name, delay=0.5)

    def _put_back(self, name: str, p: Pending) -> None:
        """An untyped nudge is pending again, ahead of mail that arrived meanwhile."""
        later = self.pending.get(name)
        if later is not None and later is not p:
            fresh = [(m, a) for m, a in zip(later.message_ids, later.senders) if m not in p.message_ids]
            p.message_ids += [m for m, _ in fresh]
            p.senders += [a for _, a in fresh]
        self.pending[name] = p

    async def _backstop_loop(self) -> None:
        """Re-nudge agents whose mail stayed unread past the backstop (a timer, not pane polling)."""
        every = self.m.settings.nudge_backstop_seconds
        while True:
            await asyncio.sleep(max(every / 4, 1.0))
            try:
                await self.backstop_once(every)
            except Exception:
                log.exception("nudge backstop failed")

    async def backstop_once(self, older_than: float) -> int:
        now = time.time()
        agents = {
            s.agent: s
            for s in self.m.sessions.values()
            if s.agent and now - self._renudged.get(s.agent, 0) >= older_than
        }
        if not agents:
            return 0
        rows = await queries.nudge_backlog(self.engine.store, list(agents), iso(time.time() - older_than))
        for r in rows:
            s = agents[r["recipient"]]
            p = self.pending.setdefault(s.name, Pending(agent=r["recipient"]))
            if r["message_id"] not in p.message_ids:
                p.message_ids.append(r["message_id"])
                p.senders.append(r["author"])
        for agent in {r["recipient"] for r in rows}:
            self._renudged[agent] = now
            self.kick(agents[agent].name)
        return len(rows)

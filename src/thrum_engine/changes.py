"""`events.wait`: the change feed for a console attached over the socket. A long poll -- one
request returns as soon as anything is applied after the caller's cursor -- gives the attached
console the same push the in-process one gets from the bus, over the plain request/response
protocol every client already speaks."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import Field

from thrum_engine.engine.caller import Caller
from thrum_engine.engine.registry import method
from thrum_engine.errors import ThrumError
from thrum_engine.model import Params

if TYPE_CHECKING:
    from thrum_engine.engine.bus import Bus
    from thrum_engine.engine.core import Engine

KEEP = 2000  # recent changes kept; a cursor older than that gets `reset` and refetches everything
SNIPPET = 200
# An attached console long-polls for up to 20 s and calls again at once (1 s after a failure): one
# that asked this recently is open, and shows its operator their mail.
WATCH_GRACE_SECONDS = 30.0


class ChangeFeed:
    """Built by the composition root; it listens to the bus only from the first `events.wait`, so an
    engine no console attaches to pays nothing per event."""

    def __init__(self, bus: Bus) -> None:
        self.seq = 0
        self.recent: deque[dict] = deque(maxlen=KEEP)
        self._wakeup = asyncio.Event()
        self._bus = bus
        self._unlisten: Callable[[], None] | None = None
        self.watching: dict[str, float] = {}  # who long-polls (an attached console's operator) -> when last

    def watched_by(self, name: str) -> bool:
        """An attached console of `name`'s is open (it asked for changes moments ago)."""
        at = self.watching.get(name)
        return at is not None and (at == float("inf") or time.monotonic() - at < WATCH_GRACE_SECONDS)

    def open(self) -> None:
        if self._unlisten is None:
            self._unlisten = self._bus.listen(self.on_events)

    def close(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten: Callable[[], None] | None = None

    def on_events(self, events: list[dict]) -> None:
        for ev in events:
            self.seq += 1
            data = ev.get("data") or {}
            brief: dict = {}
            if ev["type"] == "message.create":
                brief = {
                    "recipients": list(data.get("recipients") or ()),
                    "content": str(data.get("content", ""))[:SNIPPET],
                }
            self.recent.append(
                {
                    "seq": self.seq,
                    "type": ev["type"],
                    "author": ev.get("author", ""),
                    "ts": ev.get("ts"),
                    "data": brief,
                }
            )
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    def since(self, after: int) -> tuple[list[dict], bool]:
        """(changes after the cursor, whether the cursor fell out of the window)."""
        if self.recent and after < self.recent[0]["seq"] - 1:
            return list(self.recent), True
        return [c for c in self.recent if c["seq"] > after], after > self.seq

    async def wait(self, after: int, timeout: float) -> tuple[list[dict], bool]:
        changes, reset = self.since(after)
        if changes or reset or timeout <= 0:
            return changes, reset
        wakeup = self._wakeup
        try:
            await asyncio.wait_for(wakeup.wait(), timeout)
        except TimeoutError:
            pass
        return self.since(after)


def feed_of(engine: Engine) -> ChangeFeed:
    if engine.changes is None:
        raise ThrumError("this engine has no change feed")
    engine.changes.open()
    return engine.changes


class EventsWaitParams(Params):
    after: int | None = Field(None, ge=0)  # the last seq seen; None: just tell me the current cursor
    timeout: float = Field(20.0, ge=0, le=25.0)  # stays under the socket's per-request deadline


@method("events.wait", EventsWaitParams)
async def events_wait(engine: Engine, caller: Caller, p: EventsWaitParams) -> dict:
    feed = feed_of(engine)
    if p.after is None:
        if caller.name:
            feed.watching[caller.name] = time.monotonic()
        return {"changes": [], "cursor": feed.seq, "reset": False}
    if caller.name:
        feed.watching[caller.name] = float("inf")  # in the poll: watching until it returns
    try:
        changes, reset = await feed.wait(p.after, p.timeout)
    finally:
        if caller.name:
            feed.watching[caller.name] = time.monotonic()
    return {"changes": changes, "cursor": feed.seq, "reset": reset}

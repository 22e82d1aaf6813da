"""`events.wait`: the change feed for a console attached over the socket. A long poll -- one
request returns as soon as anything is applied after the caller's cursor -- gives the attached
console the same push the in-process one gets from the bus, over the plain request/response
protocol every client already speaks."""

from __future__ import annotations

import asyncio
from collections import deque

from pydantic import Field

from thrum_engine.engine.core import Caller, Engine
from thrum_engine.engine.registry import method
from thrum_engine.model import Params

KEEP = 2000  # recent changes kept; a cursor older than that gets `reset` and refetches everything
SNIPPET = 200


class ChangeFeed:
    def __init__(self, engine: Engine) -> None:
        self.seq = 0
        self.recent: deque[dict] = deque(maxlen=KEEP)
        self._wakeup = asyncio.Event()
        engine.bus.listen(self.on_events)

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
    feed = getattr(engine, "change_feed", None)
    if feed is None:
        feed = engine.change_feed = ChangeFeed(engine)  # type: ignore[attr-defined]
    return feed


class EventsWaitParams(Params):
    after: int | None = Field(None, ge=0)  # the last seq seen; None: just tell me the current cursor
    timeout: float = Field(20.0, ge=0, le=25.0)  # stays under the socket's per-request deadline


@method("events.wait", EventsWaitParams)
async def events_wait(engine: Engine, caller: Caller, p: EventsWaitParams) -> dict:
    feed = feed_of(engine)
    if p.after is None:
        return {"changes": [], "cursor": feed.seq, "reset": False}
    changes, reset = await feed.wait(p.after, p.timeout)
    return {"changes": changes, "cursor": feed.seq, "reset": reset}

"""In-process push: `wait` callers and other subscribers are woken by applied events, never by polling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from thrum_engine.errors import EngineBusy

# Blocked `wait`s one caller name may hold at once. A wait holds its connection busy, and a busy
# connection is never closed to make room at the global cap, so without this a script forking past
# the per-process cap could fill the engine with waits and lock every agent out (R5). An agent
# needs one or two (a `thrum wait` in a loop, an MCP call); eight leaves room for filters side by side.
MAX_WAITS_PER_CALLER = 8


@dataclass(eq=False)
class Waiter:
    recipient: str
    matches: Callable[[dict], bool]
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    gone: asyncio.Future | None = None  # the caller's hang-up (Caller.gone): done, it takes nothing

    def open(self) -> bool:
        return not self.future.done() and not (self.gone is not None and self.gone.done())


class Bus:
    def __init__(self) -> None:
        # recipient -> its waiters, oldest first (a dict: ordered, where a set is not)
        self._waiters: dict[str, dict[Waiter, None]] = {}
        self._listeners: list[Callable[[list[dict]], None]] = []

    def add_waiter(self, waiter: Waiter) -> None:
        """Past MAX_WAITS_PER_CALLER the oldest open wait of that caller is ended, not the new one
        refused: a wait whose client died unnoticed (no hang-up seen) is always the oldest, and the
        newest is the one a live agent is blocked on, so a refusal would lock the agent out of
        `wait` until its stale ones timed out (an hour at most). The ended one answers an error
        saying why, never a `timeout` it did not reach."""
        group = self._waiters.setdefault(waiter.recipient, {})
        open_ = [w for w in group if w.open()]
        for old in open_[: max(0, len(open_) + 1 - MAX_WAITS_PER_CALLER)]:
            del group[old]
            old.future.set_exception(
                EngineBusy(
                    f"this wait was ended: @{waiter.recipient} opened a newer one, and one caller may"
                    f" have at most {MAX_WAITS_PER_CALLER} waits open at once"
                )
            )
            old.future.exception()  # retrieved: one that took its backlog instead is not logged
        group[waiter] = None

    def remove_waiter(self, waiter: Waiter) -> None:
        group = self._waiters.get(waiter.recipient)
        if group is not None:
            group.pop(waiter, None)
            if not group:
                del self._waiters[waiter.recipient]

    def waiting(self, recipient: str) -> bool:
        """Whether a `wait` for `recipient` is blocked right now."""
        return any(w.open() for w in self._waiters.get(recipient, ()))

    def took(self, ev: dict, recipient: str) -> bool:
        """Whether a `wait` of `recipient` was woken by `ev` (listeners run after waiters): that wait
        delivers it, so no other path needs to."""
        return any(
            w.future.done()
            and not w.future.cancelled()
            and w.future.exception() is None
            and w.future.result() is ev
            for w in self._waiters.get(recipient, ())
        )

    def listen(self, fn: Callable[[list[dict]], None]) -> Callable[[], None]:
        """Subscribe to every applied batch (the console's live view); returns an unsubscribe."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn)

    def publish(self, events: list[dict]) -> None:
        if self._waiters:
            for ev in events:
                if ev["type"] != "message.create":
                    continue
                for r in ev["data"].get("recipients", ()):
                    for w in list(self._waiters.get(r, ())):
                        if w.open() and w.matches(ev):
                            w.future.set_result(ev)
        for fn in list(self._listeners):
            fn(events)

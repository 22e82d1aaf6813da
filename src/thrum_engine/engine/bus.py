"""In-process push: `wait` callers and other subscribers are woken by applied events, never by polling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field


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
        self._waiters: dict[str, set[Waiter]] = {}
        self._listeners: list[Callable[[list[dict]], None]] = []

    def add_waiter(self, waiter: Waiter) -> None:
        self._waiters.setdefault(waiter.recipient, set()).add(waiter)

    def remove_waiter(self, waiter: Waiter) -> None:
        group = self._waiters.get(waiter.recipient)
        if group is not None:
            group.discard(waiter)
            if not group:
                del self._waiters[waiter.recipient]

    def waiting(self, recipient: str) -> bool:
        """Whether a `wait` for `recipient` is blocked right now."""
        return any(w.open() for w in self._waiters.get(recipient, ()))

    def took(self, ev: dict, recipient: str) -> bool:
        """Whether a `wait` of `recipient` was woken by `ev` (listeners run after waiters): that wait
        delivers it, so no other path needs to."""
        return any(
            w.future.done() and not w.future.cancelled() and w.future.result() is ev
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

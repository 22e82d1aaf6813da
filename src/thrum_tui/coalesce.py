"""The console's two rate limits, each one small object instead of flags on the app.

Under a flood of engine events the screen must stay current without redraws starving keystrokes:
`Coalescer` runs an async refresh at most one at a time and at most every `min_seconds`, however
many requests arrive; `Throttle` calls a plain function at most every `min_seconds`, and always
once more after the last request (so the last change is never left unshown)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any


class Coalescer:
    """`request(parts)` runs `job(parts)`. While a run is in flight, any number of requests cause
    exactly one more run, covering every part any of them asked for; that run starts no sooner
    than `min_seconds` after the previous one started (a callable: asked before each run, so the
    app can space its refreshes further while the operator types).

    `start` runs the loop's coroutine (the app passes `run_worker`, so the loop is a worker that
    Textual cancels at exit); the job reports its own errors."""

    def __init__(
        self,
        job: Callable[[frozenset[str]], Awaitable[None]],
        *,
        start: Callable[[Coroutine[Any, Any, None]], object],
        min_seconds: float | Callable[[], float],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._job = job
        self._sleep = sleep
        self._start = start
        self._min = min_seconds if callable(min_seconds) else lambda: min_seconds
        self._clock = clock
        self._parts: frozenset[str] = frozenset()
        self._last_start = float("-inf")
        self._at_once = False
        self.pending = False  # a request is waiting for the next run
        self.running = False  # the loop is running (or about to)

    @property
    def idle(self) -> bool:
        return not (self.running or self.pending)

    def request(self, parts: frozenset[str], *, at_once: bool = False) -> None:
        """`at_once`: the next run does not wait out the interval (what the operator just did must
        show now; the interval is for floods of engine events)."""
        self._parts |= parts
        self._at_once |= at_once
        self.pending = True
        if not self.running:
            self.running = True
            self._start(self._loop())

    async def _loop(self) -> None:
        try:
            while self.pending:
                # Also when the last run ended before this request came: a flood whose events
                # each arrive just after a run ends must not get one run per event.
                wait = 0.0 if self._at_once else self._min() - (self._clock() - self._last_start)
                if wait > 0:
                    await self._sleep(wait)
                self.pending = self._at_once = False
                parts, self._parts = self._parts, frozenset()
                self._last_start = self._clock()
                await self._job(parts)
        finally:
            self.running = False


class Throttle:
    """`__call__` calls `fn` now when it last ran `min_seconds` ago or more, else once when that
    time is up; requests in between merge into that one call. `set_timer` is the app's."""

    def __init__(
        self,
        fn: Callable[[], None],
        *,
        set_timer: Callable[[float, Callable[[], None]], object],
        min_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fn = fn
        self._set_timer = set_timer
        self._min = min_seconds
        self._clock = clock
        self._last = float("-inf")
        self._later = False

    def __call__(self) -> None:
        if self._later:
            return
        wait = self._min - (self._clock() - self._last)
        if wait <= 0:
            self._last = self._clock()
            self._fn()
        else:
            self._later = True
            self._set_timer(wait, self._due)

    def _due(self) -> None:
        self._later = False
        self._last = self._clock()
        self._fn()

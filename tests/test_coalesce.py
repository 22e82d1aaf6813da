"""The console's rate limits, on a fake clock: no wall-clock thresholds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from thrum_tui.coalesce import Coalescer, Throttle


class FakeTime:
    """A fake clock and sleep for a Coalescer, and the tasks its loops ran in. `sleep_advances`:
    a sleep moves the clock on by what it slept."""

    def __init__(self, now: float, *, sleep_advances: bool = False) -> None:
        self.now = now
        self.slept: list[float] = []
        self.tasks: list[asyncio.Task] = []
        self.sleep_advances = sleep_advances

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.sleep_advances:
            self.now += seconds

    def coalescer(
        self, job: Callable[[frozenset[str]], Awaitable[None]], min_seconds: float | Callable[[], float]
    ) -> Coalescer:
        return Coalescer(
            job,
            start=lambda coro: self.tasks.append(asyncio.ensure_future(coro)),
            min_seconds=min_seconds,
            clock=lambda: self.now,
            sleep=self.sleep,
        )


async def test_requests_during_a_run_cause_exactly_one_more_run_with_every_part():
    runs: list[frozenset[str]] = []
    gate = asyncio.Event()
    tasks: list[asyncio.Task] = []

    async def job(parts: frozenset[str]) -> None:
        runs.append(parts)
        if len(runs) == 1:
            await gate.wait()

    c = Coalescer(job, start=lambda coro: tasks.append(asyncio.ensure_future(coro)), min_seconds=0.0)
    c.request(frozenset({"team"}))
    await asyncio.sleep(0)
    for part in ("mail", "side", "mail"):
        c.request(frozenset({part}))
    assert len(tasks) == 1 and c.running and c.pending
    gate.set()
    await tasks[0]
    assert runs == [frozenset({"team"}), frozenset({"mail", "side"})]
    assert c.idle


async def test_the_next_run_waits_out_the_minimum_interval():
    t = FakeTime(100.0)

    async def job(parts: frozenset[str]) -> None:
        t.now += 0.1  # the run itself took 0.1 s
        if len(t.slept) == 0 and parts == frozenset({"a"}):
            c.request(frozenset({"b"}))

    c = t.coalescer(job, 0.5)
    c.request(frozenset({"a"}))
    await t.tasks[0]
    assert len(t.slept) == 1 and abs(t.slept[0] - 0.4) < 1e-9  # 0.5 s from the start of the last run


def test_a_throttle_calls_at_once_then_once_more_after_the_interval():
    now = [0.0]
    calls: list[float] = []
    timers: list[tuple[float, object]] = []
    t = Throttle(
        lambda: calls.append(now[0]),
        set_timer=lambda delay, fn: timers.append((delay, fn)),
        min_seconds=0.5,
        clock=lambda: now[0],
    )
    t()
    assert calls == [0.0] and not timers
    now[0] = 0.2
    t()
    t()
    t()
    assert calls == [0.0] and len(timers) == 1 and abs(timers[0][0] - 0.3) < 1e-9
    now[0] = 0.5
    timers[0][1]()  # the timer fires: the merged requests are one call
    assert calls == [0.0, 0.5]
    now[0] = 1.2
    t()
    assert calls == [0.0, 0.5, 1.2]


async def test_the_interval_is_asked_before_each_run():
    t = FakeTime(0.0)
    paces = iter([9.0, 2.0, 0.5])  # asked before each run; the first has nothing to wait for
    runs: list[frozenset[str]] = []

    async def job(parts: frozenset[str]) -> None:
        runs.append(parts)
        if len(runs) < 3:
            c.request(frozenset({f"r{len(runs)}"}))

    c = t.coalescer(job, lambda: next(paces))
    c.request(frozenset({"a"}))
    await t.tasks[0]
    assert t.slept == [2.0, 0.5] and len(runs) == 3


async def test_a_request_after_a_run_ended_still_waits_out_the_interval():
    """Events that each arrive just after a refresh ends (a busy team) got a refresh each: the
    interval held only between runs of one loop."""
    t = FakeTime(10.0, sleep_advances=True)
    runs: list[float] = []

    async def job(parts: frozenset[str]) -> None:
        runs.append(t.now)
        t.now += 0.05

    c = t.coalescer(job, 0.5)
    c.request(frozenset({"a"}))
    await t.tasks[-1]
    assert c.idle and runs == [10.0] and not t.slept  # the first run is at once
    t.now += 0.01
    c.request(frozenset({"b"}))  # the loop had ended: a new one starts, and waits
    await t.tasks[-1]
    assert len(runs) == 2 and abs(runs[1] - 10.5) < 1e-9, runs
    t.now += 5.0
    c.request(frozenset({"c"}))  # long after: at once again
    await t.tasks[-1]
    assert len(t.slept) == 1 and runs[2] == t.now - 0.05


async def test_an_at_once_request_does_not_wait_out_the_interval():
    """What the operator just did shows now; only engine events wait for the interval."""
    t = FakeTime(10.0, sleep_advances=True)
    runs: list[float] = []

    async def job(parts: frozenset[str]) -> None:
        runs.append(t.now)

    c = t.coalescer(job, 0.5)
    c.request(frozenset({"a"}))
    await t.tasks[-1]
    t.now += 0.1
    c.request(frozenset({"b"}), at_once=True)
    await t.tasks[-1]
    c.request(frozenset({"c"}))  # an engine event right after: waits again
    await t.tasks[-1]
    assert runs == [10.0, 10.1, 10.6] and t.slept == [0.5]

"""`TaskSet`: a service's background tasks are kept until done, their failures logged when they
happen, and whatever still runs is cancelled and awaited when the service stops."""

from __future__ import annotations

import asyncio
import gc
import logging

from thrum_engine.engine.tasks import TaskSet, cancel_and_wait


async def test_tasks_are_kept_failures_logged_and_the_rest_cancelled_on_close(caplog):
    tasks = TaskSet(logging.getLogger("thrum.test"))
    done = asyncio.Event()
    cancelled = asyncio.Event()

    async def finishes() -> None:
        await asyncio.sleep(0)
        done.set()

    async def fails() -> None:
        raise ValueError("boom")

    async def waits() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    tasks.spawn(finishes())  # nobody else holds it: the set must
    gc.collect()
    tasks.spawn(fails(), name="failing")
    tasks.spawn(waits())
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.01)
    assert len(tasks) == 1  # only the waiting one is left
    assert any("failing" in r.getMessage() and r.exc_info for r in caplog.records)
    await tasks.close()
    assert cancelled.is_set() and len(tasks) == 0

    later = waits()
    assert tasks.spawn(later) is None  # refused once closed, and the coroutine closed unrun
    assert later.cr_frame is None


async def test_cancel_and_wait_ends_each_task_logs_failures_and_keeps_the_callers_cancellation(caplog):
    async def forever() -> None:
        await asyncio.Event().wait()

    async def fails() -> None:
        raise RuntimeError("a bug")

    running = asyncio.create_task(forever())
    failed = asyncio.create_task(fails(), name="the-bad-one")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="thrum.test"):
        await cancel_and_wait(running, None, failed, log=logging.getLogger("thrum.test"))
    assert running.cancelled() and failed.done()
    assert any("the-bad-one" in r.getMessage() for r in caplog.records)
    await cancel_and_wait()  # nothing to do

    # The one stopping is cancelled itself while it waits: it still waits for the task to end, then
    # that cancellation goes on (it is not swallowed as the task's own was).
    stubborn_started, may_end = asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        stubborn_started.set()
        while not may_end.is_set():
            try:
                await may_end.wait()
            except asyncio.CancelledError:
                continue  # refuses to end, so its stopper waits

    slow = asyncio.create_task(stubborn())
    await stubborn_started.wait()
    stopper = asyncio.create_task(cancel_and_wait(slow))
    await asyncio.sleep(0.01)
    stopper.cancel()
    await asyncio.sleep(0.01)
    assert not stopper.done()  # the task has not ended yet
    may_end.set()
    try:
        await stopper
    except asyncio.CancelledError:
        pass
    assert stopper.cancelled() and slow.done()

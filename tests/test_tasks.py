"""`TaskSet`: a service's background tasks are kept until done, their failures logged when they
happen, and whatever still runs is cancelled and awaited when the service stops."""

from __future__ import annotations

import asyncio
import gc
import logging

from thrum_engine.engine.tasks import TaskSet


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

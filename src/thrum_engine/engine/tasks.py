"""`TaskSet`: the background tasks one service starts. The event loop keeps only a weak reference
to a task, so one nobody holds can vanish mid-run, and its exception is reported only when it is
garbage-collected; a service keeps its tasks here instead, has their failures logged as they
happen, and cancels and awaits whatever is still running when it stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


class TaskSet:
    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._tasks: set[asyncio.Task] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task | None:
        """Run `coro` in the background (None, and `coro` closed unrun, once the set is closed)."""
        if self._closed:
            coro.close()
            return None
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel what still runs and wait for it; later `spawn`s are refused."""
        self._closed = True
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def cancel_and_wait(*tasks: asyncio.Task | None, log: logging.Logger | None = None) -> None:
    """Cancel `tasks` (None and finished ones are fine) and wait until each has ended. A task's own
    failure is logged (with `log`), never raised, so one bad task never stops a shutdown; the
    caller's own cancellation still propagates (gather is cancelled with it)."""
    live = [t for t in tasks if t is not None]
    for t in live:
        t.cancel()
    if not live:
        return
    for t, result in zip(live, await asyncio.gather(*live, return_exceptions=True)):
        if log is not None and isinstance(result, Exception):
            log.error("task %s had failed", t.get_name(), exc_info=result)

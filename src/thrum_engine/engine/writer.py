"""Group commit: the single path by which state changes become durable.

Events queued while a batch is being written form the next batch, so one fsync
and one SQLite transaction cover every request that arrived in the meantime.
A request is acknowledged only after both the fsync and the projection commit.

Write order on failure: the projection commit is the commit point. A batch is
written and fsynced to the journal, then applied to SQLite; when that commit
fails (disk full, I/O error, a bug in an applier) the batch's lines are cut back
out of the journal (truncated to where the batch began) before the failure is
reported. So a send is either acknowledged and visible, or fails and leaves no
line that a later start or rebuild could bring back. Only a crash between the
fsync and the cut can leave one, and then the sender never got an answer either
way (the CLI says the outcome is unknown); the next start applies it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from thrum_engine import fastjson
from thrum_engine.journal import Journal
from thrum_engine.store import Store

log = logging.getLogger("thrum.writer")


# Gathering a batch under load (`Writer._gather`): at most this many turns of the loop, this long,
# only when the previous batch ended this recently, and not once this many requests are queued.
GATHER_TURNS = 16
GATHER_SECONDS = 0.001
GATHER_AFTER_BATCH_SECONDS = 0.002
GATHER_ENOUGH = 32


class JournalWriteFailed(Exception):
    pass


def encode(event: dict) -> bytes:
    """One journal line: sorted keys, no spaces, UTF-8 (`store.lines` matches this shape)."""
    return fastjson.dumps(event, sort_keys=True) + b"\n"


class Writer:
    def __init__(self, journal: Journal, store: Store, on_applied: Callable[[list[dict]], None]) -> None:
        self.journal = journal
        self.store = store
        self.on_applied = on_applied
        self.lock = store.write_lock  # held per batch; rebuild takes it to pause writes
        self._queue: asyncio.Queue[tuple[list[dict], asyncio.Future]] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self.batches = 0
        self.events_written = 0
        self._last_batch_end = float("-inf")
        self._last_batch_size = 0
        # Fault injection for the durability tests: while the file this names exists, the engine
        # deletes it and exits at once right after a batch's journal fsync, before the projection
        # commit and before any answer (a kill -9 at the worst moment, on cue; one-shot).
        self._exit_after_fsync = os.environ.get("THRUM_FAULT_EXIT_AFTER_FSYNC") or None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="thrum-writer")

    def queue(self, events: list[dict]) -> asyncio.Future:
        """Queue `events`; the future resolves once they are fsynced in the journal and applied to
        the projection (or fails with JournalWriteFailed)."""
        if self._task is None or self._task.done():
            raise JournalWriteFailed("the engine is shutting down")
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((events, fut))
        return fut

    async def submit(self, events: list[dict]) -> None:
        """Resolve once `events` are fsynced in the journal and applied to the projection."""
        await self.queue(events)  # a cancelled caller leaves the events queued: they are still written

    async def _gather(self) -> None:
        """While several clients keep sending (the last batch held more than one request and ended
        moments ago), yield the loop a few turns before closing a batch: a request takes several
        turns from its socket to this queue, and the ones already read join this batch instead of
        starting the next. Fewer, larger batches: with 16 blocking clients, about a quarter less
        CPU a message and a sixth more of them (bench/README, session 13). An idle engine's
        request, or a lone client's, does not wait; a turn made long by other work (the console
        drawing) ends the wait."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._last_batch_size < 2 or now - self._last_batch_end > GATHER_AFTER_BATCH_SECONDS:
            return  # idle, or one client alone: nobody else's request is on its way
        deadline = now + GATHER_SECONDS
        for _ in range(GATHER_TURNS):
            if self._queue.qsize() >= GATHER_ENOUGH:  # pipelined clients fill a batch on their own
                return
            await asyncio.sleep(0)
            if loop.time() >= deadline:
                return

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first[0] is None:  # type: ignore[comparison-overlap]
                first[1].set_result(None)
                return
            await self._gather()
            batch = [first]
            stop = None
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item[0] is None:  # type: ignore[comparison-overlap]
                    stop = item
                    break
                batch.append(item)
            try:
                await self._commit(batch)
            except Exception as exc:  # the writer must outlive any one bad batch
                log.exception("commit failed")
                self._fail(batch, f"commit failed: {exc}")
            self._last_batch_end, self._last_batch_size = asyncio.get_running_loop().time(), len(batch)
            if stop is not None:
                stop[1].set_result(None)
                return

    async def _commit(self, batch: list[tuple[list[dict], asyncio.Future]]) -> None:
        # Shard names are chosen under the lock: sync may move this clone to a new id between batches
        # (`Engine.move_clone`), and no line may go to a shard of the old one after that.
        async with self.lock:
            await self._commit_locked(batch)

    async def _commit_locked(self, batch: list[tuple[list[dict], asyncio.Future]]) -> None:
        lines: dict[str, list[bytes]] = {}
        events = []
        good = []
        for evs, fut in batch:
            try:
                encoded = [(self.journal.shard_for(ev["author"]), encode(ev)) for ev in evs]
            except (UnicodeEncodeError, TypeError, ValueError) as exc:
                if not fut.done():
                    fut.set_exception(JournalWriteFailed(f"cannot store this request: {exc}"))
                continue
            for shard, line in encoded:
                lines.setdefault(shard, []).append(line)
            events += evs
            good.append((evs, fut))
        batch = good
        if not batch:
            return
        undo_failed: list[OSError] = []

        def undo() -> None:  # on the writer thread, right after the failed transaction
            try:
                self.journal.undo_last_append()
            except OSError as exc:
                undo_failed.append(exc)

        try:
            # Journal write + fsync, then the projection transaction: one hop to the writer thread.
            await self.store.apply(events, {}, before=lambda: self._append(lines), undo=undo)
        except OSError as exc:  # from the journal write; `append` has truncated the shards back
            log.error("journal write failed: %s", exc)
            self._fail(batch, f"journal write failed: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 -- a boundary: every failure is logged and fails the batch
            if undo_failed:
                log.critical(
                    "projection update failed (%s) and the journal could not be cut back (%s):"
                    " the next start applies the batch",
                    exc,
                    undo_failed[0],
                )
                self._fail(
                    batch,
                    f"projection update failed ({exc}); the journal kept the request, so"
                    " it may still appear after a restart",
                )
            else:
                log.error("projection update failed, batch taken back out of the journal: %s", exc)
                self._fail(batch, f"projection update failed (nothing was stored): {exc}")
            return
        self.batches += 1
        self.events_written += len(events)
        try:
            self.on_applied(events)
        except Exception:
            log.exception("post-apply hook failed")
        for _, fut in batch:
            if not fut.done():
                fut.set_result(None)

    def _append(self, lines: dict[str, list[bytes]]) -> dict[str, int]:
        ends = self.journal.append(lines)
        trigger = self._exit_after_fsync
        if trigger is not None and os.path.exists(trigger):
            os.unlink(trigger)
            os._exit(137)
        return ends

    @staticmethod
    def _fail(batch: list[tuple[list[dict], asyncio.Future]], message: str) -> None:
        for _, fut in batch:
            if not fut.done():
                fut.set_exception(JournalWriteFailed(message))

    async def stop(self) -> None:
        """Finish every queued batch, then stop."""
        if self._task is None:
            return
        if not self._task.done():
            fut: asyncio.Future = asyncio.get_running_loop().create_future()
            self._queue.put_nowait((None, fut))  # type: ignore[arg-type]
            await self._task
        self._task = None

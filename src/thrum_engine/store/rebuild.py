"""Build a projection from the whole journal into a scratch file: `doctor rebuild` and the start-up
recovery of a broken projection share it. Never reads the database being replaced, except to carry its
machine-local tables over, and only when it is readable."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

from thrum_engine.files import fsync_dir
from thrum_engine.journal import Journal, Rejected
from thrum_engine.store.db import Store, copy_local_tables
from thrum_engine.store.health import SCRATCH_SUFFIX, remove_scratch
from thrum_engine.store.validate import EventCheck

_ID_KEY = b'"id":"evt_'


@dataclass
class SortedLines:
    lines: list[bytes]
    origins: list[tuple[str, int]]  # (shard, offset) of each line, to set a rejected one aside
    offsets: dict[str, int]  # each shard's end (complete lines only)


def sorted_journal_lines(journal: Journal) -> SortedLines:
    """Every complete journal line, in event-id order, without parsing them.

    Lines are written with sorted keys, so the top-level `"id"` (after `"data"`) is the last
    `"id":"evt_` in the line: its ULID is the sort key.
    """
    keyed: list[tuple[bytes, bytes, str, int]] = []
    offsets: dict[str, int] = {}
    for shard in journal.shards():
        with open(journal.path(shard), "rb") as fh:
            data = fh.read()
        end = data.rfind(b"\n") + 1
        offsets[shard] = end
        pos = 0
        for line in data[:end].split(b"\n")[:-1]:
            i = line.rfind(_ID_KEY)
            keyed.append((line[i + 6 : i + 36] if i >= 0 else b"", line, shard, pos))
            pos += len(line) + 1
    keyed.sort(key=lambda kv: kv[0])
    return SortedLines([k[1] for k in keyed], [(k[2], k[3]) for k in keyed], offsets)


@dataclass
class Built:
    scratch: str
    events: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    checks: dict[str, int] = field(default_factory=dict)
    local_note: str | None = None
    read_seconds: float = 0.0
    apply_seconds: float = 0.0


async def build_projection(
    journal: Journal, db_path: str, *, local_from: str | None, chunk: int = 5000, validate: bool = True
) -> Built:
    """Fill `<db_path>.rebuild` from the journal; the caller swaps it in. Rejected lines are set aside.

    `local_from`: the database whose machine-local tables are carried over (None: start empty).
    `validate` False skips the event checks: only to measure what they cost.
    """
    started = time.perf_counter()
    src = await asyncio.to_thread(sorted_journal_lines, journal)
    out = Built(db_path + SCRATCH_SUFFIX, read_seconds=time.perf_counter() - started)
    await asyncio.to_thread(remove_scratch, db_path)
    check = EventCheck() if validate else None
    fresh = Store(out.scratch)
    await fresh.open(bulk=True)
    try:
        lines = src.lines
        # Each chunk is checked, parsed and applied in one hop to the writer's thread: matching the
        # common line shape (`store.lines`) is cheap enough that a parsing thread only contended for the GIL.
        for i in range(0, max(len(lines), 1), chunk):
            last = i + chunk >= len(lines)
            n, bad = await fresh.apply_lines(lines[i : i + chunk], src.offsets if last else {}, check)
            out.events += n
            for j, reason, unreadable in bad:
                raw = lines[i + j]
                shard, offset = src.origins[i + j]
                out.rejected.append(Rejected(shard, offset, len(raw) + 1, reason, unreadable, raw))
        await fresh.apply_purge_floor()  # as the live path leaves it, whatever order the events came in
        if local_from is not None:
            out.local_note = await copy_local_tables(local_from, fresh)
        await fresh.finish_bulk()
    except BaseException:
        await fresh.close()
        await asyncio.to_thread(remove_scratch, db_path)
        raise
    await fresh.close()
    if out.rejected:
        await asyncio.to_thread(journal.set_aside, out.rejected)
    out.checks = check.counts() if check is not None else {}
    out.apply_seconds = time.perf_counter() - started - out.read_seconds
    return out


def swap_in(built: Built, db_path: str) -> None:
    """Replace the database with the built one (the old one closed or moved aside).

    The scratch file was filled without syncs (a crash then leaves a scratch file that the next
    start deletes, and the journal rebuilds it): it is fsynced before it becomes the projection, and
    the rename after, so a power cut never leaves a half-written file in the projection's place."""
    fd = os.open(built.scratch, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            os.remove(db_path + suffix)
    os.replace(built.scratch, db_path)
    fsync_dir(os.path.dirname(db_path) or ".")

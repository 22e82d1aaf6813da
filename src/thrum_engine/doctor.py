"""Consistency between the journal and its projection, and rebuilding the projection."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

from thrum_engine.engine.core import Caller, Engine
from thrum_engine.engine.registry import method
from thrum_engine.journal import parse_lines
from thrum_engine.model import EmptyParams, Params
from thrum_engine.store import Store
from thrum_engine.store.db import copy_local_tables
from thrum_engine.store.schema import SCHEMA_VERSION

DIGEST_TABLES = {
    "agents": "SELECT * FROM agents ORDER BY name",
    "sessions": "SELECT * FROM sessions ORDER BY id",
    "messages": "SELECT * FROM messages ORDER BY id",
    "deliveries": "SELECT * FROM deliveries ORDER BY recipient, message_id",
}


async def projection_digest(store: Store) -> dict[str, str]:
    """A hash per projected table: equal digests mean equal query results."""
    out = {}
    for table, sql in DIGEST_TABLES.items():
        h = hashlib.sha256()
        for row in await store.all(sql):
            h.update(repr(tuple(row.values())).encode())
        out[table] = h.hexdigest()[:16]
    return out


def scan_journal(engine: Engine) -> dict:
    shards = {}
    corrupt = 0
    ids: list[str] = []
    for shard in engine.journal.shards():
        evs, size, bad = engine.journal.read_events(shard)
        corrupt += bad
        ids += [e["id"] for e in evs]
        shards[shard] = {"events": len(evs), "bytes": size}
    return {"shards": shards, "corrupt_lines": corrupt, "ids": ids}


@method("doctor.check", EmptyParams, timeout=False)
async def check(engine: Engine, caller: Caller, p: EmptyParams) -> dict:
    async with engine.writer.lock:  # journal, offsets and counts from one moment
        scan = await asyncio.to_thread(scan_journal, engine)
        offsets = await engine.store.offsets()
        applied = await engine.store.scalar("SELECT COUNT(*) FROM applied_events")
    problems = []
    for shard, info in scan["shards"].items():
        if offsets.get(shard, 0) != info["bytes"]:
            problems.append(f"shard {shard}: projected to byte {offsets.get(shard, 0)} of {info['bytes']}")
    journal_ids = set(scan["ids"])
    if applied != len(journal_ids):
        problems.append(f"{len(journal_ids)} events in the journal, {applied} applied")
    if scan["corrupt_lines"]:
        problems.append(f"{scan['corrupt_lines']} unreadable journal lines (skipped)")
    integrity = await engine.store.scalar("PRAGMA quick_check")
    if integrity != "ok":
        problems.append(f"sqlite quick_check: {integrity}")
    qdir = engine.layout.quarantine_dir
    quarantined = sorted(os.listdir(qdir)) if os.path.isdir(qdir) else []
    return {
        "ok": not problems,
        "problems": problems,
        "schema_version": SCHEMA_VERSION,
        "journal": {"shards": scan["shards"], "events": len(journal_ids), "corrupt_lines": scan["corrupt_lines"]},
        "projection": {
            "applied_events": applied,
            "agents": len(engine.agents),
            "messages": await engine.store.scalar("SELECT COUNT(*) FROM messages"),
            "digest": await projection_digest(engine.store),
        },
        "quarantined": quarantined,
        "torn_tails_at_start": [t.__dict__ for t in engine.torn],
    }


def read_all_events(engine: Engine) -> tuple[list[dict], dict[str, int], int]:
    lines, offsets = sorted_journal_lines(engine)
    events, corrupt = parse_lines(lines)
    return events, offsets, corrupt


_ID_KEY = b'"id":"evt_'


def sorted_journal_lines(engine: Engine) -> tuple[list[bytes], dict[str, int]]:
    """Every complete journal line, in event-id order, without parsing them.

    Lines are written with sorted keys, so the top-level `"id"` (after `"data"`) is the last
    `"id":"evt_` in the line: its ULID is the sort key.
    """
    keyed: list[tuple[bytes, bytes]] = []
    offsets: dict[str, int] = {}
    for shard in engine.journal.shards():
        with open(engine.journal.path(shard), "rb") as fh:
            data = fh.read()
        end = data.rfind(b"\n") + 1
        offsets[shard] = end
        for line in data[:end].split(b"\n")[:-1]:
            i = line.rfind(_ID_KEY)
            keyed.append((line[i + 6:i + 36] if i >= 0 else b"", line))
    keyed.sort(key=lambda kv: kv[0])
    return [line for _k, line in keyed], offsets


async def rebuild_projection(engine: Engine, chunk: int = 5000) -> dict:
    """Recreate the projected tables from the journal; local-only tables are carried over.

    Writes pause for the duration (the writer's lock), so nothing is lost in the swap.
    """
    async with engine.writer.lock:
        before = await projection_digest(engine.store)
        started = time.perf_counter()
        lines, offsets = await asyncio.to_thread(sorted_journal_lines, engine)
        read_s = time.perf_counter() - started
        tmp = engine.layout.db_path + ".rebuild"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(tmp + suffix):
                os.remove(tmp + suffix)
        fresh = Store(tmp)
        await fresh.open(bulk=True)
        count = corrupt = 0
        try:
            # Each chunk is parsed and applied in one hop to the writer's thread: matching the
            # common line shape (`store.lines`) is cheap enough that a parsing thread only
            # contended for the GIL.
            for i in range(0, max(len(lines), 1), chunk):
                last = i + chunk >= len(lines)
                n, bad = await fresh.apply_lines(lines[i:i + chunk], offsets if last else {})
                count += n
                corrupt += bad
            await copy_local_tables(engine.layout.db_path, fresh)
            await fresh.finish_bulk()
        finally:
            await fresh.close()
        apply_s = time.perf_counter() - started - read_s
        await engine.store.pause_reads()
        try:
            await engine.store.close()
            for suffix in ("-wal", "-shm"):
                if os.path.exists(engine.layout.db_path + suffix):
                    os.remove(engine.layout.db_path + suffix)
            os.replace(tmp, engine.layout.db_path)
            await engine.store.open()
        finally:
            engine.store.resume_reads()
        await engine.load_caches()
        elapsed = time.perf_counter() - started
        after = await projection_digest(engine.store)
    return {
        "events": count,
        "corrupt_lines": corrupt,
        "seconds": round(elapsed, 3),
        "events_per_second": round(count / elapsed) if elapsed > 0 else None,
        "read_seconds": round(read_s, 3),
        "apply_seconds": round(apply_s, 3),
        "digest_before": before,
        "digest_after": after,
        "identical": before == after,
    }


@method("doctor.rebuild", Params, writes=True, timeout=False)
async def rebuild(engine: Engine, caller: Caller, p: Params) -> dict:
    return await rebuild_projection(engine)

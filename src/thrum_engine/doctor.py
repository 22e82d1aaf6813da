"""Consistency between the journal and its projection, and rebuilding the projection."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import time

from thrum_engine.engine.core import Caller, Engine
from thrum_engine.engine.registry import method
from thrum_engine.errors import Conflict
from thrum_engine.journal import REJECTED_INDEX, Rejected
from thrum_engine.model import EmptyParams, Params
from thrum_engine.store import Store
from thrum_engine.store.apply import purge_cutoff
from thrum_engine.store.rebuild import build_projection, swap_in
from thrum_engine.store.schema import SCHEMA_VERSION
from thrum_engine.store.validate import EventCheck

# Every projected table with data a query shows (a rebuild gives these row for row:
# test_rebuild_equivalence), so "identical to before" misses no table (walk B, 10: reviews).
DIGEST_TABLES = {
    "agents": "SELECT * FROM agents ORDER BY name",
    "sessions": "SELECT * FROM sessions ORDER BY id",
    "messages": "SELECT * FROM messages ORDER BY id",
    "deliveries": "SELECT * FROM deliveries ORDER BY recipient, message_id",
    "unread": "SELECT * FROM unread WHERE n != 0 ORDER BY recipient, author",
    "reviews": "SELECT * FROM reviews ORDER BY id",
    "review_rounds": "SELECT * FROM review_rounds ORDER BY event_id",
    "schedules": "SELECT * FROM schedules ORDER BY id",
    "asks": "SELECT * FROM asks ORDER BY message_id, recipient",
    "held": "SELECT * FROM held ORDER BY message_id",
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
    """Every shard read and checked as start-up and rebuild would (nothing is set aside here)."""
    shards = {}
    unreadable = invalid = 0
    ids: list[str] = []
    check = EventCheck()
    bad: list[Rejected] = []
    created: dict[str, str] = {}  # message id -> created_at, of every message the journal creates
    floor: str | None = None
    for shard in engine.journal.shards():
        r = engine.journal.read_events(shard, check=check)
        bad += r.rejected
        for rej in r.rejected:
            if rej.unreadable:
                unreadable += 1
            else:
                invalid += 1
        for e in r.events:
            ids.append(e["id"])
            if e["type"] == "message.create":
                d = e["data"]
                created.setdefault(d["message_id"], d.get("created_at", e["ts"]))
            elif e["type"] == "message.purge":
                cut = purge_cutoff(e, e["data"])
                floor = cut if floor is None else max(floor, cut)
        shards[shard] = {"events": len(r.events), "bytes": r.end}
    return {
        "shards": shards,
        "corrupt_lines": unreadable,
        "invalid_lines": invalid,
        "ids": ids,
        # What the projection must hold: every created message but those a purge removed (the same
        # rule as store.apply's, which is order-free, so one pass in any order gives it).
        "messages": sum(1 for at in created.values() if floor is None or at >= floor),
        "checks": check.counts(),
        "rejected": engine.journal.rejected_records(),
        "bad": bad,
    }


def _lines(n: int, what: str) -> str:
    return f"{n} {what}" + (" is" if n == 1 else "s are")


@method("doctor.check", EmptyParams, timeout=False)
async def check(engine: Engine, caller: Caller, p: EmptyParams) -> dict:
    problems = []
    lost = 0  # events applied that the journal no longer holds
    projection: dict = {"agents": len(engine.agents)}
    async with engine.writer.lock:  # journal, offsets and counts from one moment
        scan = await asyncio.to_thread(scan_journal, engine)
        try:
            offsets = await engine.store.offsets()
            applied = await engine.store.scalar("SELECT COUNT(*) FROM applied_events")
            messages = await engine.store.scalar("SELECT COUNT(*) FROM messages")
        except sqlite3.DatabaseError as exc:
            offsets, applied, messages = {}, None, None
            problems.append(f"the projection is unreadable ({exc}): run `thrum doctor rebuild`")
    if applied is not None:
        for shard, info in scan["shards"].items():
            if offsets.get(shard, 0) != info["bytes"]:
                problems.append(
                    f"shard {shard}: projected to byte {offsets.get(shard, 0)} of {info['bytes']}"
                )
        lost = applied - len(scan["ids"])
        if lost > 0:
            problems.append(
                f"{len(scan['ids'])} events in the journal, {applied} applied: {lost_words(lost)}"
            )
        elif applied != len(scan["ids"]):
            problems.append(f"{len(scan['ids'])} events in the journal, {applied} applied")
        elif messages != scan["messages"]:  # every event applied, and yet the rows differ
            problems.append(
                f"the journal holds {scan['messages']} messages, the projection {messages}:"
                " run `thrum doctor rebuild`"
            )
        try:
            integrity = await engine.store.scalar("PRAGMA quick_check")
            projection.update(
                {
                    "messages": await engine.store.scalar("SELECT COUNT(*) FROM messages"),
                    "digest": await projection_digest(engine.store),
                }
            )
        except sqlite3.DatabaseError as exc:
            integrity = str(exc)
        if integrity != "ok":
            problems.append(f"sqlite quick_check: {integrity}: run `thrum doctor rebuild`")
    projection["applied_events"] = applied
    qdir = engine.layout.quarantine_dir
    # A bad line stays in its shard (the journal is append-only history, and synced): once it is set
    # aside (copied to the quarantine and listed in its index) every start, sync and rebuild skips it,
    # and no command changes that, so it is reported but is no problem. One not set aside yet is: the
    # projection may hold what a rebuild will not, and the next start or a rebuild sets it aside.
    recorded = {(rec.get("shard"), rec.get("offset")) for rec in scan["rejected"]}
    pending = [rej for rej in scan["bad"] if (rej.shard, rej.offset) not in recorded]
    if pending:
        first = pending[0]
        problems.append(
            f"{_lines(len(pending), 'journal line')} not set aside yet and cannot be applied (first:"
            f" {first.shard}:{first.offset}: {first.reason}): `thrum doctor rebuild` sets them aside"
            f" (copies and {REJECTED_INDEX} in {qdir}) and projects the journal without them"
        )
    set_aside = len(scan["bad"]) - len(pending)
    notes = []
    if set_aside:
        notes.append(
            f"{_lines(set_aside, 'bad journal line')} set aside and skipped by every start, sync and rebuild"
            f" (listed in {os.path.join(qdir, REJECTED_INDEX)}); nothing needs to run: they stay in"
            " their shards, which are synced history"
        )
    quarantined = sorted(os.listdir(qdir)) if os.path.isdir(qdir) else []
    return {
        "ok": not problems,
        # A rebuild projects the journal: where the journal holds fewer events than were applied,
        # it would drop them (walk: the journal worktree deleted, then the rebuild doctor advised).
        "rebuild_safe": lost <= 0,
        "problems": problems,
        "notes": notes,
        "schema_version": SCHEMA_VERSION,
        "journal": {
            "shards": scan["shards"],
            "events": len(scan["ids"]),
            "corrupt_lines": scan["corrupt_lines"],
            "invalid_lines": scan["invalid_lines"],
            **scan["checks"],
        },
        "projection": projection,
        "projection_recovered": engine.projection_recovered,
        "quarantined": quarantined,
        "rejected": scan["rejected"],
        "torn_tails_at_start": [t.__dict__ for t in engine.torn],
    }


async def _digest_or_none(store: Store) -> dict[str, str] | None:
    try:
        return await projection_digest(store)
    except sqlite3.DatabaseError:
        return None  # a broken projection is what a rebuild is for


def lost_words(n: int) -> str:
    return (
        f"the journal lost {n} event(s) the projection holds (its worktree removed or cut back?), and a"
        " rebuild would drop them: see `thrum sync status`; `thrum init` restores a missing journal"
        " worktree from the a-sync branch"
    )


class RebuildParams(Params):
    force: bool = False  # rebuild even where the journal holds fewer events than the projection


async def rebuild_projection(
    engine: Engine, chunk: int = 5000, *, validate: bool = True, force: bool = True
) -> dict:
    """Recreate the projected tables from the journal; local-only tables are carried over when the old
    database is readable. Works whatever state the old database is in. Unless `force`, refuses (and
    changes nothing) when the journal holds fewer events than the old projection applied.

    Writes pause for the duration (the writer's lock), so nothing is lost in the swap.
    """
    db_path = engine.layout.db_path
    async with engine.writer.lock:
        before = await _digest_or_none(engine.store)
        try:
            applied = await engine.store.scalar("SELECT COUNT(*) FROM applied_events")
        except sqlite3.DatabaseError:
            applied = None  # a broken projection is what a rebuild is for
        started = time.perf_counter()
        built = await build_projection(
            engine.journal, db_path, local_from=db_path, chunk=chunk, validate=validate
        )
        lost = (applied or 0) - built.events - len(built.rejected)
        if lost > 0 and not force:
            os.unlink(built.scratch)
            raise Conflict(
                f"nothing rebuilt: {lost_words(lost)}; `thrum doctor rebuild --force` rebuilds anyway"
            )
        await engine.store.pause_reads()
        try:
            await engine.store.close()
            await asyncio.to_thread(swap_in, built, db_path)
            await engine.store.open()
        finally:
            engine.store.resume_reads()
        engine.projection_recovered = None
        await engine.load_caches()
        elapsed = time.perf_counter() - started
        after = await projection_digest(engine.store)
    unreadable = sum(r.unreadable for r in built.rejected)
    return {
        "events": built.events,
        "corrupt_lines": unreadable,
        "invalid_lines": len(built.rejected) - unreadable,
        "local_tables": built.local_note or "copied",
        "seconds": round(elapsed, 3),
        "events_per_second": round(built.events / elapsed) if elapsed > 0 else None,
        "read_seconds": round(built.read_seconds, 3),
        "apply_seconds": round(built.apply_seconds, 3),
        "digest_before": before,
        "digest_after": after,
        "identical": before == after,
    }


@method("doctor.rebuild", RebuildParams, writes=True, timeout=False)
async def rebuild(engine: Engine, caller: Caller, p: RebuildParams) -> dict:
    return await rebuild_projection(engine, force=p.force)

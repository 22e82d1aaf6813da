"""A purge never takes a message created after it: its cutoff is bounded by the purge's own time, on
every path that projects it (a live write, a sync's ingest, start-up catch-up, a rebuild), and the
paths leave the same rows. Journals written by older Thrums hold cutoffs of "now + 1 s" and future
dates: they apply by the same rule. Real journal files and an in-process engine on a real repo."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from test_journal_validation import (
    base,
    contents,
    doctor,
    evt,
    layout,
    line,
    message,
    rebuild,
    start,
    write_shard,
)
from thrum_engine.doctor import projection_digest
from thrum_engine.engine.caller import Caller

__all__ = ["layout"]  # the fixture, used by name

T_OLD = "2026-12-01T18:40:00.000000Z"  # a message sent before the purge
T_PURGE = "2026-12-01T18:41:00.000000Z"
T_NEW = "2026-12-01T18:42:00.000000Z"  # a message sent after the purge


def at(ev: dict, ts: str) -> dict:
    return ev | {"ts": ts}


def purge(n: int, before: str | None, ts: str = T_PURGE) -> dict:
    """A purge as older Thrums wrote it: `--all` as now + 1 s, a future `--before` as given."""
    return {
        "v": 1,
        "id": evt(n),
        "type": "message.purge",
        "author": "system",
        "ts": ts,
        "data": {"before": before},
    }


async def test_an_older_thrums_future_cutoff_spares_what_came_after_the_purge_on_every_path(layout):
    await base(layout)
    engine = await start(layout)
    try:
        # What sync brings in from another clone: an old message, the purge with a cutoff far in the
        # future, a message sent after it, and a message sent before the purge that arrives after it.
        write_shard(
            layout,
            "alice",
            [
                line(at(message(10, "old"), T_OLD)),
                line(purge(11, "2099-01-01T00:00:00.000000Z")),
                line(at(message(12, "after the purge"), T_NEW)),
            ],
        )
        await engine.ingest(["alice"])
        assert await contents(engine) == ["after the purge"]
        write_shard(layout, "bob", [line(at(message(13, "late but old", author="bob", to="alice"), T_OLD))])
        await engine.ingest(["bob"])
        assert await contents(engine) == ["after the purge"]  # the purge holds for it too
        # and a message sent here now survives every later sync
        await engine.call("message.send", {"body": "sent here", "to": ["@bob"]}, Caller.trusted("alice"))
        write_shard(layout, "bob", [line(at(message(14, "new from bob", author="bob", to="alice"), T_NEW))])
        await engine.ingest(["bob"])
        assert await contents(engine) == ["after the purge", "new from bob", "sent here"]
        d = await doctor(engine)
        assert d["ok"], d["problems"]
        live = await projection_digest(engine.store)
        r = await rebuild(engine)
        assert r["identical"], (r["digest_before"], r["digest_after"])
        assert await projection_digest(engine.store) == live
    finally:
        await engine.stop()


async def test_now_plus_a_second_and_a_rebuild_from_scratch_agree_with_the_live_path(layout):
    """`--all` as older Thrums wrote it (the cutoff a second past the purge) and a message sent in that
    second, synced in; then a start with no projection (the rebuild path) builds the same tables."""
    await base(layout)
    engine = await start(layout)
    try:
        write_shard(
            layout,
            "alice",
            [
                line(at(message(10, "old"), T_OLD)),
                line(purge(11, "2026-12-01T18:41:01.000000Z")),
                line(at(message(12, "a moment after"), "2026-12-01T18:41:00.500000Z")),
            ],
        )
        await engine.ingest(["alice"])
        assert await contents(engine) == ["a moment after"]
        live = await projection_digest(engine.store)
    finally:
        await engine.stop()
    for suffix in ("", "-wal", "-shm"):
        Path(layout.db_path + suffix).unlink(missing_ok=True)
    engine = await start(layout)  # no projection: built from the journal by the rebuild path
    try:
        assert await contents(engine) == ["a moment after"]
        assert await projection_digest(engine.store) == live
    finally:
        await engine.stop()


async def test_a_store_an_older_thrum_purged_is_rebuilt_once_on_upgrade(layout):
    """A projection where the old floor (a future cutoff) already took messages sent after the purge:
    the schema upgrade rebuilds it from the journal, and they are back."""
    await base(layout, projected=False)
    write_shard(
        layout,
        "alice",
        [
            line(at(message(10, "old"), T_OLD)),
            line(purge(11, "2099-01-01T00:00:00.000000Z")),
            line(at(message(12, "after the purge"), T_NEW)),
        ],
    )
    await (await start(layout)).stop()
    with sqlite3.connect(layout.db_path) as conn:  # what the older Thrum left
        conn.execute("DELETE FROM deliveries")
        conn.execute("DELETE FROM messages")
        conn.execute("UPDATE meta SET value = '2099-01-01T00:00:00.000000Z' WHERE key = 'purged_before'")
        conn.execute("UPDATE meta SET value = '11' WHERE key = 'schema_version'")
    conn.close()
    engine = await start(layout)
    try:
        assert await contents(engine) == ["after the purge"]
        assert "v12" in engine.projection_recovered["reason"]
        assert await engine.store.scalar("SELECT value FROM meta WHERE key = 'purged_before'") == T_PURGE
    finally:
        await engine.stop()
    engine = await start(layout)  # once: the rebuilt store is not marked again
    try:
        assert engine.projection_recovered is not None  # the record of the one recovery is kept
        assert await engine.store.scalar("SELECT value FROM meta WHERE key = 'rebuild_due'") is None
        assert await contents(engine) == ["after the purge"]
    finally:
        await engine.stop()


async def test_doctor_sees_a_projection_missing_messages_the_journal_holds(layout):
    await base(layout)
    write_shard(layout, "alice", [line(message(10, "one")), line(message(12, "two"))])
    await (await start(layout)).stop()
    with sqlite3.connect(layout.db_path) as conn:  # every event applied, yet a message is gone
        conn.execute("DELETE FROM deliveries WHERE message_id = (SELECT MAX(id) FROM messages)")
        conn.execute("DELETE FROM messages WHERE id = (SELECT MAX(id) FROM messages)")
    conn.close()
    engine = await start(layout)
    try:
        d = await doctor(engine)
        assert not d["ok"]
        assert any("2 messages, the projection 1" in p and "doctor rebuild" in p for p in d["problems"]), d
        assert not (await rebuild(engine))["identical"]
        assert (await doctor(engine))["ok"]
        assert await contents(engine) == ["one", "two"]
    finally:
        await engine.stop()

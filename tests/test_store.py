"""The journal and its projection, exercised directly on real files."""

from __future__ import annotations

import json
import sqlite3

import pytest

from thrum_engine.doctor import projection_digest
from thrum_engine.journal import Journal
from thrum_engine.store import Store
from thrum_engine.store.db import SchemaTooNew
from thrum_engine.store.schema import SCHEMA_VERSION


def events():
    reg = [{"v": 1, "id": f"evt_0000000000000000000000000{i}", "type": "agent.register", "author": n,
            "ts": "2026-01-01T00:00:00.000000Z", "data": {"name": n, "role": "worker", "worktree": "/w"}}
           for i, n in enumerate(("alice", "bob"))]
    msg = {"v": 1, "id": "evt_00000000000000000000000009", "type": "message.create", "author": "alice",
           "ts": "2026-01-01T00:00:01.000000Z",
           "data": {"message_id": "msg_00000000000000000000000001", "content": "hi", "recipients": ["bob"]}}
    read = {"v": 1, "id": "evt_0000000000000000000000000A", "type": "message.read", "author": "bob",
            "ts": "2026-01-01T00:00:02.000000Z", "data": {"message_ids": ["msg_00000000000000000000000001"]}}
    return reg + [msg, read]


async def test_applying_the_same_events_twice_changes_nothing(tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    await store.open()
    try:
        await store.apply(events(), {"alice": 10})
        first = await projection_digest(store)
        await store.apply(events(), {"alice": 10}, skip_applied=True)
        await store.apply(events(), {"alice": 10})  # even without the id check, every statement is idempotent
        assert await projection_digest(store) == first
        row = await store.one("SELECT read_at FROM deliveries WHERE recipient='bob'")
        assert row["read_at"] == "2026-01-01T00:00:02.000000Z"
        assert await store.offsets() == {"alice": 10}
    finally:
        await store.close()


async def test_a_database_from_a_newer_thrum_is_refused(tmp_path):
    path = tmp_path / "db.sqlite"
    store = Store(str(path))
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(SchemaTooNew):
        await Store(str(path)).open()


async def test_schema_version_is_recorded(tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    await store.open()
    try:
        assert await store.scalar("SELECT value FROM meta WHERE key='schema_version'") == str(SCHEMA_VERSION)
        assert await store.scalar("PRAGMA journal_mode") == "wal"
    finally:
        await store.close()


def test_torn_final_line_is_set_aside_and_the_rest_kept(tmp_path):
    j = Journal(str(tmp_path / "journal"), str(tmp_path / "quarantine"))
    j.open()
    j.append({"alice": [json.dumps(e).encode() + b"\n" for e in events()[:2]]})
    j.close()
    with open(j.path("alice"), "ab") as fh:
        fh.write(b'{"v":1,"id":"evt_torn","ty')
    torn = Journal(str(tmp_path / "journal"), str(tmp_path / "quarantine")).open()
    assert len(torn) == 1 and torn[0].shard == "alice"
    assert open(torn[0].saved_to, "rb").read() == b'{"v":1,"id":"evt_torn","ty'
    evs, end, bad = j.read_events("alice")
    assert [e["id"] for e in evs] == [e["id"] for e in events()[:2]] and bad == 0
    assert end == j.size("alice")


def test_unreadable_lines_are_counted_not_fatal(tmp_path):
    j = Journal(str(tmp_path / "journal"), str(tmp_path / "q"))
    j.open()
    j.append({"bob": [b"not json\n", json.dumps(events()[1]).encode() + b"\n", b"[1,2]\n"]})
    evs, _end, bad = j.read_events("bob")
    assert [e["id"] for e in evs] == [events()[1]["id"]] and bad == 2
    j.close()

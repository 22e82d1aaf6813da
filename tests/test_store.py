"""The journal and its projection, exercised directly on real files."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import projection_rows
from thrum_engine.doctor import projection_digest
from thrum_engine.errors import SchemaTooNew
from thrum_engine.journal import MAX_OPEN_SHARDS, Journal
from thrum_engine.store import Store
from thrum_engine.store.schema import SCHEMA_VERSION


def events():
    reg = [
        {
            "v": 1,
            "id": f"evt_0000000000000000000000000{i}",
            "type": "agent.register",
            "author": n,
            "ts": "2026-01-01T00:00:00.000000Z",
            "data": {"name": n, "role": "worker", "worktree": "/w"},
        }
        for i, n in enumerate(("alice", "bob"))
    ]
    msg = {
        "v": 1,
        "id": "evt_00000000000000000000000009",
        "type": "message.create",
        "author": "alice",
        "ts": "2026-01-01T00:00:01.000000Z",
        "data": {"message_id": "msg_00000000000000000000000001", "content": "hi", "recipients": ["bob"]},
    }
    read = {
        "v": 1,
        "id": "evt_0000000000000000000000000A",
        "type": "message.read",
        "author": "bob",
        "ts": "2026-01-01T00:00:02.000000Z",
        "data": {"message_ids": ["msg_00000000000000000000000001"]},
    }
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
    assert Path(torn[0].saved_to).read_bytes() == b'{"v":1,"id":"evt_torn","ty'
    r = j.read_events("alice")
    assert [e["id"] for e in r.events] == [e["id"] for e in events()[:2]] and r.rejected == []
    assert r.end == j.size("alice")


def test_a_batch_from_more_authors_than_open_fds_writes_every_shard_group_by_group(tmp_path):
    j = Journal(str(tmp_path / "journal"), str(tmp_path / "quarantine"))
    j.open()
    authors = [f"a{i:03d}" for i in range(2 * MAX_OPEN_SHARDS + 3)]
    j.append({a: [b'{"n":1}\n'] for a in authors})
    ends = j.append({a: [b'{"n":2}\n'] for a in authors})
    assert j.open_shards() <= MAX_OPEN_SHARDS
    for a in authors:
        assert Path(j.path(a)).read_bytes() == b'{"n":1}\n{"n":2}\n'
        assert ends[a] == 16


def test_a_batch_that_fails_in_a_later_group_cuts_every_shard_back(tmp_path):
    """The first groups were written and fsynced when a later shard cannot be opened: the failed
    batch must still leave no line anywhere."""
    j = Journal(str(tmp_path / "journal"), str(tmp_path / "quarantine"))
    j.open()
    authors = [f"a{i:03d}" for i in range(MAX_OPEN_SHARDS + 5)]
    j.append({a: [b'{"n":1}\n'] for a in authors[:-1]})
    Path(j.path(authors[-1])).mkdir()  # the last author's shard cannot be opened for writing
    with pytest.raises(OSError):
        j.append({a: [b'{"n":2}\n'] for a in authors})
    for a in authors[:-1]:
        assert Path(j.path(a)).read_bytes() == b'{"n":1}\n'


def _failing_fsync(journal: Journal, bad: str, log: list[tuple[str, str]]):
    """An fsync that fails (EIO) for `bad`'s shard at once and is slow for the others, logging
    (shard, thread) as each returns; other files are synced for real."""
    import errno
    import threading
    import time

    real = os.fsync

    def fsync(fd: int) -> None:
        ino = os.fstat(fd).st_ino
        shard = next((a for a in ("alice", "bob", "carol") if os.stat(journal.path(a)).st_ino == ino), None)
        if shard == bad:
            log.append((shard, threading.current_thread().name))
            raise OSError(errno.EIO, "injected")
        if shard is not None:
            time.sleep(0.05)  # still syncing when the failure comes back
        real(fd)
        if shard is not None:
            log.append((shard, threading.current_thread().name))

    return fsync


def test_a_batch_from_several_authors_is_fsynced_at_once_and_a_failure_cuts_every_shard_back(
    tmp_path, monkeypatch
):
    """The shards of a batch are fsynced together on the journal's threads; a failure is raised
    only once every fsync has returned, and every shard is cut back to where the batch began."""
    import errno

    j = Journal(str(tmp_path / "journal"), str(tmp_path / "quarantine"))
    j.open()
    try:
        authors = ("alice", "bob", "carol")
        assert j.append({a: [b'{"n":1}\n'] for a in authors}) == {a: 8 for a in authors}
        log: list[tuple[str, str]] = []
        monkeypatch.setattr(os, "fsync", _failing_fsync(j, "alice", log))  # the first to be waited on
        with pytest.raises(OSError) as err:
            j.append({a: [b'{"n":2}\n'] for a in authors})
        assert err.value.errno == errno.EIO
        # The batch's three fsyncs, on the journal's threads, all returned before the cut-back
        # (whose own fsyncs, on this thread, come after).
        synced = [a for a, t in log if t.startswith("thrum-fsync")]
        assert sorted(synced) == ["alice", "bob", "carol"], log
        assert all(t.startswith("thrum-fsync") for _, t in log[:3]), log
        for a in authors:
            assert Path(j.path(a)).read_bytes() == b'{"n":1}\n'
        monkeypatch.undo()
        assert j.append({a: [b'{"n":3}\n'] for a in authors}) == {a: 16 for a in authors}
    finally:
        j.close()


def test_the_journal_syncs_on_its_own_thread_when_its_threads_cannot_take_the_work(tmp_path):
    """Closed, or its threads shut down under it (the interpreter exiting): an append still
    fsyncs every shard, on the calling thread, and starts no threads."""
    import threading

    j = Journal(str(tmp_path / "journal"), str(tmp_path / "quarantine"))
    j.open()
    try:
        before = set(threading.enumerate())
        j.append({a: [b'{"n":1}\n'] for a in ("alice", "bob")})
        syncers = [t for t in threading.enumerate() if t not in before and t.name.startswith("thrum-fsync")]
        assert syncers
        j._syncers.shutdown()  # as at interpreter exit: submit() now raises RuntimeError
        assert j.append({a: [b'{"n":2}\n'] for a in ("alice", "bob")}) == {"alice": 16, "bob": 16}
    finally:
        j.close()
    assert not any(t.is_alive() for t in syncers)
    before = set(threading.enumerate())
    assert j.append({a: [b'{"n":3}\n'] for a in ("alice", "bob")}) == {"alice": 24, "bob": 24}
    assert not [t for t in threading.enumerate() if t not in before and t.name.startswith("thrum-fsync")]
    j.close()


def test_unreadable_lines_are_counted_not_fatal(tmp_path):
    j = Journal(str(tmp_path / "journal"), str(tmp_path / "q"))
    j.open()
    j.append({"bob": [b"not json\n", json.dumps(events()[1]).encode() + b"\n", b"[1,2]\n"]})
    r = j.read_events("bob")
    assert [e["id"] for e in r.events] == [events()[1]["id"]]
    assert [(x.offset, x.unreadable) for x in r.rejected] == [
        (0, True),
        (9 + len(json.dumps(events()[1])) + 1, True),
    ]
    j.close()


def _random_journal(seed: int, n: int) -> list[bytes]:
    """Journal lines as the writer encodes them: mostly plain messages, some with characters that need
    escaping, replies, threads, structured bodies and other event types mixed in."""
    import random

    from thrum_engine.engine.writer import encode

    rng = random.Random(seed)
    alphabet = [
        "a",
        "b",
        " ",
        "x",
        '"',
        "\\",
        "\n",
        "\t",
        "\x00",
        "\x1f",
        "\x7f",
        "é",
        "\u2028",
        "😀",
        "/",
        "{",
        ":",
    ]

    def text(plain: bool) -> str:
        k = rng.randint(0, 12)
        return "".join(rng.choice(alphabet[:4] if plain else alphabet) for _ in range(k))

    names = ["alice", "bob", "carol", "dave-2", "é_agent"]
    lines = []
    for i in range(n):
        eid = f"evt_{i:026d}"
        ts = f"2026-01-01T00:00:{i % 60:02d}.{i:06d}Z"
        kind = rng.random()
        author = rng.choice(names)
        if kind < 0.75:
            data: dict = {
                "message_id": f"msg_{i:026d}",
                "content": text(rng.random() < 0.6),
                "format": rng.choice(["markdown", "plain", "json"]),
                "recipients": rng.sample(names, rng.randint(1, 3)),
            }
            extra = rng.random()
            if extra < 0.2:
                data["thread_id"] = f"msg_{rng.randrange(max(i, 1)):026d}"
            elif extra < 0.3:
                data["reply_to"] = f"msg_{rng.randrange(max(i, 1)):026d}"
                data["thread_id"] = data["reply_to"]
                data["thread_root"] = data["reply_to"]
            elif extra < 0.4:
                data["structured"] = {"k": [1, 2.5, text(False)], "z": None}
            elif extra < 0.5:
                data["addressed"] = ["@worker"]
                data["broadcast"] = rng.random() < 0.5
                data["mentions"] = ["@" + data["recipients"][0]]
                data["mentioned_agents"] = data["recipients"][:1]
                data["scopes"] = [{"type": "module", "value": text(False)}]
            ev = {"v": 1, "id": eid, "type": "message.create", "author": author, "ts": ts, "data": data}
        elif kind < 0.85:
            ev = {
                "v": 1,
                "id": eid,
                "type": "message.read",
                "author": author,
                "ts": ts,
                "data": {"message_ids": [f"msg_{rng.randrange(max(i, 1)):026d}"]},
            }
        elif kind < 0.95:
            ev = {
                "v": 1,
                "id": eid,
                "type": "agent.register",
                "author": author,
                "ts": ts,
                # registered names keep the name rules (a journal line that breaks them is set aside)
                "data": {
                    "name": author.replace("-", "_") if author.isascii() else "eve",
                    "role": "worker",
                    "intent": text(False),
                },
            }
        else:
            ev = {"v": 2, "id": eid, "type": "message.future", "author": author, "ts": ts, "data": {}}
        lines.append(encode(ev)[:-1])
    return lines


@pytest.mark.parametrize("seed", range(5))
def test_rebuild_line_fast_path_projects_exactly_like_json(seed, tmp_path):
    from thrum_engine.journal import parse_lines
    from thrum_engine.store.apply import ops_for
    from thrum_engine.store.lines import _PLAIN_MESSAGE, ops_for_lines
    from thrum_engine.store.validate import EventCheck

    lines = _random_journal(seed, 400)
    lines[7] = b'{"v":1,"id":"evt_torn'  # unreadable lines are counted on both paths
    lines[9] = b"[1,2]"
    lines[11] = (
        b'{"author":"a","data":{"content":"\xff","format":"m","message_id":"m","recipients":["b"]},'
        b'"id":"evt_00000000000000000000000011","ts":"t","type":"message.create","v":1}'
    )  # not UTF-8
    events, corrupt = parse_lines(lines)
    runs, count, bad = ops_for_lines(lines, EventCheck())
    assert (count, len(bad)) == (len(events), corrupt)
    assert [(i, unreadable) for i, _reason, unreadable in bad] == [(7, True), (9, True), (11, True)]
    # The plain path binds fewer columns (the rest are their defaults): the rows are the same.
    assert projection_rows(tmp_path / "lines.sqlite", runs) == projection_rows(
        tmp_path / "json.sqlite", ops_for(events)
    )
    plain = sum(_PLAIN_MESSAGE(line.decode("utf-8", "replace")) is not None for line in lines)
    assert 100 < plain < len(lines) - 100  # both paths were exercised


async def test_rebuild_lines_and_live_events_give_one_projection(tmp_path):
    """The same journal applied as live events and as raw lines (a rebuild): equal digests."""
    lines = _random_journal(11, 600)
    events = [json.loads(line) for line in lines]
    digests = []
    for name, feed in (("live", "events"), ("rebuilt", "lines")):
        store = Store(str(tmp_path / f"{name}.sqlite"))
        await store.open(bulk=feed == "lines")
        try:
            if feed == "events":
                for i in range(0, len(events), 50):
                    await store.apply(events[i : i + 50], {"x": i})
            else:
                for i in range(0, len(lines), 128):
                    await store.apply_lines(lines[i : i + 128], {"x": i})
                await store.finish_bulk()
            digests.append(await projection_digest(store))
        finally:
            await store.close()
    assert digests[0] == digests[1]


async def test_the_write_connection_runs_callables_in_order_on_its_own_thread(tmp_path):
    """Datasette's shape: one thread owns the write connection; callables run there one at a time,
    in the order they were submitted, and an error reaches the caller that submitted it."""
    import asyncio
    import threading

    store = Store(str(tmp_path / "thrum.db"))
    await store.open()
    try:
        seen: list[tuple[int, str]] = []

        def step(i: int):
            def fn(conn: sqlite3.Connection) -> int:
                seen.append((i, threading.current_thread().name))
                conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (f"k{i}", str(i)))
                return i

            return fn

        assert await asyncio.gather(*(store.in_writer_thread(step(i)) for i in range(50))) == list(range(50))
        assert [i for i, _ in seen] == list(range(50))
        assert {name for _, name in seen} == {"thrum-sqlite-writer"}
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await store.in_writer_thread(lambda conn: conn.execute("SELECT * FROM nowhere"))
        await store.write_local("INSERT INTO meta(key, value) VALUES (?, ?)", [("local", "1")])
        assert await store.scalar("SELECT COUNT(*) FROM meta WHERE key LIKE 'k%' OR key = 'local'") == 51
    finally:
        await store.close()
    assert not [t for t in threading.enumerate() if t.name == "thrum-sqlite-writer"]
    with pytest.raises(sqlite3.ProgrammingError):
        await store.in_writer_thread(lambda conn: None)


async def test_the_writes_reach_the_main_file_soon_without_waiting_for_a_full_wal(tmp_path):
    """SQLite's own checkpoint waits for 1,000 WAL pages and runs inside the commit that gets
    there, so the sends in that batch wait for its fsyncs (an agent's p99 ack); a checkpoint thread
    of its own copies the WAL back a moment after each change instead."""
    path = tmp_path / "db.sqlite"
    store = Store(str(path))
    await store.open()
    try:
        await store.apply(events(), {"alice": 10})
        for _ in range(200):
            if getattr(getattr(store, "checkpointer", None), "checkpoints", 0):
                break
            await asyncio.sleep(0.025)
        shutil.copy(path, tmp_path / "main-only.sqlite")  # the main file alone, without its WAL
        conn = sqlite3.connect(tmp_path / "main-only.sqlite")
        try:
            assert conn.execute("SELECT content FROM messages").fetchall() == [("hi",)]
        finally:
            conn.close()
    finally:
        await store.close()
    assert not Path(str(path) + "-wal").exists()  # the writer closed last: SQLite removed the WAL

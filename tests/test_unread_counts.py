"""The `unread` table (schema v5) against the unread rule counted the slow way, over random journals
applied live and by a rebuild (the console's path through a real engine: test_tui_flows)."""

from __future__ import annotations

import contextlib
import random

import pytest

from thrum_engine.store import Store, queries

# The unread rule, counted from the deliveries themselves.
BRUTE = (
    "SELECT d.recipient, m.author, COUNT(*) AS n FROM agents a JOIN deliveries d ON d.recipient = a.name"
    " AND d.read_at IS NULL AND d.deleted = 0 AND d.created_at >= a.registered_at"
    " JOIN messages m ON m.id = d.message_id GROUP BY d.recipient, m.author"
)
NAMES = ["alice", "bob", "carol", "dave"]


def _journal(seed: int, n: int) -> list[dict]:
    """Sends, reads, replies, deletes, (re)registrations, agent deletes and a purge, in random order."""
    rng = random.Random(seed)
    events: list[dict] = []
    sent: list[str] = []
    sent_at: list[str] = []
    for i in range(n):
        ts = f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}Z"
        author = rng.choice(NAMES)
        ev = {"v": 1, "id": f"evt_{i:026d}", "author": author, "ts": ts}
        k = rng.random()
        if k < 0.5 or not sent:
            mid = f"msg_{i:026d}"
            data = {"message_id": mid, "content": "x", "recipients": rng.sample(NAMES, rng.randint(1, 3))}
            if sent and rng.random() < 0.15:
                data["reply_to"] = rng.choice(sent)
            sent.append(mid)
            sent_at.append(ts)
            ev |= {"type": "message.create", "data": data}
        elif k < 0.7:
            ev |= {"type": "message.read", "data": {"message_ids": rng.sample(sent, min(3, len(sent)))}}
        elif k < 0.78:
            ev |= {"type": "message.delete", "data": {"message_id": rng.choice(sent)}}
        elif k < 0.83:
            data = {"name": rng.choice(NAMES), "role": "worker", "registered_at": ts}
            ev |= {"type": "agent.register", "data": data}
        elif k < 0.86:
            ev |= {"type": "agent.delete", "data": {"name": rng.choice(NAMES)}}
        else:
            ev |= {"type": "message.purge", "data": {"before": sent_at[max(0, len(sent_at) - 5)]}}
        events.append(ev)
    return events


async def _check(store: Store) -> dict:
    brute = {(r["recipient"], r["author"]): r["n"] for r in await store.all(BRUTE)}
    kept = {
        (r["recipient"], r["author"]): r["n"] for r in await store.all("SELECT * FROM unread WHERE n != 0")
    }
    assert kept == brute
    per = await queries.unread_counts(store)
    for name in NAMES:
        mine = {a: n for (r, a), n in brute.items() if r == name}
        assert await queries.unread_from(store, name) == mine
        assert per.get(name, 0) == sum(mine.values())
    return brute


@pytest.mark.parametrize("seed", range(4))
async def test_unread_table_follows_every_kind_of_change(tmp_path, seed):
    events = _journal(seed, 500)
    store = Store(str(tmp_path / "live.sqlite"))
    await store.open()
    try:
        for i in range(0, len(events), 7):  # small batches: the check runs between them
            await store.apply(events[i : i + 7], {"x": i})
            if i % 70 == 0:
                await _check(store)
        live = await _check(store)
    finally:
        await store.close()
    assert live, "the journal leaves some mail unread"
    rebuilt = Store(str(tmp_path / "rebuilt.sqlite"))
    await rebuilt.open(bulk=True)
    try:
        await rebuilt.apply(events, {"x": len(events)})
        await rebuilt.finish_bulk()
        assert await _check(rebuilt) == live
    finally:
        await rebuilt.close()


def _old_database(path, version: int) -> dict:
    """A database as release `version` left it (its own schema, rows written directly): 200 messages
    to two recipients each, some read or deleted. Returns the unread counts by the rule."""
    import sqlite3

    from thrum_engine.store.schema import migration_sql

    rng = random.Random(9)
    with sqlite3.connect(path) as conn:
        for v in range(version):
            conn.executescript(migration_sql(conn, v))
        conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(version),))
        for i, name in enumerate(NAMES):
            conn.execute(
                "INSERT INTO agents(name, role, registered_at) VALUES (?, 'worker', ?)",
                (name, f"2026-01-01T00:00:{i:02d}.000000Z"),
            )
        for i in range(200):
            mid, ts = f"msg_{i:026d}", f"2026-01-01T00:00:{i % 60:02d}.{i:06d}Z"
            conn.execute(
                "INSERT INTO messages(id, author, format, content, created_at) VALUES (?, ?, 'plain', 'x', ?)",
                (mid, rng.choice(NAMES), ts),
            )
            for r in rng.sample(NAMES, 2):
                conn.execute(
                    "INSERT INTO deliveries(recipient, message_id, created_at, read_at, deleted) VALUES (?,?,?,?,?)",
                    (r, mid, ts, ts if rng.random() < 0.3 else None, 1 if rng.random() < 0.1 else 0),
                )
        expected = {(r, a): n for r, a, n in conn.execute(BRUTE)}
    conn.close()
    assert expected
    return expected


@contextlib.asynccontextmanager
async def _opened(path):
    """The store at `path`, opened (and so upgraded) by the current code."""
    store = Store(str(path))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_a_v4_database_gets_its_unread_counts_on_upgrade(tmp_path):
    """A v4 database is upgraded, and the new table holds the counts of the mail already there."""
    path = tmp_path / "old.sqlite"
    expected = _old_database(path, 4)
    async with _opened(path) as store:
        assert await _check(store) == expected


async def test_a_v13_database_gets_each_deliverys_author_and_counts_stay_right(tmp_path):
    """v14 puts the message's author on each delivery (the counts' triggers read it there): the
    upgrade fills it for the mail already stored, so reading and deleting it later moves the right
    (recipient, author) count."""
    import sqlite3

    path = tmp_path / "old.sqlite"
    expected = _old_database(path, 13)
    async with _opened(path) as store:
        assert await _check(store) == expected
        wrong = await store.scalar(
            "SELECT COUNT(*) FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.author != m.author"
        )
        assert wrong == 0
    with sqlite3.connect(path) as conn:  # the triggers at work on the upgraded rows
        conn.execute(
            "UPDATE deliveries SET read_at = '2026-01-02T00:00:00.000000Z' WHERE recipient = 'alice'"
        )
        conn.execute(
            "UPDATE deliveries SET deleted = 1 WHERE recipient = 'bob' AND message_id < ?",
            (f"msg_{100:026d}",),
        )
        conn.execute(
            "DELETE FROM deliveries WHERE recipient = 'carol' AND message_id < ?", (f"msg_{50:026d}",)
        )
    conn.close()
    async with _opened(path) as store:
        after = await _check(store)
        assert after != expected and not any(r == "alice" for r, _ in after)

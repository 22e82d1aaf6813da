"""The `unread` table (schema v5) against the unread rule counted the slow way, over random journals
applied live and by a rebuild (the console's path through a real engine: test_tui_flows)."""

from __future__ import annotations

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


async def test_a_v4_database_gets_its_unread_counts_on_upgrade(tmp_path):
    """Upgrading fills the table from the mail already there."""
    import sqlite3

    path = tmp_path / "old.sqlite"
    events = _journal(9, 200)
    store = Store(str(path))
    await store.open()
    await store.apply(events, {"x": 1})
    expected = {(r["recipient"], r["author"]): r["n"] for r in await store.all(BRUTE)}
    await store.close()
    with sqlite3.connect(path) as conn:  # back to v4, as the previous release left it
        conn.executescript(
            "DROP TABLE unread; DROP TRIGGER unread_delivered; DROP TRIGGER unread_changed;"
            " DROP TRIGGER unread_purged; DROP TRIGGER unread_registered;"
            " DROP TRIGGER unread_reregistered; DROP TRIGGER unread_forgotten;"
            " ALTER TABLE deliveries DROP COLUMN notified_via;"  # v6 (delivery paths), after this one
        )
        conn.executescript(
            "ALTER TABLE agents DROP COLUMN origin; ALTER TABLE agents DROP COLUMN host;"
        )  # v7
        conn.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
    store = Store(str(path))
    await store.open()
    try:
        assert await _check(store) == expected
    finally:
        await store.close()

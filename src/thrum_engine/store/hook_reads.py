"""The reads a runtime hook makes on every prompt and every stop, kept to what the index answers.

A hook fires many times a minute per agent and its answer is usually "nothing new", so the common
case is one query over the `deliveries_unread` index that returns ids only (no message bodies, no
counts); bodies and the unread total are read only when there is something new to show. Cost does
not grow with the history: at most `limit` index entries, then `limit` rows by primary key.
"""

from __future__ import annotations

from thrum_engine.store.db import Store
from thrum_engine.store.queries import SURFACED_DELIVERY


async def newest_unread_ids(store: Store, me: str, floor: str, limit: int) -> list[str]:
    """`me`'s newest unread message ids, newest first (deliveries older than `floor`, the
    recipient's registration, do not count: the unread rule everywhere)."""
    rows = await store.all(
        "SELECT message_id FROM deliveries WHERE recipient = ? AND read_at IS NULL AND deleted = 0"
        " AND created_at >= ? ORDER BY created_at DESC LIMIT ?",
        (me, floor, limit),
    )
    return [r["message_id"] for r in rows]


async def messages_by_id(store: Store, ids: list[str]) -> dict[str, dict]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = await store.all(
        f"SELECT id, author, content, created_at FROM messages WHERE id IN ({marks})",
        ids,
    )
    return {r["id"]: r for r in rows}


async def unread_total(store: Store, me: str) -> int:
    """From the trigger-kept `unread` table: one row per author, whatever the store's size."""
    return int(await store.scalar("SELECT COALESCE(SUM(n), 0) FROM unread WHERE recipient = ?", (me,)) or 0)


# How many of the newest unread deliveries a hook looks through for ones no path has surfaced yet: bounds
# the cost of a prompt when many unread messages were surfaced already (pushed, waited for, shown).
SURFACED_SCAN = 200


async def newest_unsurfaced_ids(store: Store, me: str, floor: str, limit: int) -> list[str]:
    """`me`'s newest unread message ids that no delivery path has surfaced yet (no `notified`, `seen`
    or `replied` in the delivery ledger), newest first, among the `SURFACED_SCAN` newest unread. The
    ledger is the projection of the journal: what a hook showed survives an engine restart. A note
    to yourself is not among them (`queries.SURFACED_DELIVERY`): no path surfaces one, or a stop hook would
    block every turn on the agent's own note; a reminder you scheduled for yourself is."""
    rows = await store.all(
        "SELECT message_id FROM (SELECT message_id, recipient, created_at, notified_at, seen_at, replied_at,"
        " author FROM deliveries WHERE recipient = ? AND read_at IS NULL AND deleted = 0 AND created_at >= ?"
        " ORDER BY created_at DESC LIMIT ?) d"
        f" WHERE notified_at IS NULL AND seen_at IS NULL AND replied_at IS NULL AND {SURFACED_DELIVERY}"
        " ORDER BY created_at DESC LIMIT ?",
        (me, floor, SURFACED_SCAN, limit),
    )
    return [r["message_id"] for r in rows]


async def unsurfaced_among(store: Store, me: str, ids: list[str]) -> list[str]:
    """Which of `ids` no delivery path has surfaced to `me` yet."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = await store.all(
        f"SELECT message_id FROM deliveries WHERE recipient = ? AND message_id IN ({marks})"
        " AND notified_at IS NULL AND seen_at IS NULL AND read_at IS NULL AND replied_at IS NULL",
        [me, *ids],
    )
    found = {r["message_id"] for r in rows}
    return [i for i in ids if i in found]

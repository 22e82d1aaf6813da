"""Unread counts, read from the `unread` table that schema v5's triggers keep exact.

Counting unread deliveries on every console refresh cost ~35 ms at 100k unread messages; the
table holds one row per (recipient, author), so these reads cost the same at any store size."""

from __future__ import annotations

from thrum_engine.store.db import Store


async def per_recipient(store: Store) -> dict[str, int]:
    """Unread mail per registered recipient (agents with none are absent)."""
    rows = await store.all("SELECT recipient, SUM(n) AS n FROM unread GROUP BY recipient HAVING SUM(n) > 0")
    return {r["recipient"]: r["n"] for r in rows}


async def by_author(store: Store, recipient: str) -> dict[str, int]:
    """`recipient`'s unread mail counted by author."""
    rows = await store.all("SELECT author, n FROM unread WHERE recipient = ? AND n > 0", (recipient,))
    return {r["author"]: r["n"] for r in rows}

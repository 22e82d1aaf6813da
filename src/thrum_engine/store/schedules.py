"""Schedules (issue 16): how schedule.* events project into `schedules`, and the queries on it.

A schedule is created once (`schedule.create`), fires zero or more times (`schedule.fire`, each
committed with the message it delivered: both or neither) and ends when its last fire is done or
it is cancelled (`schedule.cancel`). The engine computes every next fire time and writes it into
the event, so projecting needs no cron library and every clone projects the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from thrum_engine.store.apply import json_column  # apply imports this module once json_column exists

if TYPE_CHECKING:
    from thrum_engine.store.db import Store

Op = tuple[str, tuple]


def _create(ev: dict, d: dict) -> Iterable[Op]:
    yield (
        (
            "INSERT OR IGNORE INTO schedules(id, author, addressed, content, format, kind, at, cron, ask,"
            " until_reply, thread_id, created_at, status, next_at, origin) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        ),
        (
            d["schedule_id"],
            ev["author"],
            json_column(d.get("to") or []),
            d["content"],
            d.get("format", "markdown"),
            d["kind"],
            d.get("at"),
            d.get("cron"),
            1 if d.get("ask") else 0,
            1 if d.get("until_reply") else 0,
            d.get("thread_id"),
            ev["ts"],
            "pending" if d.get("next_at") else "done",
            d.get("next_at"),
            d.get("origin", ""),
        ),
    )


def _fire(ev: dict, d: dict) -> Iterable[Op]:
    nxt = d.get("next_at")
    yield (
        (
            "UPDATE schedules SET fires = fires + 1, last_fired_at = ?, last_due = ?, last_message_id = ?,"
            " last_late = ?, next_at = ?, status = CASE WHEN ? IS NULL THEN 'done' ELSE status END,"
            " ended_at = CASE WHEN ? IS NULL THEN ? ELSE ended_at END"
            " WHERE id = ? AND status = 'pending' AND (last_due IS NULL OR last_due < ?)"
        ),
        (
            ev["ts"],
            d["due"],
            d.get("message_id"),
            1 if d.get("late") else 0,
            nxt,
            nxt,
            nxt,
            ev["ts"],
            d["schedule_id"],
            d["due"],
        ),
    )


def _cancel(ev: dict, d: dict) -> Iterable[Op]:
    yield (
        (
            "UPDATE schedules SET status = 'cancelled', next_at = NULL, ended_at = ?, end_reason = ?"
            " WHERE id = ? AND status = 'pending'"
        ),
        (ev["ts"], d.get("reason", ""), d["schedule_id"]),
    )


APPLIERS: dict[str, Callable[[dict, dict], Iterable[Op]]] = {
    "schedule.create": _create,
    "schedule.fire": _fire,
    "schedule.cancel": _cancel,
}


# -- queries --


async def pending(store: Store) -> list[dict]:
    """Every pending schedule's id, next fire time, author and thread (what the timer needs)."""
    return await store.all(
        "SELECT id, next_at, author, thread_id, until_reply, origin FROM schedules"
        " WHERE status = 'pending' AND next_at IS NOT NULL"
    )


async def one(store: Store, schedule_id: str) -> dict | None:
    return await store.one("SELECT * FROM schedules WHERE id = ?", (schedule_id,))


async def listing(store: Store, *, author: str | None, everything: bool, limit: int) -> list[dict]:
    """Pending schedules (`everything`: ended ones too), soonest first; `author` None: everyone's."""
    where, args = [], []
    if not everything:
        where.append("status = 'pending'")
    if author is not None:
        where.append("author = ?")
        args.append(author)
    sql = "SELECT * FROM schedules" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY status != 'pending', next_at IS NULL, next_at, created_at DESC LIMIT ?"
    return await store.all(sql, [*args, limit])


async def count_pending(store: Store, author: str | None = None) -> int:
    """Pending schedules: `author`'s, or everyone's."""
    if author is None:
        return await store.scalar("SELECT COUNT(*) FROM schedules WHERE status = 'pending'") or 0
    sql = "SELECT COUNT(*) FROM schedules WHERE status = 'pending' AND author = ?"
    return await store.scalar(sql, (author,)) or 0

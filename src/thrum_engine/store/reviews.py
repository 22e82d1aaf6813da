"""The review tables' queries (issue 14): reviews and rounds (projected), pending comments (local)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from thrum_engine.store.db import Store


async def open_review(store: Store, agent: str) -> dict | None:
    """The agent's review that is not merged yet (at most one is open at a time)."""
    return await store.one(
        "SELECT * FROM reviews WHERE agent = ? AND status != 'merged' ORDER BY opened_at DESC, id DESC LIMIT 1",
        (agent,),
    )


async def merged_heads(store: Store, agent: str | None = None) -> dict[str, dict]:
    """Each agent's last merged review, with `merged_head`: its branch's head when it was merged (the
    merge round's `base`). A branch still at that head holds nothing new, though a squash or a
    cherry-pick left its commits out of the target's history."""
    where, args = ("AND v.agent = ?", (agent,)) if agent else ("", ())
    rows = await store.all(
        "SELECT v.*, r.base AS merged_head FROM reviews v JOIN review_rounds r ON r.review_id = v.id"
        f" AND r.verdict = 'merge' WHERE v.status = 'merged' {where} ORDER BY r.at, r.event_id",
        args,
    )
    return {r["agent"]: r for r in rows}


async def open_reviews(store: Store) -> dict[str, dict]:
    rows = await store.all("SELECT * FROM reviews WHERE status != 'merged' ORDER BY opened_at, id")
    return {r["agent"]: r for r in rows}


async def review(store: Store, review_id: str) -> dict | None:
    return await store.one("SELECT * FROM reviews WHERE id = ?", (review_id,))


async def rounds(store: Store, review_id: str) -> list[dict]:
    """The submitted rounds (the table also holds the requests and the merge: `history`)."""
    rows = await store.all(
        "SELECT * FROM review_rounds WHERE review_id = ? AND verdict IN ('approve', 'request_changes')"
        " ORDER BY at, event_id",
        (review_id,),
    )
    for r in rows:
        r["comments"] = json.loads(r["comments"])
    return rows


async def history(store: Store, agent: str | None, limit: int) -> list[dict]:
    """Requests, rounds and merges, newest first: of one agent's reviews, or of everyone's."""
    where, args = ("WHERE v.agent = ?", (agent, limit)) if agent else ("", (limit,))
    rows = await store.all(
        "SELECT r.event_id, r.review_id, r.at, r.reviewer AS author, r.verdict, r.head, r.base, r.summary,"
        " r.comments, r.message_id, v.agent, v.branch, v.target FROM review_rounds r"
        f" JOIN reviews v ON v.id = r.review_id {where} ORDER BY r.at DESC, r.event_id DESC LIMIT ?",
        args,
    )
    for r in rows:
        r["comments"] = len(json.loads(r["comments"]))
    return rows


async def replies(store: Store, message_ids: list[str]) -> list[dict]:
    """Messages answering the review's messages: replies to them and the rest of their threads."""
    if not message_ids:
        return []
    marks = ",".join("?" * len(message_ids))
    return await store.all(
        f"SELECT id, author, content, created_at, reply_to FROM messages WHERE deleted = 0 AND id NOT IN ({marks})"
        f" AND (reply_to IN ({marks}) OR thread_id IN (SELECT thread_id FROM messages WHERE id IN ({marks})"
        " AND thread_id IS NOT NULL)) ORDER BY created_at, id",
        (*message_ids, *message_ids, *message_ids),
    )


async def drafts(store: Store, agent: str) -> list[dict]:
    return await store.all("SELECT * FROM review_drafts WHERE agent = ? ORDER BY created_at, id", (agent,))


ADD_DRAFT = (
    "INSERT INTO review_drafts(id, agent, path, line, end_line, side, quote, body, head, created_at)"
    " VALUES (?,?,?,?,?,?,?,?,?,?)"
)
DELETE_DRAFT = "DELETE FROM review_drafts WHERE agent = ? AND id = ?"
CLEAR_DRAFTS = "DELETE FROM review_drafts WHERE agent = ?"

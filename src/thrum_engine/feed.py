"""The activity feed and message search: every message in the repo, newest first, narrowed by who
was involved, a role, a scope, monitor authorship or text. The operator's console reads it; it is
read-only and never marks anything seen or read (looking at the feed is not reading one's mail)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from thrum_engine import names
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.registry import method
from thrum_engine.messaging import parse_tagged, rows_within_budget, with_deliveries
from thrum_engine.model import Params

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine


class FeedParams(Params):
    agent: str | None = None  # written by or delivered to this agent
    role: str | None = None  # written by or delivered to an agent with this role
    scope: str | None = None  # "type:value"
    monitors: bool = False  # only messages written by monitors
    text: str | None = None  # case-insensitive substring of the body
    thread_id: str | None = None
    limit: int = Field(200, ge=1, le=5000)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@method("message.feed", FeedParams)
async def feed(engine: Engine, caller: Caller, p: FeedParams) -> dict:
    where = ["m.deleted = 0"]
    args: list = []
    if p.agent:
        who = names.strip_at(p.agent)
        where.append(
            "(m.author = ? OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id"
            " AND d.recipient = ?))"
        )
        args += [who, who]
    if p.role:
        members = [n for n, a in engine.agents.items() if a["role"] == names.strip_at(p.role)]
        marks = ",".join("?" * len(members)) or "NULL"
        where.append(
            f"(m.author IN ({marks}) OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id"
            f" AND d.recipient IN ({marks})))"
        )
        args += members + members
    if p.scope:
        scope = parse_tagged([p.scope], "scope")[0]
        where.append(
            "EXISTS (SELECT 1 FROM json_each(m.scopes) s WHERE json_extract(s.value, '$.type') = ?"
            " AND json_extract(s.value, '$.value') = ?)"
        )
        args += [scope["type"], scope["value"]]
    if p.monitors:
        where.append("m.author LIKE 'monitor:%'")
    if p.text and p.text.strip():
        where.append("m.content LIKE ? ESCAPE '\\'")
        args.append(_like(p.text.strip()))
    if p.thread_id:
        where.append("(m.thread_id = ? OR m.id = ?)")
        args += [p.thread_id, p.thread_id]
    rows, cut = await rows_within_budget(
        engine,
        "m.*",
        f"FROM messages m WHERE {' AND '.join(where)}",
        args,
        "ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
        [p.limit],
    )
    messages = await with_deliveries(engine, rows)
    return {"messages": messages, "total": len(messages), "truncated": cut}

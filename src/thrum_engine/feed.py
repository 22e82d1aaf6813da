"""The activity feed and message search: every message in the repo, newest first, narrowed by who
was involved, a role, a scope, monitor authorship or text. The operator's console reads it; it is
read-only and never marks anything seen or read (looking at the feed is not reading one's mail)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from thrum_engine import names
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.registry import method
from thrum_engine.messaging import scope_filter, with_deliveries
from thrum_engine.model import Params
from thrum_engine.store import queries

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


@method("message.feed", FeedParams)
async def feed(engine: Engine, caller: Caller, p: FeedParams) -> dict:
    involving: list[list[str]] = []  # each: one of them wrote it or received it
    if p.agent:
        involving.append([names.strip_at(p.agent)])
    if p.role:
        role = names.strip_at(p.role)
        involving.append([n for n, a in engine.agents.items() if a["role"] == role])
    page = await queries.feed_page(
        engine.store,
        limit=p.limit,
        budget=engine.settings.messages.max_page_bytes,
        involving=involving,
        scope=scope_filter(p.scope, what="scope"),
        monitors=p.monitors,
        text=p.text.strip() if p.text and p.text.strip() else None,
        thread_id=p.thread_id,
    )
    messages = await with_deliveries(engine, page.rows)
    return {"messages": messages, "total": len(messages), "truncated": page.cut}

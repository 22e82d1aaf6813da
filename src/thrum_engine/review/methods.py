"""The review methods: thin wrappers that check who may do what, then call `service`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from thrum_engine import names
from thrum_engine.engine.authority import is_operator, require_agent_owner, require_operator
from thrum_engine.engine.core import Caller, Engine
from thrum_engine.engine.registry import method
from thrum_engine.errors import InvalidInput, NotFound
from thrum_engine.model import Params
from thrum_engine.review import service


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=4096)
    body: str = Field(min_length=1, max_length=20_000)
    line: int | None = Field(None, ge=1)
    end_line: int | None = Field(None, ge=1)
    side: Literal["new", "old"] = "new"


class RequestParams(Params):
    note: str = Field("", max_length=4000)
    agent: str | None = None  # the operator asks on an agent's behalf


class ListParams(Params):
    all: bool = False


class WhichParams(Params):
    review_id: str | None = None
    agent: str | None = None


class HistoryParams(Params):
    agent: str | None = None
    limit: int = Field(100, ge=1, le=1000)


class DiffParams(Params):
    agent: str
    commit: str | None = Field(None, max_length=200)
    context: int = Field(3, ge=0, le=1000)


class DraftParams(Params):
    agent: str
    add: CommentIn | None = None
    remove: str | None = None
    clear: bool = False


class SubmitParams(Params):
    agent: str
    verdict: Literal["approve", "request_changes"]
    summary: str = Field("", max_length=20_000)
    comments: list[CommentIn] = Field(default_factory=list, max_length=500)


class PreflightParams(Params):
    agent: str
    strategy: Literal["merge", "squash", "rebase"] = "merge"


class MergeParams(PreflightParams):
    force: bool = False
    teardown: bool = False
    delete_branch: bool = False
    keep_agent: bool = False


def _agent_for(engine: Engine, caller: Caller, agent: str | None) -> str:
    """An agent asks about its own review; the operator names one (or is asked to)."""
    if agent is not None:  # "" is an empty name, not "mine"
        return names.named(agent, "--agent")
    if caller.name and caller.name in engine.agents and engine.agents[caller.name].get("kind") != "user":
        return caller.name
    raise InvalidInput("which agent? pass --agent NAME (or run it from the agent's worktree)")


@method("review.request", RequestParams, identity=True, writes=True)
async def request(engine: Engine, caller: Caller, p: RequestParams) -> dict:
    agent = _agent_for(engine, caller, p.agent)
    require_agent_owner(engine, caller, agent, f"asking for review of @{agent}'s work")
    return await service.request(engine, caller.name or "system", agent, p.note)


@method("review.list", ListParams)
async def list_(engine: Engine, caller: Caller, p: ListParams) -> dict:
    entries = await service.queue(engine, everyone=p.all)
    return {"reviews": entries, "needs_you": sum(1 for e in entries if e["needs_you"])}


async def _which(engine: Engine, caller: Caller, p: WhichParams) -> tuple[dict | None, str]:
    if p.review_id:
        review = await service.find_review(engine, p.review_id, None)
        assert review is not None
        return review, review["agent"]
    agent = _agent_for(engine, caller, p.agent)
    return await service.find_review(engine, None, agent), agent


@method("review.show", WhichParams)
async def show(engine: Engine, caller: Caller, p: WhichParams) -> dict:
    review, agent = await _which(engine, caller, p)
    if review is None:
        raise NotFound(f"no review of @{agent} yet (`thrum review request` asks for one)")
    return await service.show(engine, review)


@method("review.comments", WhichParams)
async def comments(engine: Engine, caller: Caller, p: WhichParams) -> dict:
    review, agent = await _which(engine, caller, p)
    return await service.comments(engine, review, agent, with_pending=is_operator(engine, caller))


_KINDS = {
    "request": "requested",
    "approve": "approved",
    "request_changes": "changes_requested",
    "merge": "merged",
}


@method("review.history", HistoryParams)
async def history(engine: Engine, caller: Caller, p: HistoryParams) -> dict:
    """What happened to reviews, newest first, for the feed and an agent's conversation: who asked
    for review, each verdict with its comment count, each merge."""
    from thrum_engine.store import reviews as q

    agent = names.named(p.agent, "--agent") if p.agent is not None else None  # "" is not "everyone"
    rows = await q.history(engine.store, agent, p.limit)
    events = []
    for r in rows:
        kind = _KINDS.get(r["verdict"], r["verdict"])
        e = {
            "event_id": r["event_id"],
            "review_id": r["review_id"],
            "kind": kind,
            "at": r["at"],
            "author": r["author"],
            "agent": r["agent"],
            "branch": r["branch"],
            "target": r["target"],
            "head": r["base"] if kind == "merged" else r["head"],
            "message_id": r["message_id"],
        }
        if kind == "merged":
            e |= {"strategy": r["summary"], "merged_commit": r["head"]}
        elif kind == "requested":
            e["note"] = r["summary"]
        else:
            e |= {"summary": r["summary"], "comments": r["comments"]}
        events.append(e)
    return {"events": events}


@method("review.diff", DiffParams)
async def diff(engine: Engine, caller: Caller, p: DiffParams) -> dict:
    return await service.diff(engine, p.agent.removeprefix("@"), p.commit, p.context)


@method("review.draft", DraftParams, writes=True)
async def draft(engine: Engine, caller: Caller, p: DraftParams) -> dict:
    require_operator(engine, caller, "pending review comments")
    agent = p.agent.removeprefix("@")
    added = None
    if p.add is not None:
        added = await service.add_draft(engine, agent, p.add.model_dump())
    if p.remove is not None or p.clear:
        await service.remove_draft(engine, agent, None if p.clear else p.remove)
    from thrum_engine.store import reviews as q

    return {"agent": agent, "added": added, "pending": await q.drafts(engine.store, agent)}


@method("review.submit", SubmitParams, identity=True, writes=True)
async def submit(engine: Engine, caller: Caller, p: SubmitParams) -> dict:
    agent = p.agent.removeprefix("@")
    assert caller.name is not None
    comments = [c.model_dump() for c in p.comments]
    # The pending comments are the operator's (`review.draft`): a reviewer agent's verdict from its
    # own worktree leaves them pending.
    mine = is_operator(engine, caller)
    return await service.submit(engine, caller.name, agent, p.verdict, p.summary, comments, with_pending=mine)


@method("review.preflight", PreflightParams)
async def preflight(engine: Engine, caller: Caller, p: PreflightParams) -> dict:
    return await service.preflight(engine, p.agent.removeprefix("@"), p.strategy)


@method("review.merge", MergeParams, writes=True, timeout=False)
async def merge(engine: Engine, caller: Caller, p: MergeParams) -> dict:
    require_operator(engine, caller, "merging into the target branch")
    from thrum_engine.identity import author_of

    return await service.merge(
        engine,
        author_of(engine, caller),
        p.agent.removeprefix("@"),
        p.strategy,
        force=p.force,
        teardown=p.teardown,
        delete_branch=p.delete_branch,
        keep_agent=p.keep_agent,
        caller=caller,
    )

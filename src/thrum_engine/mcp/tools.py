"""The MCP tools: typed inputs (their JSON Schemas are what `tools/list` shows) and what each one asks
of the engine. Thin on purpose: validation of names, bodies and permissions is the engine's, so an
agent gets the same answers over MCP as from the CLI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from thrum_engine.asks import MAX_NOTE
from thrum_engine.mcp.link import EngineLink

Format = Literal["markdown", "plain", "json"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _listed(value: object) -> object:
    """A list field given one string: models often send `"to": "@coord"` (or "@a, @b") where the
    schema says a list; taken as the list it names, not refused (walk, session 18)."""
    if isinstance(value, str):
        return [w for w in value.replace(",", " ").split() if w]
    return value


Names = Annotated[list[str], BeforeValidator(_listed)]


class SendMessage(_Input):
    to: Names = Field(
        min_length=1, description="recipients: @name, @role or @everyone (e.g. ['@alice', '@reviewer'])"
    )
    body: str = Field(min_length=1, description="the message text")
    mentions: Names = Field(default_factory=list, description="agents to @mention (also receive it)")
    thread_id: str | None = Field(None, description="continue this thread (thr_...)")
    format: Format = "markdown"
    refs: Names = Field(
        default_factory=list, description="what it is about, TYPE:VALUE (a beads task: 'bd:123')"
    )
    idempotency_key: str | None = Field(
        None,
        description="a key of yours for this message: sending again with the same key (a retry) stores"
        " nothing new and returns the first message's id",
    )
    ask: bool = Field(False, description="it needs an answer: open until each recipient replies or acks")


class CheckMessages(_Input):
    unread_only: bool = Field(True, description="only messages not read yet")
    limit: int = Field(20, ge=1, le=200, description="at most this many, oldest first")
    mark_read: bool = Field(True, description="mark the returned messages read")
    from_agent: str | None = Field(None, description="only messages from this agent (@name)")


class WaitForMessage(_Input):
    timeout: float = Field(60.0, ge=0, le=3600, description="seconds to wait before giving up")
    from_agent: str | None = Field(None, description="only a message from this agent (@name)")


class Reply(_Input):
    message_id: str = Field(description="the message to answer (msg_...)")
    body: str = Field(min_length=1, description="the reply text")
    format: Format = "markdown"
    idempotency_key: str | None = Field(None, description="as for send_message: a retry stores nothing new")


class ListAgents(_Input):
    role: str | None = Field(None, description="only agents with this role")


class Team(_Input):
    all: bool = Field(False, description="include offline agents")


class WhoHas(_Input):
    path: str = Field(min_length=1, description="a file path (relative to the repo, or absolute)")


class BroadcastMessage(_Input):
    body: str = Field(min_length=1, description="the message text, sent to every agent")
    format: Format = "markdown"


class Ack(_Input):
    message_id: str = Field(description="the ask addressed to you (msg_...) to close without a reply")
    note: str = Field("", max_length=MAX_NOTE, description="why, or what you will do (the sender sees it)")


class OpenAsks(_Input):
    mine: bool = Field(False, description="the asks you sent (default: the asks waiting for your answer)")


class SetIntent(_Input):
    text: str = Field(description="what you are working on now (empty clears it)")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input: type[_Input]
    run: Callable[[EngineLink, Any], Awaitable[Any]]
    identity: bool = True  # needs the agent's identity


async def _send(link: EngineLink, a: SendMessage) -> Any:
    params = {"to": a.to, "body": a.body, "mentions": a.mentions, "format": a.format}
    if a.thread_id:
        params["thread_id"] = a.thread_id
    if a.refs:
        params["refs"] = a.refs
    if a.idempotency_key is not None:
        params["idempotency_key"] = a.idempotency_key
    if a.ask:
        params["ask"] = True
    return await link.call("message.send", params)


# A client caps a tool's result (Claude Code: MAX_MCP_OUTPUT_TOKENS, 25k tokens by default) and answers
# an error in its place: one page of bodies stays well under it, and what is not returned is not marked
# read (walk, session 21: 1.2 MB returned, refused by the client, every message marked read).
PAGE_BYTES = 48 * 1024
BODY_CHARS = 8000  # as the hooks cut a long body, with the command that reads it whole


def cut_text(text: str, message_id: str) -> str:
    """A body as a tool result or a channel event carries it: cut past BODY_CHARS, with the command
    that reads it whole."""
    if len(text) <= BODY_CHARS:
        return text
    return (
        text[:BODY_CHARS] + f"… ({len(text)} chars in all: `thrum message get {message_id}` reads it whole)"
    )


def _cut(m: dict) -> dict:
    body = m.get("body") or {}
    text = body.get("content")
    cut = cut_text(text, m["message_id"]) if isinstance(text, str) else text
    if cut is not text:
        m["body"] = {**body, "content": cut, "cut": True}
    return m


async def _check(link: EngineLink, a: CheckMessages) -> Any:
    params: dict[str, Any] = {
        "unread": a.unread_only,
        "page_size": a.limit,
        "oldest": True,
        "max_bytes": PAGE_BYTES,
    }
    if a.from_agent:
        params["from_agent"] = a.from_agent
    r = await link.call("message.inbox", params)
    fresh = [m["message_id"] for m in r["messages"] if m.get("is_read") is False]
    if a.mark_read and a.unread_only and fresh:
        await link.call("message.read", {"message_ids": fresh})
        for m in r["messages"]:
            m["is_read"] = True
        r["unread"] = max(0, r["unread"] - len(fresh))
    out = {"messages": [_cut(m) for m in r["messages"]], "unread": r["unread"], "total": r["total"]}
    if r.get("truncated") or r.get("next_offset") is not None:
        out["more"] = True  # call again for the rest
    return out


async def _wait(link: EngineLink, a: WaitForMessage) -> Any:
    params: dict[str, Any] = {"timeout": a.timeout}
    if a.from_agent:
        params["from_agent"] = a.from_agent
    r = await link.call_alone("message.wait", params, timeout=a.timeout + 30)
    for m in r.get("messages") or ():
        _cut(m)
    return r


async def _reply(link: EngineLink, a: Reply) -> Any:
    params: dict[str, Any] = {"message_id": a.message_id, "body": a.body, "format": a.format}
    if a.idempotency_key is not None:
        params["idempotency_key"] = a.idempotency_key
    return await link.call("message.reply", params)


async def _agents(link: EngineLink, a: ListAgents) -> Any:
    return await link.call("agent.list", {"role": a.role} if a.role else {})


async def _team(link: EngineLink, a: Team) -> Any:
    return await link.call("team.list", {"all": a.all})


async def _who_has(link: EngineLink, a: WhoHas) -> Any:
    return await link.call("team.who_has", {"path": a.path})


async def _broadcast(link: EngineLink, a: BroadcastMessage) -> Any:
    return await link.call("message.send", {"broadcast": True, "body": a.body, "format": a.format})


async def _ack(link: EngineLink, a: Ack) -> Any:
    params = {"message_id": a.message_id}
    if a.note:
        params["note"] = a.note
    return await link.call("ask.ack", params)


async def _asks(link: EngineLink, a: OpenAsks) -> Any:
    return await link.call("ask.list", {"mine": True} if a.mine else {"to_me": True})


async def _intent(link: EngineLink, a: SetIntent) -> Any:
    return await link.call("session.set_intent", {"text": a.text})


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        Tool("send_message", "Send a message to teammates (@name, @role or @everyone).", SendMessage, _send),
        Tool(
            "check_messages",
            "Your messages, oldest first; by default only unread ones, which it then marks read.",
            CheckMessages,
            _check,
        ),
        Tool(
            "wait_for_message",
            "Block until a new message for you arrives (pushed by the engine), or the timeout passes.",
            WaitForMessage,
            _wait,
        ),
        Tool("reply", "Reply to a message, in its thread, to its author and audience.", Reply, _reply),
        Tool(
            "list_agents", "The registered agents (name, role, module, worktree).", ListAgents, _agents, False
        ),
        Tool("team", "Who is here, what they are doing, and their unread counts.", Team, _team, False),
        Tool("who_has", "Which worktrees (and agents) are changing a file.", WhoHas, _who_has, False),
        Tool("broadcast_message", "Send a message to every agent.", BroadcastMessage, _broadcast),
        Tool(
            "open_asks",
            "Asks waiting for your answer (reply in the thread, or ack), with age and due time;"
            " mine=true: the asks you sent that are still open.",
            OpenAsks,
            _asks,
        ),
        Tool(
            "ack",
            "Close an ask addressed to you without a reply (an optional note for the sender).",
            Ack,
            _ack,
        ),
        Tool("set_intent", "Tell the team what you are working on now.", SetIntent, _intent),
    )
}

"""Pydantic models for what crosses a boundary inside the engine: events and RPC params."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EVENT_TYPES = (
    "agent.register",
    "agent.update",
    "agent.delete",
    "session.start",
    "session.update",
    "session.end",
    "message.create",
    "message.edit",
    "message.delete",
    "message.read",
    "message.purge",
)


class Event(BaseModel):
    """One line of the journal. `id` is `evt_<ULID>`, so ids sort in commit order."""

    model_config = ConfigDict(extra="forbid")

    v: int = 1
    id: str
    type: str
    author: str
    ts: str
    data: dict[str, Any]


# Listing bounds: the CLI checks them first for a friendlier error, the engine is the authority.
MAX_PAGE_SIZE = 1000
MAX_PAGE = 1_000_000


class Params(BaseModel):
    """Base for RPC params: unknown keys are refused so a typo never passes silently; NaN and
    infinities are refused for every float (`after: NaN` must be invalid params, not an internal error)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    caller: str | None = None


class RegisterParams(Params):
    name: str
    role: str
    module: str = ""
    display: str = ""
    runtime: str = ""
    kind: Literal["agent", "user"] = "agent"
    intent: str = ""
    force: bool = False
    start_session: bool = False


class AgentListParams(Params):
    role: str | None = None
    module: str | None = None


class AgentNameParams(Params):
    name: str
    force: bool = False


class CleanupParams(Params):
    threshold_days: float = Field(7, ge=0)
    dry_run: bool = True


class SetStatusParams(Params):
    status: Literal["working", "idle", "blocked", "stuck", "online"]
    agent: str | None = None


class SessionStartParams(Params):
    intent: str = ""


class SessionEndParams(Params):
    reason: Literal["normal", "crash"] = "normal"


class SessionListParams(Params):
    active: bool = False
    agent: str | None = None


class TextParams(Params):
    text: str


class SendParams(Params):
    body: str
    to: list[str] = Field(default_factory=list)
    broadcast: bool = False
    mentions: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list)
    refs: list[str] = Field(default_factory=list)
    thread_id: str | None = None
    format: Literal["markdown", "plain", "json"] = "markdown"
    structured: Any = None


class ReplyParams(Params):
    message_id: str
    body: str
    format: Literal["markdown", "plain", "json"] = "markdown"


class InboxParams(Params):
    unread: bool = False
    mentions: bool = False
    from_agent: str | None = None
    scope: str | None = None
    all: bool = False
    page_size: int | None = Field(None, ge=1, le=MAX_PAGE_SIZE)
    page: int = Field(1, ge=1, le=MAX_PAGE)
    offset: int | None = Field(None, ge=0, le=MAX_PAGE * MAX_PAGE_SIZE)  # overrides page: a listing's next_offset
    oldest: bool = False
    peek: bool = False


class SentParams(Params):
    to: str | None = None
    unread: bool = False
    limit: int = Field(50, ge=1, le=1000)


class MessageIdParams(Params):
    message_id: str


class EditParams(Params):
    message_id: str
    body: str


class DeleteParams(Params):
    message_id: str
    force: bool = False


class ReadParams(Params):
    message_ids: list[str] = Field(default_factory=list)
    all: bool = False


class WaitParams(Params):
    timeout: float = Field(30, ge=0)
    after: float | None = None  # seconds relative to now; default: only new messages
    scope: str | None = None
    mention: str | None = None
    from_agent: str | None = None


class PurgeParams(Params):
    before: str | None = None  # ISO timestamp
    all: bool = False
    confirm: bool = False


class TeamParams(Params):
    all: bool = False


class PingParams(Params):
    agent: str


class WhoHasParams(Params):
    path: str


class EmptyParams(Params):
    pass


class PrimeParams(Params):
    pass

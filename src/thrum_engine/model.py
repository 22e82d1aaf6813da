"""Pydantic models for what crosses a boundary inside the engine: events and RPC params."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

# -- journal events ------------------------------------------------------------------------------------------
#
# What `store.apply` reads from each event, as types. Journal lines come from this engine, from older and
# newer Thrums and (with git sync) from other machines, so every line read back is checked against these
# before it is applied: a line that fails is set aside instead of stopping the engine. The models only
# check; the projection reads the line's own dict (with the same defaults), so they are strict (no
# coercion: what passes is exactly what the SQL binds) and allow extra fields (a newer writer's).

EVENT_VERSION = 1  # `v` this Thrum writes; lines with a higher one are a newer writer's, applied as far as known


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class Tagged(_Strict):
    """A scope or ref: `module:auth` is written as {"type": "module", "value": "auth"}."""

    type: str
    value: str


class AgentFields(_Strict):
    role: str = ""
    module: str = ""
    display: str = ""
    runtime: str = ""
    kind: str = ""
    worktree: str = ""
    status: str = ""
    status_at: str | None = None
    intent: str = ""
    task: str = ""


class SessionFields(_Strict):
    intent: str = ""
    task: str = ""


class AgentRegisterData(_Strict):
    name: str
    role: str
    module: str = ""
    display: str = ""
    runtime: str = ""
    kind: str = "agent"
    worktree: str = ""
    registered_at: str = ""
    intent: str = ""


class AgentNameData(_Strict):
    name: str


class AgentUpdateData(AgentNameData):
    fields: AgentFields = AgentFields()


class SessionIdData(_Strict):
    session_id: str


class SessionStartData(SessionIdData):
    agent: str
    intent: str = ""


class SessionUpdateData(SessionIdData):
    fields: SessionFields = SessionFields()


class SessionEndData(SessionIdData):
    reason: str = "normal"


class MessageIdData(_Strict):
    message_id: str


class MessageCreateData(MessageIdData):
    content: str
    format: str = "markdown"
    created_at: str = ""
    structured: Any = None
    recipients: list[str] = []
    addressed: list[str] = []
    broadcast: bool = False
    mentions: list[str] = []
    mentioned_agents: list[str] = []
    scopes: list[Tagged] = []
    refs: list[Tagged] = []
    thread_id: str | None = None
    reply_to: str | None = None
    thread_root: str | None = None

    @model_validator(mode="after")
    def _root_has_thread(self) -> MessageCreateData:
        # A reply that starts a thread sets the root's thread_id to its own: it needs one.
        if self.thread_root and not self.thread_id:
            raise ValueError("thread_root without thread_id")
        return self


class MessageEditData(MessageIdData):
    content: str


class MessageIdsData(_Strict):
    message_ids: list[str] = []
    at: str = ""


class MessageNotifiedData(MessageIdsData):
    recipient: str


class MessagePurgeData(_Strict):
    before: str | None = None


class Event(_Strict):
    """One line of the journal. `id` is `evt_<ULID>`, so ids sort in commit order. An unknown `type`
    (a newer writer's) is checked only this far and then skipped."""

    v: int = Field(ge=1)
    id: str = Field(pattern=r"^evt_[0-9A-Za-z]{26}$")
    type: str
    author: str
    ts: str
    data: dict[str, Any] = {}


def _typed(data: type[BaseModel]) -> type[Event]:
    return create_model(f"Event_{data.__name__}", __base__=Event, data=(data, ...))  # type: ignore[call-overload]


EVENT_MODELS: dict[str, type[Event]] = {
    "agent.register": _typed(AgentRegisterData),
    "agent.update": _typed(AgentUpdateData),
    "agent.delete": _typed(AgentNameData),
    "session.start": _typed(SessionStartData),
    "session.update": _typed(SessionUpdateData),
    "session.end": _typed(SessionEndData),
    "message.create": _typed(MessageCreateData),
    "message.edit": _typed(MessageEditData),
    "message.delete": _typed(MessageIdData),
    "message.read": _typed(MessageIdsData),
    "message.seen": _typed(MessageIdsData),
    "message.notified": _typed(MessageNotifiedData),
    "message.purge": _typed(MessagePurgeData),
}
EVENT_TYPES = tuple(EVENT_MODELS)


class Params(BaseModel):
    """Base for RPC params: unknown keys are refused so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")

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
    page_size: int | None = Field(None, ge=1, le=1000)
    page: int = Field(1, ge=1)
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

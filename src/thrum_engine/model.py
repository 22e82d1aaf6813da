"""Pydantic models for what crosses a boundary inside the engine: events and RPC params."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, NotRequired, Required

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict

from thrum_engine.durations import MAX_DURATION

# -- journal events ------------------------------------------------------------------------------------------
#
# What `store.apply` reads from each event, as types. Journal lines come from this engine, from older and
# newer Thrums and (with git sync) from other machines, so every line read back is checked against these
# before it is applied: a line that fails is set aside instead of stopping the engine.
#
# TypedDicts validated by pydantic (`EVENT_ADAPTERS`) rather than BaseModels: the same strict checks, but
# no model instance is built per line (7x cheaper on the rebuild path). They only check; the projection
# reads the line's own dict with the same defaults, so they are strict (no coercion: what passes is exactly
# what the SQL binds) and allow extra fields (a newer writer's). A missing field is fine where the applier
# has a default; an explicit null only where the column takes one.

EVENT_VERSION = (
    1  # `v` this Thrum writes; lines with a higher one are a newer writer's, applied as far as known
)

_OPEN = ConfigDict(strict=True, extra="allow")

# How deep a message's `structured` value may nest. A send takes SEND_DEPTH; a journal line up to
# READ_DEPTH: listings carry the value five or more levels below their answer's top, and a client
# parses answers to a depth of 200 (rpc/lightjson.MAX_DEPTH), so a message accepted at 198 levels made
# every later inbox and `sent` of its reader fail (reliability probe, session 22, R1). Lines an older
# Thrum accepted below that stay readable: the whole message would go with the line.
SEND_DEPTH = 32
READ_DEPTH = 190  # what an answer can carry under the client's 200, five levels down and some to spare


def json_problem(value: object, limit: int, *, finite: bool) -> str | None:
    """Why `value` is not JSON a reader can take back: nested past `limit` levels, or (with
    `finite`) a NaN or infinity, which JSON has no words for (the journal would hold a line that is
    not JSON, read back as null). Iterative: the depth is what is being checked."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return f"nested more than {limit} levels deep"
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
        elif finite and isinstance(item, float) and not math.isfinite(item):
            return "NaN and infinities are not JSON"
    return None


def _checked(limit: int, *, finite: bool):
    from pydantic_core import PydanticCustomError

    def check(value: Any) -> Any:
        problem = json_problem(value, limit, finite=finite)
        if problem:
            raise PydanticCustomError("structured", "{problem}", {"problem": problem})
        return value

    return AfterValidator(check)


Sendable = Annotated[Any, _checked(SEND_DEPTH, finite=True)]
Readable = Annotated[Any, _checked(READ_DEPTH, finite=False)]  # older lines may hold a NaN: kept


class Tagged(TypedDict):
    """A scope or ref: `module:auth` is written as {"type": "module", "value": "auth"}."""

    __pydantic_config__ = _OPEN  # type: ignore[misc]
    type: str
    value: str


class _AgentDetails(TypedDict, total=False):
    """Agent columns that both a registration and an update may carry (and `role`, below)."""

    __pydantic_config__ = _OPEN  # type: ignore[misc]
    module: str
    display: str
    runtime: str
    kind: str
    worktree: str
    intent: str


class _AgentColumns(_AgentDetails, total=False):
    role: str


class AgentFields(_AgentColumns, total=False):
    status: str
    status_at: str | None
    task: str


class SessionFields(TypedDict, total=False):
    __pydantic_config__ = _OPEN  # type: ignore[misc]
    intent: str
    task: str


class AgentRegisterData(_AgentDetails, total=False):
    name: Required[str]
    role: Required[str]
    registered_at: str
    origin: str  # the registering clone's id (sync)
    host: str


class AgentNameData(TypedDict):
    __pydantic_config__ = _OPEN  # type: ignore[misc]
    name: str


class AgentUpdateData(AgentNameData):
    fields: NotRequired[AgentFields]


class SessionIdData(TypedDict):
    __pydantic_config__ = _OPEN  # type: ignore[misc]
    session_id: str


class SessionStartData(SessionIdData):
    agent: str
    intent: NotRequired[str]


class SessionUpdateData(SessionIdData):
    fields: NotRequired[SessionFields]


class SessionEndData(SessionIdData):
    reason: NotRequired[str]


class MessageIdData(TypedDict):
    __pydantic_config__ = _OPEN  # type: ignore[misc]
    message_id: str


class MessageCreateData(MessageIdData):
    content: str
    format: NotRequired[str]
    created_at: NotRequired[str]
    structured: NotRequired[Readable]
    recipients: NotRequired[list[str]]
    addressed: NotRequired[list[str]]
    broadcast: NotRequired[bool]
    mentions: NotRequired[list[str]]
    mentioned_agents: NotRequired[list[str]]
    scopes: NotRequired[list[Tagged]]
    refs: NotRequired[list[Tagged]]
    thread_id: NotRequired[str | None]
    reply_to: NotRequired[str | None]
    thread_root: NotRequired[str | None]
    idempotency_key: NotRequired[str]  # the sender's key (issue 16): a retry with it stores nothing new
    meta: NotRequired[dict[str, Any]]  # what marks the message beyond its body (a schedule's fire)
    ask: NotRequired[bool]  # issue 16: needs an answer from each recipient
    due_at: NotRequired[str | None]  # an ask's deadline: past it, the sender is told
    reminds: NotRequired[str]  # a reminder of this ask (the engine's)
    overdue: NotRequired[str]  # this ask went unanswered past its due time (the engine's)


def _root_has_thread(d: MessageCreateData) -> MessageCreateData:
    # A reply that starts a thread sets the root's thread_id to its own: it needs one.
    if d.get("thread_root") and not d.get("thread_id"):
        raise ValueError("thread_root without thread_id")
    return d


class MessageEditData(MessageIdData):
    content: str


class MessageIdsData(TypedDict, total=False):
    __pydantic_config__ = _OPEN  # type: ignore[misc]
    message_ids: list[str]
    at: str


class MessageNotifiedData(MessageIdsData):
    recipient: Required[str]
    # The delivery path (delivery_paths.PATHS). Absent: a nudge (lines written before paths were
    # recorded, and the nudger's until it wrote one): store.apply reads it with that default.
    via: NotRequired[str]


class MessagePurgeData(TypedDict, total=False):
    __pydantic_config__ = _OPEN  # type: ignore[misc]
    before: str | None


class Event(TypedDict):
    """One line of the journal. `id` is `evt_<ULID>`, so ids sort in commit order. An unknown `type`
    (a newer writer's) is checked only this far and then skipped."""

    __pydantic_config__ = _OPEN  # type: ignore[misc]
    v: Annotated[int, Field(ge=1)]
    id: Annotated[str, Field(pattern=r"^evt_[0-9A-Za-z]{26}$")]
    type: str
    author: str
    ts: str
    data: NotRequired[dict[str, Any]]


EVENT_DATA: dict[str, Any] = {
    "agent.register": AgentRegisterData,
    "agent.update": AgentUpdateData,
    "agent.delete": AgentNameData,
    "session.start": SessionStartData,
    "session.update": SessionUpdateData,
    "session.end": SessionEndData,
    "message.create": Annotated[MessageCreateData, AfterValidator(_root_has_thread)],
    "message.edit": MessageEditData,
    "message.delete": MessageIdData,
    "message.read": MessageIdsData,
    "message.seen": MessageIdsData,
    "message.notified": MessageNotifiedData,
    "message.purge": MessagePurgeData,
}


# Review events (issue 14): a request for review, a submitted round (verdict + comments), a merge.
class ReviewIdData(TypedDict):
    __pydantic_config__ = _OPEN  # type: ignore[misc]
    review_id: Annotated[str, Field(pattern=r"^rev_[0-9A-Za-z]{26}$")]
    agent: str


class ReviewRequestData(ReviewIdData):
    branch: NotRequired[str]
    target: NotRequired[str]
    note: NotRequired[str]
    head: NotRequired[str]


class ReviewComment(TypedDict):
    __pydantic_config__ = _OPEN  # type: ignore[misc]
    id: str
    path: str
    body: str
    line: NotRequired[int | None]
    end_line: NotRequired[int | None]
    side: NotRequired[str]
    quote: NotRequired[str]
    head: NotRequired[str]


class ReviewSubmitData(ReviewIdData):
    verdict: Literal["approve", "request_changes"]
    head: str
    branch: NotRequired[str]
    target: NotRequired[str]
    base: NotRequired[str]
    fingerprint: NotRequired[str]
    summary: NotRequired[str]
    comments: NotRequired[list[ReviewComment]]
    message_id: NotRequired[str | None]


class ReviewMergeData(ReviewIdData):
    strategy: Literal["merge", "squash", "rebase"]
    merged_commit: str
    target: NotRequired[str]
    branch: NotRequired[str]
    head: NotRequired[str]


EVENT_DATA.update(
    {"review.request": ReviewRequestData, "review.submit": ReviewSubmitData, "review.merge": ReviewMergeData}
)


# Schedules (issue 16): created once, fired (each fire committed with the message it delivered),
# cancelled. The engine writes every next fire time into the event (see store/schedules.py).
class ScheduleIdData(TypedDict):
    __pydantic_config__ = _OPEN  # type: ignore[misc]
    schedule_id: Annotated[str, Field(pattern=r"^sch_[0-9A-Za-z]{26}$")]


class ScheduleCreateData(ScheduleIdData):
    to: list[str]
    content: str
    kind: Literal["at", "cron"]
    format: NotRequired[str]
    at: NotRequired[str | None]
    cron: NotRequired[str | None]
    ask: NotRequired[bool]
    until_reply: NotRequired[bool]
    thread_id: NotRequired[str | None]
    next_at: NotRequired[str | None]
    origin: NotRequired[str]  # the clone that fires it (the creating engine's; synced clones only follow)


class ScheduleFireData(ScheduleIdData):
    due: str
    message_id: NotRequired[str | None]
    late: NotRequired[bool]
    next_at: NotRequired[str | None]


class ScheduleCancelData(ScheduleIdData):
    reason: NotRequired[str]


# Asks and the loop guard (issue 16).
class AskAckData(MessageIdData):
    note: NotRequired[str]
    at: NotRequired[str]


class AskRemindData(MessageIdData):
    recipient: str
    at: NotRequired[str]


class AskOverdueData(MessageIdData):
    recipients: list[str]
    at: NotRequired[str]


class MessageHoldData(MessageIdData):
    reason: str
    event: dict[str, Any]  # the message.create event, committed as it is on release


class MessageReleaseData(TypedDict):
    __pydantic_config__ = _OPEN  # type: ignore[misc]
    message_ids: list[str]


EVENT_DATA.update(
    {
        "schedule.create": ScheduleCreateData,
        "schedule.fire": ScheduleFireData,
        "schedule.cancel": ScheduleCancelData,
        "ask.ack": AskAckData,
        "ask.remind": AskRemindData,
        "ask.overdue": AskOverdueData,
        "message.hold": MessageHoldData,
        "message.release": MessageReleaseData,
    }
)
ENVELOPE_KEYS = frozenset(Event.__annotations__) - {"__pydantic_config__"}


def _typed(data: Any) -> TypeAdapter:
    """The envelope with `data` of one type's shape (required: every known type has a payload)."""
    make: Any = TypedDict  # called as a function: the fields are values here, not annotations
    envelope = make(
        "TypedEvent",
        {
            "v": Event.__annotations__["v"],
            "id": Event.__annotations__["id"],
            "type": str,
            "author": str,
            "ts": str,
            "data": data,
        },
    )
    envelope.__pydantic_config__ = _OPEN
    return TypeAdapter(envelope)


class _Adapters(dict[str, TypeAdapter]):
    """Each event type's adapter, built the first time a line of that type is checked: building all
    of them at import was ~40 % of this module's import (the engine's start), and a live engine
    checks only the lines it replays or syncs in."""

    def __missing__(self, etype: str) -> TypeAdapter:
        adapter = self[etype] = _typed(EVENT_DATA[etype])
        return adapter

    def get(self, etype: str, default: TypeAdapter | None = None) -> TypeAdapter | None:  # type: ignore[override]
        return self[etype] if etype in EVENT_DATA else default


EVENT_ADAPTERS = _Adapters()
ANY_EVENT = TypeAdapter(Event)  # an unknown type: the envelope only
# The fields this Thrum knows per type: anything else in `data` is a newer writer's (counted, ignored).
DATA_KEYS: dict[str, frozenset[str]] = {
    t: frozenset(getattr(d, "__origin__", d).__annotations__) - {"__pydantic_config__"}
    for t, d in EVENT_DATA.items()
}


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
    threshold_days: float = Field(7, ge=0, le=MAX_DURATION / 86400)
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
    structured: Sendable = None
    idempotency_key: str | None = None  # issue 16
    ask: bool = False  # needs an answer (issue 16)
    due: float | None = Field(None, gt=0, le=366 * 86400)  # seconds: past it the sender is told


class ReplyParams(Params):
    message_id: str
    body: str
    format: Literal["markdown", "plain", "json"] = "markdown"
    idempotency_key: str | None = None  # issue 16
    ask: bool = False
    due: float | None = Field(None, gt=0, le=366 * 86400)


# The keys of a message as listings show it (`messaging.message_view`).
MessageField = Literal[
    "message_id",
    "thread_id",
    "reply_to",
    "agent_id",
    "author",
    "body",
    "created_at",
    "updated_at",
    "deleted",
    "broadcast",
    "to",
    "mentions",
    "scopes",
    "refs",
    "tasks",
    "meta",
    "is_read",
]


class InboxParams(Params):
    unread: bool = False
    mentions: bool = False
    from_agent: str | None = None
    scope: str | None = None
    all: bool = False
    page_size: int | None = Field(None, ge=1, le=MAX_PAGE_SIZE)
    page: int = Field(1, ge=1, le=MAX_PAGE)
    offset: int | None = Field(
        None, ge=0, le=MAX_PAGE * MAX_PAGE_SIZE
    )  # overrides page: a listing's next_offset
    oldest: bool = False
    peek: bool = False
    ref: str | None = None  # TYPE:VALUE (`bd:123`); issue 16
    # Bodies in this page at most, under the engine's own cap (an MCP client's result is limited).
    max_bytes: int | None = Field(None, ge=1)
    # Only these keys of each message: the CLI's human view asks for what it prints, since parsing
    # the whole page in pure Python was a tenth of a `thrum inbox` (see `cli.messaging.SHOWN`).
    fields: list[MessageField] | None = None


class SentParams(Params):
    to: str | None = None
    unread: bool = False
    undelivered: bool = False  # issue 16: only messages some recipient has not been shown yet
    limit: int = Field(50, ge=1, le=1000)
    ref: str | None = None  # issue 16


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
    # seconds relative to now; default: only new messages
    after: float | None = Field(None, ge=-MAX_DURATION, le=MAX_DURATION)
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


# -- schedules (issue 16) --


class ScheduleCreateParams(Params):
    to: list[str] = Field(default_factory=list)
    body: str
    at: str | None = None  # ISO time (no zone: local), or HH:MM (the next one, local)
    in_seconds: float | None = Field(None, gt=0)
    cron: str | None = None
    ask: bool = False
    until_reply: bool = False
    format: Literal["markdown", "plain", "json"] = "markdown"


class ScheduleIdParams(Params):
    schedule_id: str


class ScheduleListParams(Params):
    all: bool = False
    everyone: bool = False
    limit: int = Field(200, ge=1, le=10_000)

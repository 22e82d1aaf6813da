"""Routing, inbox, receipts, threads and `wait`.

A message's recipients are resolved once, at send time, into delivery rows:
that snapshot is what makes a newly registered agent inherit no history and
what `sent` reports delivery state against.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thrum_engine import fastjson, guards, ids, names
from thrum_engine import refs as refs_mod
from thrum_engine.asks import ledger
from thrum_engine.durations import iso, parse_iso
from thrum_engine.engine.authority import require_operator
from thrum_engine.engine.bus import Waiter
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.registry import method
from thrum_engine.errors import Forbidden, InvalidInput, NotFound, TooLarge, UnknownAgent, UnknownRecipient
from thrum_engine.idempotency import check_key
from thrum_engine.identity import author_of
from thrum_engine.model import (
    DeleteParams,
    EditParams,
    InboxParams,
    MessageIdParams,
    PurgeParams,
    ReadParams,
    ReplyParams,
    SendParams,
    SentParams,
    WaitParams,
)
from thrum_engine.self_notes import note_to_self
from thrum_engine.store import queries
from thrum_engine.store.apply import addressed_of

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

EVERYONE = ("everyone", "all", "broadcast")
MAX_ADDRESSES = 256  # distinct entries in one message's to/mentions/scopes/refs
MAX_IDS = 10_000  # message ids in one request (each is an SQL parameter)


def distinct(values: list[str], what: str, *, key=None, limit: int = MAX_ADDRESSES) -> list[str]:
    """`values` without repeats (first spelling kept), refused past MAX_ADDRESSES: a list of 100,000
    copies of one address is one recipient, and should never become a 700 KB journal event."""
    if not values:  # most sends: no mentions, scopes or refs
        return []
    seen: set[str] = set()
    out = []
    for v in values:
        k = key(v) if key else v
        if k not in seen:
            seen.add(k)
            out.append(v)
            if len(out) > limit:
                raise TooLarge(f"too many {what} entries: the limit is {limit} distinct ones")
    return out


def check_answerable(recipients: list[str], author: str) -> None:
    """Refuse an ask nobody would answer: one only to its author would say "open until answered" and
    never be listed (an ask to oneself holds no ask row)."""
    if all(r == author for r in recipients):
        raise InvalidInput("an ask needs someone to answer it: a note to yourself cannot be one (drop --ask)")


def _address_key(addr: str) -> str:
    return names.strip_at(addr.strip())


def parse_tagged(values: list[str], what: str) -> list[dict]:
    out = []
    for v in values:
        kind, sep, val = v.partition(":")
        if not sep or not kind or not val:
            raise InvalidInput(f"invalid {what} {v!r}: use TYPE:VALUE, e.g. {what} module:auth")
        out.append({"type": kind, "value": val})
    return out


def resolve(
    engine: Engine, addresses: list[str], sender: str | None, *, what: str = "recipient"
) -> tuple[list[str], bool]:
    """Addresses (`@name`, `@role`, `@everyone`) -> recipient names; refuses the whole list on any
    unknown, and on an empty one (`''`, a bare `@`) as empty, not as "unknown recipient: @"."""
    recipients: list[str] = []
    broadcast = False
    unknown = []
    # `@me` or my own name: a note to myself, kept in my inbox (never nudged: nudges skip authors)
    note = False
    for raw in addresses:
        addr = names.named(raw, what)
        if sender and addr in ("me", sender):
            note = True
        elif addr in EVERYONE:
            broadcast = True
            recipients.extend(engine.agents)
        elif addr in engine.agents:
            recipients.append(addr)
        else:
            holders = [n for n, r in engine.agents.items() if r["role"] == addr]
            if holders:
                recipients.extend(sorted(holders))
            else:
                unknown.append("@" + addr)
    if unknown:
        syncing = engine.sync is not None and engine.sync.mode.name == "remote"
        hint = (
            " (registered on another clone? `thrum sync force` brings the team up to date)" if syncing else ""
        )
        raise UnknownRecipient(f"unknown {what}: {', '.join(unknown)}{hint}")
    seen: set[str] = set()
    out = []
    for r in recipients:
        if r != sender and r not in seen:
            seen.add(r)
            out.append(r)
    if note and sender:
        out.append(sender)
    return out, broadcast


_SHORT_ESCAPES = b'"\\\n\r\t\b\f'
_ESCAPED = bytes(range(32)) + b'"\\'


def stored_size(text: str) -> int:
    """Bytes `text` takes as a JSON string in the journal and in responses (without the quotes).

    The cap applies to this, not to the raw UTF-8: a control character is stored as a six-byte
    `\\u00XX` escape, so capping raw bytes let a body of control characters cost 6x the limit
    on disk and in every listing. Capping the stored size keeps every body within the limit
    wherever it lives, and no text is refused for what characters it holds."""
    raw = text.encode("utf-8")
    size = len(raw)
    special = size - len(raw.translate(None, _ESCAPED))  # C speed: ~3 ms for 1 MiB, 0.3 us for a line
    if not special:
        return size
    short = size - len(raw.translate(None, _SHORT_ESCAPES))  # `\\n`, `\\"`...: one extra byte each
    return size + short + 5 * (special - short)  # the rest of C0: `\\u00XX`, five extra


def check_body(engine: Engine, body: str, fmt: str) -> None:
    size = stored_size(body)
    cap = engine.settings.messages.max_body_bytes
    if size > cap:
        raw = len(body.encode("utf-8"))
        how = "" if raw == size else f" as stored ({raw} as UTF-8; control characters are stored escaped)"
        raise TooLarge(f"message body is {size} bytes{how}; the limit is {cap} (messages.max_body_bytes)")
    if not body.strip():
        raise InvalidInput("message body is empty")
    if fmt == "json":
        try:
            json.loads(body)
        except ValueError as exc:
            raise InvalidInput(f"--format json but the body is not JSON: {exc}") from None


def _json_size(value) -> int:
    """Bytes `value` takes as JSON in the journal (compact, UTF-8): a structured part, a list of tags."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def check_size(
    engine: Engine, body: str, *, structured=None, tagged: list | tuple = (), extra: int = 0
) -> None:
    """The cap is on the whole message as stored, not on its body alone: a tiny body with a 120 KB
    `--structured` and fourteen 120 KB `--scope`s made a 1.8 MB journal line under a 1 MiB limit.
    `tagged`: the scopes and refs as given (free text; addresses and mentions are names of agents,
    bounded by the name rules and MAX_ADDRESSES, and left out so a body at the cap still fits);
    `extra`: parts already measured."""
    cap = engine.settings.messages.max_body_bytes
    size = stored_size(body)
    if size > cap:
        check_body(engine, body, "plain")  # the body alone: its own error (as stored, escapes)
    parts = size
    others = extra + (0 if structured is None else _json_size(structured))
    others += sum(stored_size(t) + 3 for t in tagged if isinstance(t, str))  # quotes and a comma
    if parts + others > cap:
        raise TooLarge(
            f"message is {parts + others} bytes as stored (body {size}, --structured, --scope and --ref"
            f" {others}); the limit is {cap} (messages.max_body_bytes): send the rest as a file or a ref"
        )


def _stored_list(text: str) -> list:
    """A list column (addresses, scopes, refs): mostly `[]`, read without a parser."""
    return [] if text == "[]" else fastjson.loads(text)


def message_view(row: dict) -> dict:
    structured = row.get("structured")
    msg = {
        "message_id": row["id"],
        "thread_id": row["thread_id"],
        "reply_to": row["reply_to"],
        "agent_id": row["author"],
        "author": row["author"],
        "body": {"format": row["format"], "content": row["content"]},
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "deleted": bool(row["deleted"]),
        "broadcast": bool(row["broadcast"]),
        "to": _stored_list(row["addressed"]),
        "mentions": _stored_list(row["mentions"]),
        "scopes": _stored_list(row["scopes"]),
        "refs": _stored_list(row["refs"]),
    }
    if msg["refs"]:
        tasks = refs_mod.message_tasks(msg["refs"])
        if tasks:
            msg["tasks"] = tasks  # task chips (`bd-123`): issue 16
    if structured is not None:
        msg["body"]["structured"] = json.loads(structured)
    meta = row.get("meta")
    if meta is not None:
        msg["meta"] = json.loads(meta)
    if "read_at" in row:
        msg["is_read"] = row["read_at"] is not None
    return msg


def event_message_view(ev: dict) -> dict:
    """A message straight from its create event (used by `wait`, which must not hit the database)."""
    d = ev["data"]
    msg = {
        "message_id": d["message_id"],
        "thread_id": d.get("thread_id"),
        "reply_to": d.get("reply_to"),
        "agent_id": ev["author"],
        "author": ev["author"],
        "body": {"format": d.get("format", "markdown"), "content": d["content"]},
        "created_at": d.get("created_at", ev["ts"]),
        "updated_at": None,
        "deleted": False,
        "broadcast": bool(d.get("broadcast")),
        "to": addressed_of(d),
        "mentions": d.get("mentions", []),
        "scopes": d.get("scopes", []),
        "refs": d.get("refs", []),
        "is_read": False,
    }
    if d.get("structured") is not None:
        msg["body"]["structured"] = d["structured"]
    if d.get("meta") is not None:
        msg["meta"] = d["meta"]
    return msg


async def create_message(
    engine: Engine,
    author: str,
    body: str,
    *,
    to: list[str],
    broadcast: bool = False,
    mentions: list[str] = (),  # type: ignore[assignment]
    scopes: list[str] = (),  # type: ignore[assignment]
    refs: list[str] = (),  # type: ignore[assignment]
    fmt: str = "markdown",
    structured=None,
    thread_id: str | None = None,
    reply_to: str | None = None,
    thread_root: str | None = None,
    answering: str | None = None,
    typed: bool = False,
    also: Callable[[str], list[dict]] | None = None,
    idempotency_key: str | None = None,
    meta: dict | None = None,
    ask: bool = False,
    due: float | None = None,
    extra: dict | None = None,
) -> dict:
    """Validate, resolve and durably store one message; returns its create event. `typed`: the
    body already reached the recipient's pane as typed text (a first prompt), so nobody nudges.
    `also`: events that name the message (given its id), committed with it: both or neither.
    `idempotency_key`: a message `author` already stored under it (within the window) is returned
    instead, as `{"duplicate": True, "ts", "data"}`, and nothing is stored (idempotency.py).
    `meta`: what marks the message beyond its body (a schedule's fire: {"scheduled": {...}}).
    `ask`: it needs an answer from each recipient (asks/), `due` seconds from now at the latest.
    `extra`: more fields for the event's data (the engine's own marks, e.g. `reminds`).
    Agent-to-agent traffic past the loop guard (guards.py) is held instead: the returned event
    then carries `held` (the reason) and nothing is delivered until the operator releases it."""
    store = functools.partial(
        _create_message, engine, author, body, to=to, broadcast=broadcast, mentions=mentions,
        scopes=scopes, refs=refs, fmt=fmt, structured=structured, thread_id=thread_id,
        reply_to=reply_to, thread_root=thread_root, answering=answering, typed=typed, also=also,
        meta=meta, ask=ask, due=due, extra=extra,
    )  # fmt: skip
    index = engine.idempotency
    if idempotency_key is None or index is None:
        return await store(idempotency_key=idempotency_key)
    key = check_key(idempotency_key)
    asked = Request(
        body=body, fmt=fmt, structured=structured, to=to, broadcast=broadcast, mentions=mentions,
        scopes=scopes, refs=refs, thread_id=thread_id, reply_to=reply_to, answering=answering,
        ask=ask or due is not None,
    )  # fmt: skip
    while True:
        got = index.claim(author, key)
        if got is None:
            break
        if isinstance(got, str):
            again = await _stored_again(engine, got, key, asked)
            if again is not None:
                return again
            index.forget(author, key)  # purged since: the key is free again
        else:
            await got  # the same key is being stored right now: then ask again
    try:
        return await store(idempotency_key=key)
    finally:
        index.release(author, key)


@dataclass(frozen=True)
class Request:
    """What a keyed send asked for, to hold against what its key already stored."""

    body: str
    fmt: str
    structured: Any
    to: list[str]
    broadcast: bool
    mentions: list[str]
    scopes: list[str]
    refs: list[str]
    thread_id: str | None
    reply_to: str | None
    answering: str | None
    ask: bool


def _addresses(values) -> list[str]:
    """Addresses compared as a set, in one spelling (`bob` = `@bob`, `@all` = `@everyone`)."""
    out = {names.strip_at(str(v).strip()) for v in values}
    return sorted("everyone" if a in EVERYONE else a for a in out)


def _tagged(values) -> list[tuple[str, str]]:
    pairs = set()
    for v in values:
        if isinstance(v, dict):
            pairs.add((str(v.get("type")), str(v.get("value"))))
        else:
            kind, _, val = str(v).partition(":")
            pairs.add((kind, val))
    return sorted(pairs)


async def _differs(
    engine: Engine, message_id: str, stored: dict, asked: Request, *, edited: bool
) -> str | None:
    """The first field where `asked` is not what the key stored (the stored message's create data,
    or its row as create data), or None: the same request again (a retry)."""
    if not edited:  # an edit or delete since changed the body: the retry's text cannot be held to it
        if stored.get("content") != asked.body:
            return "text"
        if stored.get("structured") != asked.structured:
            return "--structured"
    if stored.get("format", "markdown") != asked.fmt:
        return "--format"
    if asked.reply_to is None:  # a reply's audience is the parent's, derived, not asked
        to = list(asked.to) + (["@everyone"] if asked.broadcast else [])
        if _addresses(addressed_of(stored)) != _addresses(to):
            return "recipients (--to/--broadcast)"
    elif stored.get("reply_to") != asked.reply_to:
        return "message replied to"
    if _addresses(stored.get("mentions") or ()) != _addresses(asked.mentions):
        return "--mention"
    if _tagged(stored.get("scopes") or ()) != _tagged(asked.scopes):
        return "--scope"
    if _tagged(stored.get("refs") or ()) != _tagged(asked.refs):
        return "--ref"
    if asked.reply_to is None and stored.get("thread_id") != asked.thread_id:
        # a send without --thread gets one when it is first replied to: still the same request
        started = asked.thread_id is None and await engine.store.scalar(
            "SELECT 1 FROM messages WHERE reply_to = ? AND thread_id = ? LIMIT 1",
            (message_id, stored.get("thread_id")),
        )
        if not started:
            return "--thread"
    if bool(stored.get("ask")) != asked.ask:
        return "--ask/--due"
    return None


async def _stored_again(engine: Engine, message_id: str, key: str, asked: Request) -> dict | None:
    """The answer to a repeated key: the original message, shaped like its create event. A key
    reused for another request (another text, recipient, format, scope, ...) is refused: a retry
    repeats its request; another message needs its own key."""

    def refuse(what: str) -> InvalidInput:
        return InvalidInput(
            f"idempotency key {key!r} was already used for another message ({message_id}):"
            f" this request's {what} differs; use a new key"
        )

    row = await queries.message_row(engine.store, message_id)
    if row is None:
        held = await queries.held_open(engine.store, message_id)  # held by the loop guard: still no message
        if held is None:
            return None
        ev = json.loads(held["event"])
        what = await _differs(engine, message_id, ev["data"], asked, edited=False)
        if what is not None:
            raise refuse(what)
        return {**ev, "duplicate": True, "held": held["reason"]}
    stored = {
        "content": row["content"],
        "structured": None if row["structured"] is None else json.loads(row["structured"]),
        "format": row["format"],
        "addressed": _stored_list(row["addressed"]),
        "mentions": _stored_list(row["mentions"]),
        "scopes": _stored_list(row["scopes"]),
        "refs": _stored_list(row["refs"]),
        "thread_id": row["thread_id"],
        "reply_to": row["reply_to"],
        "ask": bool(
            await engine.store.scalar("SELECT 1 FROM asks WHERE message_id = ? LIMIT 1", (message_id,))
        )
        or (asked.ask and not await _others_reached(engine, row)),  # a note to myself holds no ask rows
    }
    what = await _differs(engine, message_id, stored, asked, edited=bool(row["updated_at"] or row["deleted"]))
    if what is not None:
        raise refuse(what)
    data: dict = {"message_id": row["id"], "recipients": await queries.recipients_of(engine.store, row["id"])}
    if row["thread_id"]:
        data["thread_id"] = row["thread_id"]
    if row["reply_to"]:
        data["reply_to"] = row["reply_to"]
    return {"duplicate": True, "ts": row["created_at"], "author": row["author"], "data": data}


async def _others_reached(engine: Engine, row: dict) -> bool:
    return any(r != row["author"] for r in await queries.recipients_of(engine.store, row["id"]))


async def _create_message(
    engine: Engine,
    author: str,
    body: str,
    *,
    to: list[str],
    broadcast: bool,
    mentions: list[str],
    scopes: list[str],
    refs: list[str],
    fmt: str,
    structured,
    thread_id: str | None,
    reply_to: str | None,
    thread_root: str | None,
    answering: str | None,
    typed: bool,
    also: Callable[[str], list[dict]] | None,
    idempotency_key: str | None,
    meta: dict | None,
    ask: bool,
    due: float | None,
    extra: dict | None,
) -> dict:
    check_body(engine, body, fmt)
    addressed = distinct(list(to) + (["@everyone"] if broadcast else []), "--to", key=_address_key)
    mentions = distinct(list(mentions), "--mention", key=_address_key)
    scopes, refs = distinct(list(scopes), "--scope"), distinct(list(refs), "--ref")
    check_size(engine, body, structured=structured, tagged=[*scopes, *refs])
    if answering:
        # A reply to `system` or a monitor: nobody receives it, but the engine's watchers read it.
        recipients, is_broadcast, mentioned = [], False, []
        addressed = ["@" + answering]
    else:
        if not addressed:
            raise InvalidInput("a recipient is required: --to @name, --to @role or --broadcast")
        recipients, is_broadcast = resolve(engine, addressed, author)
        mentioned, _ = resolve(engine, list(mentions), author, what="mention") if mentions else ([], False)
        mentioned = [m for m in mentioned if m != author]
        recipients += [m for m in mentioned if m not in recipients]
        if not recipients:
            raise InvalidInput("nobody to deliver to: the only agent addressed is you")
        if ask or due is not None:
            check_answerable(recipients, author)
    body_id = ids.ulid()
    mid = "msg_" + body_id
    written = ["@" + names.strip_at(a) for a in addressed]
    # Empty fields are left out (the journal is parsed line by line on every rebuild); built
    # field by field rather than filtered afterwards: this runs once per message sent.
    data: dict = {"message_id": mid, "content": body}
    if fmt:
        data["format"] = fmt
    if idempotency_key is not None:
        data["idempotency_key"] = idempotency_key
    if meta:
        data["meta"] = meta
    if structured is not None:
        data["structured"] = structured
    if recipients:
        data["recipients"] = recipients
    if written and written != ["@" + r for r in recipients]:
        data["addressed"] = written
    if is_broadcast:
        data["broadcast"] = is_broadcast
    if mentions:
        data["mentions"] = ["@" + names.strip_at(m) for m in mentions]
    if mentioned:
        data["mentioned_agents"] = mentioned
    if scopes:
        data["scopes"] = parse_tagged(list(scopes), "--scope")
    if refs:
        data["refs"] = parse_tagged(list(refs), "--ref")
    if thread_id:
        data["thread_id"] = thread_id
    if reply_to:
        data["reply_to"] = reply_to
    if thread_root:
        data["thread_root"] = thread_root
    if typed:
        data["typed"] = True
    if ask or due is not None:
        data["ask"] = True
        if due is not None:
            data["due_at"] = iso(time.time() + due)
    if extra:
        data.update(extra)
    ev = engine.event("message.create", author, data, ulid=body_id)
    if recipients and also is None and not typed:
        trip = guards.attach(engine).check(author, recipients, data.get("thread_id"))
        if trip is not None:
            from thrum_engine.asks.held import hold

            return await hold(engine, ev, *trip)
    # Who nothing can surface it to, judged before the commit (a blocked `wait` takes it during it).
    unreached = ledger.unreachable(engine, recipients, author) if recipients and not typed else None
    await engine.commit(ev, *(also(mid) if also is not None else ()))
    return {**ev, "undelivered": unreached} if unreached else ev


@method("message.send", SendParams, identity=True, writes=True)
async def send(engine: Engine, caller: Caller, p: SendParams) -> dict:
    if p.thread_id is not None:  # "" is a bad id, not "no thread"
        await require_thread(engine, p.thread_id)
    author = identified(caller)
    review = await _review_request(engine, author, p.body) if REVIEW_REQUEST in p.refs else None
    ev = await create_message(
        engine,
        author,
        p.body,
        to=p.to,
        broadcast=p.broadcast,
        mentions=p.mentions,  # type: ignore[arg-type]
        scopes=p.scopes,
        refs=p.refs,
        fmt=p.format,
        structured=p.structured,
        thread_id=p.thread_id,
        also=review[1] if review else None,
        idempotency_key=p.idempotency_key,
        ask=p.ask,
        due=p.due,
    )
    d = ev["data"]
    out = {
        "message_id": d["message_id"],
        "thread_id": d.get("thread_id"),
        "recipients": d.get("recipients", []),
        "created_at": ev["ts"],
    }
    if ev.get("duplicate"):
        out["duplicate"] = True  # the key was seen: this is the message stored the first time
    if review is not None:
        out["review_id"] = review[0]
    return _reported(engine, author, ev, out)


async def require_thread(engine: Engine, thread_id: str) -> None:
    """A thread to send into: a well-formed id that something was sent in. A typo or an invented
    id was stored as a new thread of one, which nobody in the thread it meant would see."""
    ids.check_id(thread_id, "thr", "thread")
    if not await queries.thread_exists(engine.store, thread_id):
        raise NotFound(
            f"no thread {thread_id}: nothing was sent in it (a reply to a message starts a thread)"
        )


def _reported(engine: Engine, author: str, ev: dict, out: dict) -> dict:
    """What a sender is told beyond the id (issue 16): an ask, a hold, who cannot be reached yet."""
    d = ev["data"]
    if d.get("ask"):
        out["ask"] = True
        if d.get("due_at"):
            out["due_at"] = d["due_at"]
    if ev.get("held"):
        out["held"] = ev["held"]
        return out
    out["undelivered"] = ev.get("undelivered") or []
    return out


REVIEW_REQUEST = "review:request"  # the ref that makes a message a request for review


async def _review_request(engine: Engine, author: str, body: str) -> tuple[str, Callable[[str], list[dict]]]:
    """ "Done, please review" (`--ref review:request`): the message asks for review of its author's
    work, the note its body. Checked before anything is stored: work with nothing to review (or an
    author with no worktree of its own) refuses the message too, so the agent learns it at once."""
    from thrum_engine.review.service import request_data

    data = await request_data(engine, author, body)

    def events(message_id: str) -> list[dict]:
        return [engine.event("review.request", author, {**data, "message_id": message_id})]

    return data["review_id"], events


def identified(caller: Caller) -> str:
    """The caller's name, for methods registered with `identity=True` (`Engine.call` checked it)."""
    assert caller.name is not None
    return caller.name


async def get_message_row(engine: Engine, message_id: str) -> dict:
    ids.check_id(message_id, "msg", "message")
    row = await queries.message_row(engine.store, message_id)
    if row is None:
        held = await queries.held_reason(engine.store, message_id)
        if held is not None:
            raise NotFound(
                f"{message_id} is held, not delivered ({held}): `thrum held` lists it, the operator releases it"
            )
        raise NotFound(f"no message {message_id}")
    return row


async def reply_to_message(
    engine: Engine,
    author: str,
    message_id: str,
    body: str,
    fmt: str,
    *,
    idempotency_key: str | None = None,
    ask: bool = False,
    due: float | None = None,
) -> dict:
    """A reply to the parent's author and audience (those still registered), in the parent's thread
    (started here when it has none); returns the reply's create event. A reply to a reminder of an
    ask is the answer to that ask: it went to `system`, reached nobody and left the ask open
    (console walk, session 22: `r` on the reminder said "reply sent")."""
    parent = await get_message_row(engine, message_id)
    reminded = _reminded_ask(parent)
    if reminded is not None and parent["author"] == "system":
        try:
            parent = await get_message_row(engine, reminded)
        except NotFound:
            pass  # the ask is gone (purged): the reply stays the reminder's
    audience = [parent["author"]]
    if not parent["broadcast"]:
        audience += await queries.recipients_of(engine.store, parent["id"])
    # People who left since the parent was sent are dropped rather than failing the reply.
    audience = [a for a in dict.fromkeys(audience) if a != author and a in engine.agents]
    machine_author = ":" in parent["author"] or parent["author"] == "system"
    if not audience and not machine_author:
        raise InvalidInput("nobody to reply to: the parent's author and audience are gone or only you")
    return await create_message(
        engine,
        author,
        body,
        to=["@" + a for a in audience],
        fmt=fmt,
        thread_id=parent["thread_id"] or ids.new_id("thr"),
        reply_to=parent["id"],
        thread_root=None if parent["thread_id"] else parent["id"],
        answering=parent["author"] if machine_author and not audience else None,
        idempotency_key=idempotency_key,
        ask=ask,
        due=due,
    )


def _reminded_ask(row: dict) -> str | None:
    """The ask a reminder reminds of (the reminder's `meta.reminds`), or None."""
    if not row.get("meta"):
        return None
    try:
        mid = json.loads(row["meta"]).get("reminds")
    except (ValueError, AttributeError):
        return None
    return mid if isinstance(mid, str) else None


@method("message.reply", ReplyParams, identity=True, writes=True)
async def reply(engine: Engine, caller: Caller, p: ReplyParams) -> dict:
    me = identified(caller)
    ev = await reply_to_message(
        engine, me, p.message_id, p.body, p.format, idempotency_key=p.idempotency_key, ask=p.ask, due=p.due
    )
    d = ev["data"]
    out = {
        "message_id": d["message_id"],
        "thread_id": d.get("thread_id"),
        "reply_to": d.get("reply_to"),
        "recipients": d.get("recipients", []),
    }
    if ev.get("duplicate"):
        out["duplicate"] = True
    return _reported(engine, me, ev, out)


def floor_of(engine: Engine, name: str) -> str:
    return engine.agents[name]["registered_at"]


def scope_filter(scope: str | None, *, what: str = "--scope") -> tuple[str, str] | None:
    if not scope:
        return None
    tagged = parse_tagged([scope], what)[0]
    return tagged["type"], tagged["value"]


def ref_filter(ref: str | None) -> tuple[str, list[str]] | None:
    """`--ref TYPE:VALUE` as (type, the values that name it): `bd:123` also matches `bd:bd-123`,
    and so does the chip `bd-123`."""
    if not ref:
        return None
    if ":" not in ref and ref.startswith("bd-") and ref[3:]:
        ref = "bd:" + ref  # the chip as shown (`[bd-123]`) names the task too
    tagged = parse_tagged([ref], "--ref")[0]
    return tagged["type"], refs_mod.same_ref_values(tagged["type"], tagged["value"])


async def known_name(engine: Engine, flag: str, address: str | None, *, wrote: bool) -> str | None:
    """A filter's name (`--from`, `--to`, `--mention`), refused when nobody by it is registered and
    no stored message was `wrote` by it (else: delivered to it): a typo answered "no messages" at
    once, and a `wait --from` on one waited out its whole timeout (walk C, B3). A deleted agent, a
    monitor or `system` still filters its history."""
    if address is None:  # "" is an empty name, not "no filter"
        return None
    name = names.named(address, flag)
    if name in engine.agents:
        return name
    if await (queries.wrote_any if wrote else queries.received_any)(engine.store, name):
        return name
    raise UnknownAgent(
        f"{flag} @{name}: no agent by that name, and no message {'from' if wrote else 'to'} one"
    )


async def inbox_for(engine: Engine, me: str, p: InboxParams) -> dict:
    """A page of `me`'s inbox; what it shows for the first time is marked read (seen, when peeking)."""
    page_size = p.page_size or engine.settings.messages.default_page_size
    author = await known_name(engine, "--from", p.from_agent, wrote=True)
    offset = p.offset if p.offset is not None else (p.page - 1) * page_size
    page = await queries.inbox_page(
        engine.store,
        me,
        floor_of(engine, me),
        limit=page_size,
        offset=offset,
        budget=min(
            engine.settings.messages.max_page_bytes, p.max_bytes or engine.settings.messages.max_page_bytes
        ),
        everything=p.all,
        unread_only=p.unread,
        mentions=p.mentions,
        author=author,
        scope=scope_filter(p.scope),
        oldest=p.oldest,
        ref=ref_filter(p.ref),
    )
    rows, cut, total = page.rows, page.cut, page.total or 0
    unread = page.unread if page.unread is not None else await unread_count(engine, me)
    messages = []
    newly_shown = []
    peeking = p.unread or p.peek
    for r in rows:
        msg = message_view(r)
        if r["recipient"] is None:  # --all: not addressed to me
            msg["is_read"] = None
        elif r["read_at"] is None and not (peeking and r["seen_at"]):  # a repeated peek records nothing
            newly_shown.append(r["id"])
        messages.append(msg)
    if newly_shown:
        # Markers only (the messages are durable): written in the background, in order, before
        # this agent's next request runs (Engine.call); the page does not wait for their fsync.
        etype = "message.seen" if peeking else "message.read"
        engine.commit_later(engine.event(etype, me, {"message_ids": newly_shown, "at": iso()}))
        if etype == "message.read":
            unread -= len(newly_shown)
    following = offset + len(messages)
    # Views hold only str, int, bool, None, dicts and lists but for what was parsed from JSON (a
    # structured body, meta): vouched plain unless one of those is there and is not.
    shape = fastjson.Plain if all(_plain_view(m) for m in messages) else dict
    if p.fields:
        keep = p.fields
        messages = [{k: m[k] for k in keep if k in m} for m in messages]
    return shape(
        {
            "messages": messages,
            "total": total,
            "unread": unread,
            "page": p.page,
            "page_size": page_size,
            "offset": offset,
            "truncated": cut,
            "next_offset": following if following < total else None,
        }
    )


_PARSED = ("to", "mentions", "scopes", "refs", "tasks", "meta")  # the view's parts read from stored JSON


def _plain_view(msg: dict) -> bool:
    """Whether the parts of a view parsed from stored JSON hold nothing but `fastjson.Plain` allows
    (the rest of a view is str, bool and None by construction)."""
    structured = msg["body"].get("structured")
    if structured is not None and not fastjson.is_plain(structured):
        return False
    for k in _PARSED:
        v = msg.get(k)
        # Mostly empty, or a list of addresses: strings only, seen without the general walk.
        if v and not (type(v) is list and set(map(type, v)) <= _STR) and not fastjson.is_plain(v):
            return False
    return True


_STR = frozenset({str})


@method("message.inbox", InboxParams, identity=True)
async def inbox(engine: Engine, caller: Caller, p: InboxParams) -> dict:
    return await inbox_for(engine, identified(caller), p)


async def unread_count(engine: Engine, me: str) -> int:
    return await queries.unread_count(engine.store, me)


def delivery_state(d: dict) -> str:
    for state, col in (
        ("replied", "replied_at"),
        ("acked", "acked_at"),
        ("read", "read_at"),
        ("seen", "seen_at"),
        ("notified", "notified_at"),
    ):
        if d.get(col):
            return state
    return "stored"


async def deliveries_for(
    engine: Engine, message_ids: list[str], rows: dict | None = None, *, steps: bool = True
) -> dict[str, list[dict]]:
    """Each message's delivery records; with its `rows` (id -> message row), each record says whether
    it was delivered, and with `steps` carries the whole ledger (asks/ledger.py: each step's time, and
    why it is not delivered yet)."""
    out: dict[str, list[dict]] = {m: [] for m in message_ids}
    reasons: dict[str, str] = {}  # recipient -> why nothing can show it mail now (one look per listing)
    for d in await queries.deliveries_for(engine.store, message_ids):
        rec = {
            "recipient": d["recipient"],
            "state": delivery_state(d),
            "notified_at": d["notified_at"],
            "via": d["notified_via"],
            "seen_at": d["seen_at"],
            "read_at": d["read_at"],
            "replied_at": d["replied_at"],
        }
        if d["ask"]:
            rec["ask"] = True
            rec["acked_at"] = d["acked_at"]
            if d["ack_note"]:
                rec["ack_note"] = d["ack_note"]
        if rows is not None and not steps:  # a listing (the feed): the word, not the story
            rec["delivered"] = ledger.delivered(d) or d["recipient"] == rows[d["message_id"]]["author"]
        elif rows is not None:
            row = rows[d["message_id"]]
            full = {**rec, "notified_via": d["notified_via"]}
            ledger.annotate(engine, full, row["author"], row["created_at"], reasons)
            full.pop("notified_via")
            rec = full
        out[d["message_id"]].append(rec)
    return out


@method("message.sent", SentParams, identity=True)
async def sent(engine: Engine, caller: Caller, p: SentParams) -> dict:
    page = await queries.sent_page(
        engine.store,
        identified(caller),
        limit=p.limit,
        budget=engine.settings.messages.max_page_bytes,
        to=await known_name(engine, "--to", p.to, wrote=False),
        unread_only=p.unread,
        ref=ref_filter(p.ref),
        undelivered_only=p.undelivered,
    )
    messages = await with_deliveries(engine, page.rows, steps=True)
    out = {"messages": messages, "total": len(messages), "truncated": page.cut}
    if p.undelivered:  # held by the loop guard: not delivered either
        from thrum_engine.asks.held import held_list

        out["held"] = await held_list(engine, author=identified(caller))
    return out


async def with_deliveries(engine: Engine, rows: list[dict], *, steps: bool = False) -> list[dict]:
    """Message views, each with every recipient's delivery state (what an author wants to see);
    `steps`: each record's whole ledger too (`sent`), not only whether it was delivered (the feed)."""
    dels = await deliveries_for(engine, [r["id"] for r in rows], {r["id"]: r for r in rows}, steps=steps)
    out = []
    for r in rows:
        msg = message_view(r)
        msg["deliveries"] = dels[r["id"]]
        msg["delivered"] = all(d.get("delivered", True) for d in msg["deliveries"])
        out.append(msg)
    return out


@method("message.get", MessageIdParams)
async def get(engine: Engine, caller: Caller, p: MessageIdParams) -> dict:
    row = await get_message_row(engine, p.message_id)
    msg = message_view(row)
    msg["deliveries"] = (await deliveries_for(engine, [row["id"]], {row["id"]: row}))[row["id"]]
    msg["delivered"] = all(d.get("delivered", True) for d in msg["deliveries"])
    if caller.name:
        mine = [d for d in msg["deliveries"] if d["recipient"] == caller.name]
        if mine:
            msg["is_read"] = mine[0]["read_at"] is not None
    return {"message": msg}


async def _own(engine: Engine, caller: Caller, message_id: str) -> dict:
    row = await get_message_row(engine, message_id)
    if row["author"] != caller.name:
        raise Forbidden(f"only the author (@{row['author']}) can change {message_id}")
    if row["deleted"]:
        raise NotFound(f"message {message_id} was deleted")
    return row


@method("message.edit", EditParams, identity=True, writes=True)
async def edit(engine: Engine, caller: Caller, p: EditParams) -> dict:
    row = await _own(engine, caller, p.message_id)
    check_body(engine, p.body, row["format"])
    # the rest of the message stays as it is: the edited whole is held to the cap too
    kept = sum(len(row[c].encode("utf-8")) - 2 for c in ("scopes", "refs"))  # `[]`: no content
    kept += 0 if row["structured"] is None else len(row["structured"].encode("utf-8"))
    check_size(engine, p.body, extra=kept)
    await engine.commit(
        engine.event("message.edit", identified(caller), {"message_id": row["id"], "content": p.body})
    )
    return {"message_id": row["id"], "edited": True}


@method("message.delete", DeleteParams, identity=True, writes=True)
async def delete(engine: Engine, caller: Caller, p: DeleteParams) -> dict:
    if not p.force:
        raise InvalidInput("deleting a message needs --force")
    row = await _own(engine, caller, p.message_id)
    await engine.commit(engine.event("message.delete", identified(caller), {"message_id": row["id"]}))
    return {"message_id": row["id"], "deleted": True}


async def mark_read(engine: Engine, me: str, message_ids: list[str] | None) -> list[str]:
    """Mark these messages (None: every unread one) read for `me`; returns those that were unread.
    An id not delivered to `me` refuses the whole request."""
    if message_ids is None:
        targets = await queries.unread_ids(engine.store, me, floor_of(engine, me))
    else:
        wanted = distinct(message_ids, "message id", limit=MAX_IDS)
        if not wanted:
            raise InvalidInput("name message ids to mark read, or pass --all")
        for mid in wanted:
            ids.check_id(mid, "msg", "message")
        found = await queries.read_state(engine.store, me, wanted)
        missing = [m for m in wanted if m not in found]
        if missing:
            raise NotFound(
                f"not in your inbox: {', '.join(missing[:20])}" + (" ..." if len(missing) > 20 else "")
            )
        targets = [m for m in wanted if found[m] is None]
    if targets:
        await engine.commit(engine.event("message.read", me, {"message_ids": targets, "at": iso()}))
    return targets


@method("message.read", ReadParams, identity=True, writes=True)
async def read(engine: Engine, caller: Caller, p: ReadParams) -> dict:
    targets = await mark_read(engine, identified(caller), None if p.all else p.message_ids)
    return {"marked": len(targets), "message_ids": targets}


async def known_mention(engine: Engine, me: str, address: str | None) -> str | None:
    """`wait --mention`'s name: whatever a send takes as a mention (an agent, a role someone holds,
    `@everyone`; `@me` is the caller), or a name a stored message was sent to. Only agent names and
    past recipients were taken, so `wait --mention @dev` was refused though `send --mention @dev`
    was not."""
    if address is None:
        return None
    name = names.named(address, "--mention")
    if name == "me":
        return me
    if name in EVERYONE or any(r["role"] == name for r in engine.agents.values()):
        return name
    return await known_name(engine, "--mention", address, wrote=False)


def _wait_filter(engine: Engine, me: str, p: WaitParams, after: str, mention: str | None):
    sender = names.named(p.from_agent) if p.from_agent is not None else None
    scope = parse_tagged([p.scope], "--scope")[0] if p.scope else None

    def matches(ev: dict) -> bool:
        d = ev["data"]
        if note_to_self(ev, me) or d.get("created_at", ev["ts"]) <= after:
            return False
        if sender and ev["author"] != sender:
            return False
        if (
            mention
            and mention not in d.get("mentioned_agents", ())
            and "@" + mention not in d.get("mentions", ())
        ):
            return False
        return not (scope and scope not in d.get("scopes", ()))

    return matches


@method("message.wait", WaitParams, identity=True, timeout=False)
async def wait(engine: Engine, caller: Caller, p: WaitParams) -> dict:
    return await wait_for_mail(engine, identified(caller), p, caller.gone)


async def wait_for_mail(engine: Engine, me: str, p: WaitParams, gone: asyncio.Future | None = None) -> dict:
    """The first message to `me` that matches, from the backlog (`after`) or as it arrives. Once
    `gone` is done (the caller hung up: a killed `thrum wait`, a cancelled MCP tool call) the wait
    takes nothing more: what arrives is left to the other paths, not marked seen for nobody."""
    limit = engine.settings.engine.max_wait_seconds
    if p.timeout > limit:
        raise InvalidInput(f"--timeout {p.timeout:g}s is over the limit of {limit:g}s")
    after = iso(time.time() + (p.after or 0.0)) if p.after is not None else iso()
    await known_name(engine, "--from", p.from_agent, wrote=True)
    mention = await known_mention(engine, me, p.mention)
    matches = _wait_filter(engine, me, p, after, mention)
    waiter = Waiter(me, matches, gone=gone)  # the bus reads `gone` too: nothing is handed to it after
    nobody = {"status": "timeout", "messages": [], "timeout": p.timeout}

    def hang_up(_gone: asyncio.Future) -> None:  # ends the wait (a callback: a turn of the loop later)
        engine.bus.remove_waiter(waiter)
        if not waiter.future.done():
            waiter.future.set_result(None)

    if gone is not None:
        if gone.done():
            return nobody
        gone.add_done_callback(hang_up)
    engine.bus.add_waiter(waiter)  # before the backlog query, so nothing slips between
    try:
        if p.after is not None:
            rows = await queries.unread_backlog(engine.store, me, floor_of(engine, me), after)
            backlog = [message_view(r) for r in rows if _row_matches(matches, r)]
            if backlog and not (gone is not None and gone.done()):
                return await _received(engine, me, backlog)
        try:
            ev = await asyncio.wait_for(waiter.future, p.timeout)
        except TimeoutError:
            return nobody
        if ev is None or gone is not None and gone.done():  # hung up
            return nobody
        return await _received(engine, me, [event_message_view(ev)])
    finally:
        engine.bus.remove_waiter(waiter)
        if gone is not None:
            gone.remove_done_callback(hang_up)


def _row_matches(matches, row: dict) -> bool:
    ev = {
        "author": row["author"],
        "ts": row["created_at"],
        "data": {
            "created_at": row["created_at"],
            "mentions": json.loads(row["mentions"]),
            "scopes": json.loads(row["scopes"]),
            "meta": json.loads(row["meta"]) if row.get("meta") else None,
        },
    }
    return matches(ev)


async def _received(engine: Engine, me: str, messages: list[dict]) -> dict:
    # The messages are durable already; only the seen marker is new, and the waiter need not wait
    # for its fsync (p99 6 ms -> well under 1 ms). It is queued before the answer is written.
    engine.commit_later(
        engine.event("message.seen", me, {"message_ids": [m["message_id"] for m in messages], "at": iso()})
    )
    return {"status": "received", "messages": messages, "message": messages[0]}


@method("message.purge", PurgeParams, writes=True)
async def purge(engine: Engine, caller: Caller, p: PurgeParams) -> dict:
    if p.all == bool(p.before):
        raise InvalidInput("purge needs exactly one of --before DUR|DATE or --all")
    # The event is stamped first: `--all` is everything created before it, and no cutoff may lie past
    # it (store.apply.purge_cutoff bounds it so anyway), or messages sent after the purge would go too.
    ev = engine.event("message.purge", author_of(engine, caller), {})
    if p.all or p.before is None:
        before = ev["ts"]
    else:
        try:
            at = parse_iso(p.before)
        except ValueError:
            raise InvalidInput(f"invalid --before {p.before!r}") from None
        before = iso(at)
        if before > ev["ts"]:
            raise InvalidInput(
                f"--before {p.before} is in the future: a purge only removes messages created before"
                " it (--all removes every message so far)"
            )
    ev["data"]["before"] = before
    count = await queries.messages_before(engine.store, before)
    if p.confirm:
        require_operator(engine, caller, "purging messages")
    if p.confirm and count:
        await engine.commit(ev)
    return {
        "before": before,
        "messages": count,
        "purged": bool(p.confirm and count),
        "preview": not p.confirm,
    }

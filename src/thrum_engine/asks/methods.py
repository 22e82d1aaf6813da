"""RPC methods of asks and held messages (issue 16): thin wrappers over asks/*."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import Field

from thrum_engine import ids, names
from thrum_engine.asks import MAX_NOTE, held
from thrum_engine.durations import iso, parse_iso
from thrum_engine.engine.authority import require_operator
from thrum_engine.engine.registry import method
from thrum_engine.errors import InvalidInput, NotFound
from thrum_engine.identity import author_of
from thrum_engine.model import Params
from thrum_engine.store import queries

if TYPE_CHECKING:
    from thrum_engine.engine.caller import Caller
    from thrum_engine.engine.core import Engine


class AckParams(Params):
    message_id: str
    note: str = Field("", max_length=MAX_NOTE)


class AsksParams(Params):
    mine: bool = False  # the asks I sent
    to_me: bool = False  # the asks waiting for my answer
    agent: str | None = None  # anyone's (both directions)
    everyone: bool = False  # every open ask (the console's view)


class HeldParams(Params):
    released: bool = False


class ReleaseParams(Params):
    message_ids: list[str] = Field(default_factory=list, max_length=held.MAX_RELEASE)
    all: bool = False


def _age(ts: str, now: float) -> float:
    try:
        return round(max(0.0, now - parse_iso(ts)), 1)
    except ValueError:
        return 0.0


def ask_view(row: dict, now: float) -> dict:
    return {
        "message_id": row["message_id"],
        "thread_id": row["thread_id"],
        "sender": row["sender"],
        "recipient": row["recipient"],
        "created_at": row["created_at"],
        "age_seconds": _age(row["created_at"], now),
        "due_at": row["due_at"],
        "overdue": bool(row["overdue_at"]) or bool(row["due_at"] and row["due_at"] <= iso(now)),
        "reminders": row["reminders"],
        "seen": bool(row["seen_at"] or row["read_at"]),
        "preview": " ".join(row["content"].split())[:200],
    }


async def open_asks(engine: Engine, *, recipient: str | None = None, sender: str | None = None) -> list[dict]:
    now = time.time()
    rows = await queries.open_asks(engine.store, recipient=recipient, sender=sender)
    return [ask_view(r, now) for r in rows]


async def ack(engine: Engine, me: str, message_id: str, note: str) -> dict:
    ids.check_id(message_id, "msg", "message")
    row = await queries.ask_row(engine.store, message_id, me)
    if row is None:
        if await queries.message_row(engine.store, message_id) is None:
            raise NotFound(f"no message {message_id}")
        raise InvalidInput(f"{message_id} is not an ask addressed to you (@{me})")
    if row["acked_at"] or row["answered"]:
        return {
            "message_id": message_id,
            "acked": False,
            "already": "acked" if row["acked_at"] else "replied",
        }
    at = iso()
    data: dict = {"message_id": message_id, "at": at}
    if note:
        data["note"] = note
    # Acking answers it: it is read too.
    await engine.commit(
        engine.event("ask.ack", me, data),
        engine.event("message.read", me, {"message_ids": [message_id], "at": at}),
    )
    return {"message_id": message_id, "acked": True, "at": at, "sender": row["sender"]}


@method("ask.ack", AckParams, identity=True, writes=True)
async def ask_ack(engine: Engine, caller: Caller, p: AckParams) -> dict:
    return await ack(engine, caller.name or "", p.message_id, p.note)


@method("ask.list", AsksParams)
async def ask_list(engine: Engine, caller: Caller, p: AsksParams) -> dict:
    who = names.named(p.agent, "--agent") if p.agent is not None else caller.name
    if p.agent is not None and who not in engine.agents:
        raise NotFound(f"no agent @{who}")
    if p.everyone or who is None or who not in engine.agents:
        return {"asks": await open_asks(engine), "agent": None}  # the operator with no name: everyone's
    both = p.mine == p.to_me
    asks = await open_asks(
        engine, recipient=who if (both or p.to_me) else None, sender=who if (both or p.mine) else None
    )
    return {"asks": asks, "agent": who}


@method("message.held", HeldParams)
async def message_held(engine: Engine, caller: Caller, p: HeldParams) -> dict:
    items = await held.held_list(engine, released=p.released)
    return {"held": items, "total": len(items)}


@method("message.release", ReleaseParams, writes=True)
async def message_release(engine: Engine, caller: Caller, p: ReleaseParams) -> dict:
    if p.all == bool(p.message_ids):
        raise InvalidInput("release needs held message ids or --all (not both)")
    require_operator(engine, caller, "releasing held messages")
    mids = await held.release(engine, author_of(engine, caller), None if p.all else p.message_ids)
    return {"released": mids, "total": len(mids)}

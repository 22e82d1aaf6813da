"""`schedule.*` methods: thin wrappers over the plain functions below."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from thrum_engine import ids, messaging
from thrum_engine.cron import check_cron, cron_next
from thrum_engine.durations import iso
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.registry import method
from thrum_engine.errors import Forbidden, InvalidInput, NotFound
from thrum_engine.model import ScheduleCreateParams, ScheduleIdParams, ScheduleListParams
from thrum_engine.schedules.model import parse_at
from thrum_engine.store import schedules as store_schedules

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

MAX_AHEAD = 10 * 366 * 86400.0  # a schedule more than ten years out is a typo


def now_of(engine: Engine) -> float:
    return engine.schedules.clock() if engine.schedules is not None else time.time()


def schedule_view(row: dict) -> dict:
    return {
        "schedule_id": row["id"],
        "author": row["author"],
        "to": json.loads(row["addressed"]),
        "body": {"format": row["format"], "content": row["content"]},
        "kind": row["kind"],
        "at": row["at"],
        "cron": row["cron"],
        "ask": bool(row["ask"]),
        "until_reply": bool(row["until_reply"]),
        "thread_id": row["thread_id"],
        "created_at": row["created_at"],
        "status": row["status"],
        "next_at": row["next_at"],
        "fires": row["fires"],
        "last_fired_at": row["last_fired_at"],
        "last_message_id": row["last_message_id"],
        "last_late": bool(row["last_late"]),
        "ended_at": row["ended_at"],
        "end_reason": row["end_reason"],
        "origin": row.get("origin") or "",
    }


async def create_schedule(engine: Engine, author: str, p: ScheduleCreateParams) -> dict:
    given = [
        name for name, v in (("--at", p.at), ("--in", p.in_seconds), ("--cron", p.cron)) if v is not None
    ]
    if len(given) != 1:
        raise InvalidInput("a schedule needs exactly one of --at TIME, --in DURATION or --cron EXPR")
    messaging.check_body(engine, p.body, p.format)
    addressed = messaging.distinct(list(p.to), "--to", key=messaging._address_key)
    if not addressed:
        raise InvalidInput("a recipient is required: --to @name, --to @role or --to @me")
    recipients, _ = messaging.resolve(engine, addressed, author)  # unknown ones refuse it now
    if not recipients:
        raise InvalidInput("nobody to deliver to")
    if p.ask:
        messaging.check_answerable(recipients, author)  # refused now, not at every fire
    now = now_of(engine)
    cron = None
    if p.cron is not None:
        cron = check_cron(p.cron)
        first = cron_next(cron, now)
        kind = "cron"
    else:
        first = now + p.in_seconds if p.in_seconds is not None else parse_at(p.at or "", now)
        kind = "at"
        if first < now - 1.0:
            raise InvalidInput(f"--at {p.at} is in the past")
    if first - now > MAX_AHEAD:
        raise InvalidInput("the first fire is more than ten years away")
    sid = ids.new_id("sch")
    data: dict = {
        "schedule_id": sid,
        # `@me` is written as its author's name: read by anyone else, `@me` would name them
        "to": ["@" + (author if (n := messaging.names.strip_at(a)) == "me" else n) for a in addressed],
        "content": p.body,
        "format": p.format,
        "kind": kind,
        "thread_id": ids.new_id("thr"),
        "next_at": iso(first),
    }
    if kind == "at":
        data["at"] = iso(first)
    else:
        data["cron"] = cron
    if p.ask:
        data["ask"] = True
    if p.until_reply:
        data["until_reply"] = True
    if engine.journal.clone:
        data["origin"] = engine.journal.clone  # only this clone fires it (sync shows it everywhere)
    await engine.commit(engine.event("schedule.create", author, data))
    row = await store_schedules.one(engine.store, sid)
    assert row is not None
    return {"schedule": schedule_view(row), "recipients": recipients}


async def get_schedule(engine: Engine, schedule_id: str) -> dict:
    ids.check_id(schedule_id, "sch", "schedule")
    row = await store_schedules.one(engine.store, schedule_id)
    if row is None:
        raise NotFound(f"no schedule {schedule_id}")
    return row


@method("schedule.create", ScheduleCreateParams, identity=True, writes=True)
async def create(engine: Engine, caller: Caller, p: ScheduleCreateParams) -> dict:
    return await create_schedule(engine, messaging.identified(caller), p)


@method("schedule.list", ScheduleListParams)
async def list_(engine: Engine, caller: Caller, p: ScheduleListParams) -> dict:
    """The caller's schedules (`everyone`, or no identity: every author's), pending ones first."""
    author = None if p.everyone or not caller.name else caller.name
    rows = await store_schedules.listing(engine.store, author=author, everything=p.all, limit=p.limit)
    return {
        "schedules": [schedule_view(r) for r in rows],
        # Of the schedules listed (the caller's, or everyone's), as the list itself: it counted every
        # author's where the list was the caller's (walk, session 21: "pending": 3, "schedules": []).
        "pending": await store_schedules.count_pending(engine.store, author),
        "now": iso(now_of(engine)),
    }


@method("schedule.show", ScheduleIdParams)
async def show(engine: Engine, caller: Caller, p: ScheduleIdParams) -> dict:
    return {"schedule": schedule_view(await get_schedule(engine, p.schedule_id))}


@method("schedule.cancel", ScheduleIdParams, writes=True)
async def cancel(engine: Engine, caller: Caller, p: ScheduleIdParams) -> dict:
    """Its author cancels a schedule; so does the operator (the console, the main checkout)."""
    from thrum_engine.engine.authority import is_operator

    row = await get_schedule(engine, p.schedule_id)
    if row["author"] != caller.name and not is_operator(engine, caller):
        raise Forbidden(f"only its author (@{row['author']}) or the operator can cancel {row['id']}")
    if row["status"] != "pending":
        raise InvalidInput(f"schedule {row['id']} is {row['status']} already")
    who = caller.name if caller.name in engine.agents else row["author"]
    await engine.commit(
        engine.event("schedule.cancel", who, {"schedule_id": row["id"], "reason": f"cancelled by @{who}"})
    )
    row = await get_schedule(engine, row["id"])
    return {"schedule": schedule_view(row), "cancelled": True}

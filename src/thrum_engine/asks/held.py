"""Messages the loop guard holds (guards.py), and their release by the operator.

A held message is journalled as `message.hold` with its whole create event inside, so it survives a
restart, a rebuild and sync, yet nothing is delivered: it is no message (no inbox row, no nudge, no
waiter) until `message.release` commits that create event, unchanged but for the time it is stamped
with. The sender is told it is held in `send`'s answer; the operator is told once per runaway pair or
thread, by the engine.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from thrum_engine import guards, ids
from thrum_engine.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

log = logging.getLogger("thrum.guards")

MAX_RELEASE = 10_000


def operators(engine: Engine) -> list[str]:
    """Who hears about held traffic: the humans (agents of kind `user`) and the operator role."""
    role = engine.settings.console.operator_role
    return sorted(n for n, r in engine.agents.items() if r.get("kind") == "user" or r.get("role") == role)


async def hold(engine: Engine, ev: dict, key: str, reason: str) -> dict:
    """Journal `ev` (a message.create not committed) as held; returns it marked `held`."""
    d = ev["data"]
    await engine.commit(
        engine.event(
            "message.hold", ev["author"], {"message_id": d["message_id"], "reason": reason, "event": ev}
        )
    )
    log.warning("held %s from @%s: %s", d["message_id"], ev["author"], reason)
    if guards.attach(engine).trip(key):
        await _tell_operators(engine, ev, reason)
    return {**ev, "held": reason}


async def _tell_operators(engine: Engine, ev: dict, reason: str) -> None:
    to = operators(engine)
    if not to:
        log.warning("no operator registered to tell about held traffic (%s)", reason)
        return
    body = (
        f"Held a message from @{ev['author']} to "
        + ", ".join("@" + r for r in ev["data"].get("recipients", ()))
        + f" ({reason}). Further ones are held too: `thrum held` lists them,"
        " `thrum release MSG_ID` or `thrum release --all` delivers them (or press r on one in the console)."
    )
    try:
        await engine.post("system", body, to=["@" + n for n in to], fmt="markdown")
    except Exception:  # a boundary: the hold stands even if the notice fails
        log.exception("telling the operator about held traffic failed")


def _view(row: dict) -> dict:
    return {
        "message_id": row["message_id"],
        "author": row["author"],
        "recipients": json.loads(row["recipients"]),
        "thread_id": row["thread_id"],
        "reason": row["reason"],
        "held_at": row["held_at"],
        "preview": row["content"][:200],
        "released_at": row["released_at"],
        "released_by": row["released_by"],
    }


async def held_list(engine: Engine, *, author: str | None = None, released: bool = False) -> list[dict]:
    sql = "SELECT * FROM held WHERE " + ("1" if released else "released_at IS NULL")
    args: list = []
    if author:
        sql += " AND author = ?"
        args.append(author)
    rows = await engine.store.all(sql + " ORDER BY held_at, message_id LIMIT 1000", args)
    return [_view(r) for r in rows]


async def release(engine: Engine, operator: str, message_ids: list[str] | None) -> list[str]:
    """Deliver held messages (None: every one held): their create events are committed as they were."""
    if message_ids is None:
        rows = await engine.store.all("SELECT * FROM held WHERE released_at IS NULL ORDER BY held_at")
    else:
        wanted = list(dict.fromkeys(message_ids))
        if not wanted:
            raise InvalidInput("name held message ids to release, or pass --all")
        if len(wanted) > MAX_RELEASE:
            raise InvalidInput(f"at most {MAX_RELEASE} ids at once")
        for mid in wanted:
            ids.check_id(mid, "msg", "message")
        marks = ",".join("?" * len(wanted))
        rows = await engine.store.all(f"SELECT * FROM held WHERE message_id IN ({marks})", wanted)
        found = {r["message_id"]: r for r in rows}
        missing = [m for m in wanted if m not in found]
        if missing:
            raise NotFound(f"not held: {', '.join(missing[:20])}")
        done = [m for m in wanted if found[m]["released_at"]]
        if done:
            raise InvalidInput(f"released already: {', '.join(done[:20])}")
        rows = [found[m] for m in wanted]
    if not rows:
        return []
    creates = []
    g = guards.attach(engine)
    for r in rows:
        held = json.loads(r["event"])
        d = dict(held["data"])
        d["recipients"] = [x for x in d.get("recipients", ()) if x in engine.agents]  # gone since: dropped
        creates.append(engine.event("message.create", held["author"], d))
        g.released(held["author"], d["recipients"], d.get("thread_id"))
    mids = [r["message_id"] for r in rows]
    await engine.commit(engine.event("message.release", operator, {"message_ids": mids}), *creates)
    log.info("@%s released %d held message(s)", operator, len(mids))
    return mids

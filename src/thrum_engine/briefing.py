"""`prime`: the one briefing an agent gets at session start, after compaction, or when it asks.

Identity and role preamble, session, the team with live states, unread mail with the newest
messages, the git work context, saved context. The session-start hook (hooks_log) serves the same
data, rendered by briefing_text.
"""

from __future__ import annotations

import asyncio
import os
import time

from thrum_engine.engine.core import Caller, Engine
from thrum_engine.engine.registry import method
from thrum_engine.identity import agent_view, session_view
from thrum_engine.model import PrimeParams
from thrum_engine.store import queries
from thrum_engine.team import member, my_context, unread_counts

RECENT = 5
PREVIEW_CHARS = 300


def _read_text(path: str, limit: int = 64_000) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read(limit)
    except OSError:
        return None


async def recent_unread(engine: Engine, me: str, limit: int = RECENT) -> list[dict]:
    rows = await queries.recent_unread(engine.store, me, engine.agents[me]["registered_at"], limit)
    return [
        {"message_id": r["id"], "from": r["author"], "content": r["content"], "created_at": r["created_at"]}
        for r in rows
    ]


async def prime_data(engine: Engine, me: str) -> dict:
    now = time.time()
    (unread, recent, work, asks) = await asyncio.gather(
        unread_counts(engine), recent_unread(engine, me), my_context(engine, me), open_asks_of(engine, me)
    )
    members = [member(engine, n, unread.get(n, 0), now) for n in sorted(engine.agents) if n != me]
    ctx_dir = engine.layout.context_dir
    preamble, context = await asyncio.to_thread(
        lambda: (
            _read_text(os.path.join(ctx_dir, f"{me}.preamble.md")),
            _read_text(os.path.join(ctx_dir, f"{me}.md")),
        )
    )
    snapshot = None
    home = engine.agents[me].get("worktree")
    if home and os.path.isdir(home):  # a restart snapshot is for the one session after the restart
        from thrum_engine import snapshots

        snapshot = await asyncio.to_thread(snapshots.consume, home, me)
    single = engine.settings.daemon.single_agent_mode
    return {
        "single_agent_mode": single,
        "restart_snapshot": snapshot,
        "agent": agent_view(engine, engine.agents[me]),
        "session": session_view(engine.active_sessions.get(me)),
        "team": [] if single else [m for m in members if m["presence"] != "offline"],
        "unread": unread.get(me, 0),
        "recent_unread": [
            {
                "message_id": r["message_id"],
                "from": r["from"],
                "preview": r["content"][:PREVIEW_CHARS],
                "created_at": r["created_at"],
            }
            for r in recent
        ],
        "work_context": work,
        "open_asks": asks,
        "preamble": preamble,
        "context": context,
        "engine": engine.info(),
    }


async def open_asks_of(engine: Engine, me: str) -> dict:
    """Asks waiting for `me`'s answer and the ones `me` is waiting on (issue 16)."""
    from thrum_engine.asks.methods import open_asks

    return {
        "to_me": await open_asks(engine, recipient=me),
        "mine": await open_asks(engine, sender=me),
    }


@method("prime", PrimeParams, identity=True)
async def prime(engine: Engine, caller: Caller, p: PrimeParams) -> dict:
    return await prime_data(engine, caller.name)  # type: ignore[arg-type]

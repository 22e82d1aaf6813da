"""Presence, the team roster, who-has, and the orientation views (status, overview; prime is in briefing)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

from thrum_engine import names
from thrum_engine.durations import human_age
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.per_engine import PerEngine
from thrum_engine.engine.registry import method
from thrum_engine.errors import InvalidInput, UnknownAgent
from thrum_engine.identity import agent_view, last_activity, session_view
from thrum_engine.layout import branch_commit, current_branch, head_commit
from thrum_engine.model import EmptyParams, PingParams, TeamParams, WhoHasParams
from thrum_engine.store import queries
from thrum_engine.workcontext import context_of, default_branch, worktrees

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

PRESENCE_ORDER = {
    "blocked": 0,
    "stuck": 1,
    "exited": 2,
    "working": 3,
    "online": 4,
    "idle": 5,
    "no session": 6,
    "offline": 7,
}


def pane_of(engine: Engine, name: str):
    return engine.tmux.for_agent(name) if engine.tmux is not None else None


def presence(engine: Engine, name: str, now: float | None = None) -> tuple[str, float]:
    """(state, seconds since last activity). Explicit status wins while the agent is active."""
    now = now or time.time()
    age = now - last_activity(engine, name)
    pane = pane_of(engine, name)
    if pane is not None and pane.exited:
        return "exited", now - pane.state.since  # the runtime is gone, whatever the agent last said
    if pane is None and engine.tmux is not None and name in engine.tmux.gone:
        return "no session", age  # its tmux session ended (killed, or the server went away)
    if pane is not None and pane.state.state in ("working", "idle", "blocked"):
        # A live pane is the freshest witness of what the agent is doing.
        return pane.state.state, now - pane.state.since
    settings = engine.settings.presence
    if name not in engine.active_sessions or age > settings.offline_after_seconds:
        return "offline", age
    status = engine.agents[name].get("status") or ""
    if status in ("blocked", "stuck", "working"):
        return status, age
    if age > settings.idle_after_seconds or status == "idle":
        return "idle", age
    return "online", age


async def unread_counts(engine: Engine) -> dict[str, int]:
    return await queries.unread_counts(engine.store)


async def unread_from(engine: Engine, recipient: str) -> dict[str, int]:
    """Unread mail to `recipient` by author, exact however much there is (the console counted one
    100-message page, walk bug 13)."""
    return await queries.unread_from(engine.store, recipient)


def member(engine: Engine, name: str, unread: int, now: float) -> dict:
    row = engine.agents[name]
    state, age = presence(engine, name, now)
    view = agent_view(engine, row)
    wt = row["worktree"]
    view.update(
        {
            "presence": state,
            "state": state,
            "idle_seconds": round(age, 1),
            "last_seen": engine.last_seen.get(name),
            "branch": current_branch(wt) if wt and os.path.isdir(wt) else None,
            "unread": unread,
        }
    )
    pane = pane_of(engine, name)
    view["session"] = pane.name if pane else None
    view["pane_state"] = pane.state.view(now) if pane else None
    from thrum_engine.hooks_log import view as hooks_view

    view["hooks"] = hooks_view(engine, name)  # when its runtime's hooks last fired (None: never)
    return view


@method("team.list", TeamParams)
async def team(engine: Engine, caller: Caller, p: TeamParams) -> dict:
    if engine.tmux is not None:
        await engine.tmux.discover_recent()  # which panes still run their runtime, which sessions are gone
    now = time.time()
    unread = await unread_counts(engine)
    members = [member(engine, n, unread.get(n, 0), now) for n in engine.agents]
    if not p.all:
        members = [m for m in members if m["presence"] != "offline"]
    members.sort(key=lambda m: (PRESENCE_ORDER.get(m["presence"], 9), m["name"]))
    return {"members": members, "total": len(engine.agents)}


@method("team.unread_from", EmptyParams)
async def unread_by_author(engine: Engine, caller: Caller, p: EmptyParams) -> dict:
    """The caller's unread mail counted by author: the console's per-agent "new" column (empty for
    a caller not registered yet)."""
    known = caller.name is not None and caller.name in engine.agents
    return {"unread_from": await unread_from(engine, caller.name) if caller.name and known else {}}


@method("team.ping", PingParams)
async def ping(engine: Engine, caller: Caller, p: PingParams) -> dict:
    name = names.named(p.agent)
    if name not in engine.agents:
        raise UnknownAgent(f"no agent named @{name}")
    unread = (await unread_counts(engine)).get(name, 0)
    m = member(engine, name, unread, time.time())
    m["last_seen_ago"] = human_age(m["idle_seconds"])
    return {"member": m}


def engine_task(engine: Engine, name: str) -> str:
    """`name`'s task chip (its session's task, else its own), or ''."""
    from thrum_engine.refs import task_chip

    task = (engine.active_sessions.get(name) or {}).get("task") or engine.agents.get(name, {}).get("task")
    return task_chip(task) if task else ""


def agents_in(engine: Engine, path: str) -> list[str]:
    real = os.path.realpath(path)
    return sorted(
        n for n, r in engine.agents.items() if r["worktree"] and os.path.realpath(r["worktree"]) == real
    )


async def _contexts_now(engine: Engine) -> list[dict]:
    repo = engine.layout.repo
    trees, base = await worktrees(repo), default_branch(repo)
    base_head = next((t["head"] for t in trees if base and t["branch"] == base), None)
    contexts = await asyncio.gather(
        *(context_of(t["path"], base, head=t["head"], base_head=base_head) for t in trees)
    )
    for c in contexts:
        c["agents"] = agents_in(engine, c["path"])
    return list(contexts)


class SharedContexts:
    """Every worktree's context, one computation at a time for all callers. A question that arrives
    while one runs waits for the next (started after it arrived), so no answer is older than its
    question, and a team asking `who-has` all at once costs two computations, not one per agent
    (each is a `git status` per worktree)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._next: asyncio.Task[list[dict]] | None = None  # not started yet: joinable
        self._running: asyncio.Task[list[dict]] | None = None

    async def get(self) -> list[dict]:
        task = self._next
        if task is None or task.done():  # done here only if cancelled before it began
            running = self._running if self._running is not None and not self._running.done() else None
            task = self._next = asyncio.create_task(self._run(running), name="thrum-worktree-contexts")
            task.add_done_callback(_retrieved)
        return [dict(c) for c in await asyncio.shield(task)]  # callers may add to their copies

    async def _run(self, before: asyncio.Task | None) -> list[dict]:
        if before is not None:
            await asyncio.wait([before])
        self._next, self._running = None, asyncio.current_task()  # from now on, a question waits for the next
        return await _contexts_now(self.engine)


def _retrieved(task: asyncio.Task) -> None:
    """Every caller may have gone (cancelled): the outcome is still looked at, so asyncio does not
    report an exception nobody retrieved."""
    if not task.cancelled():
        task.exception()


shared_contexts: PerEngine[SharedContexts] = PerEngine(SharedContexts)


async def all_contexts(engine: Engine) -> list[dict]:
    return await shared_contexts(engine).get()


@method("team.who_has", WhoHasParams)
async def who_has(engine: Engine, caller: Caller, p: WhoHasParams) -> dict:
    target = p.path.strip()
    if not target:
        raise InvalidInput("who-has needs a file path")
    if os.path.isabs(target):
        # Make it relative to whichever worktree it lives in.
        for t in await worktrees(engine.layout.repo):
            if target.startswith(t["path"].rstrip("/") + "/"):
                target = os.path.relpath(target, t["path"])
                break
    holders = []
    for c in await all_contexts(engine):
        hits = []
        if any(f == target or f.startswith(target.rstrip("/") + "/") for f in c["uncommitted"]):
            hits.append("uncommitted")
        if any(f == target or f.startswith(target.rstrip("/") + "/") for f in c["ahead_files"]):
            hits.append("committed")
        if hits:
            tasks = {a: engine_task(engine, a) for a in c["agents"]}
            holders.append(
                {
                    "path": c["path"],
                    "branch": c["branch"],
                    "agents": c["agents"],
                    "changes": hits,
                    "tasks": {a: t for a, t in tasks.items() if t},  # agent -> task chip (issue 16)
                }
            )
    return {"file": target, "holders": holders}


async def my_context(engine: Engine, name: str) -> dict | None:
    wt = engine.agents[name]["worktree"]
    if not wt or not os.path.isdir(wt):
        return None
    repo = engine.layout.repo
    base = default_branch(repo)
    base_head = branch_commit(repo, base) if base else None
    return await context_of(wt, base, head=head_commit(wt), base_head=base_head)


@method("status", EmptyParams)
async def status(engine: Engine, caller: Caller, p: EmptyParams) -> dict:
    out: dict = {
        "engine": engine.info(),
        "agents": len(engine.agents),
        "active_sessions": len(engine.active_sessions),
    }
    if caller.name and caller.name in engine.agents:
        unread = (await unread_counts(engine)).get(caller.name, 0)
        out["me"] = member(engine, caller.name, unread, time.time())
        out["session"] = session_view(engine.active_sessions.get(caller.name))
        out["work_context"] = await my_context(engine, caller.name)
    return out


@method("overview", EmptyParams)
async def overview(engine: Engine, caller: Caller, p: EmptyParams) -> dict:
    out = await status(engine, caller, p)
    out["team"] = (await team(engine, caller, TeamParams(all=True)))["members"]
    out["worktrees"] = await all_contexts(engine)
    out["messages"] = await queries.message_count(engine.store)
    return out

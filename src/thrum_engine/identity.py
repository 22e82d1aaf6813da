"""Agents and their work sessions: registration, status, intent, cleanup."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING

from thrum_engine import identity_file, ids, names
from thrum_engine.durations import iso, parse_iso
from thrum_engine.engine.authority import require_agent_owner, require_operator
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.core import same_origin
from thrum_engine.engine.registry import method
from thrum_engine.errors import Conflict, InvalidInput, InvalidName, UnknownAgent
from thrum_engine.model import (
    AgentListParams,
    AgentNameParams,
    CleanupParams,
    EmptyParams,
    RegisterParams,
    SessionEndParams,
    SessionListParams,
    SessionStartParams,
    SetStatusParams,
    TextParams,
)
from thrum_engine.refs import task_chip
from thrum_engine.store import queries

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

_HOST = socket.gethostname()


def author_of(engine: Engine, caller: Caller) -> str:
    """Events are authored by the caller when it is a registered (and so verified) agent, else by `system`."""
    return caller.name if caller.name and caller.name in engine.agents else "system"


def agent_view(engine: Engine, row: dict) -> dict:
    session = engine.active_sessions.get(row["name"])
    view = {
        "agent_id": row["name"],
        "name": row["name"],
        "role": row["role"],
        "module": row["module"],
        "display": row["display"],
        "runtime": row["runtime"],
        "kind": row["kind"],
        "worktree": row["worktree"],
        "registered_at": row["registered_at"],
        "origin": {"clone": row.get("origin") or "", "host": row.get("host") or ""},
        "local": engine.journal.is_ours(row.get("origin") or ""),
        "status": row.get("status") or "",
        "intent": (session or {}).get("intent") or row.get("intent") or "",
        "task": (session or {}).get("task") or row.get("task") or "",
        "session_id": session["id"] if session else None,
    }
    view["task_chip"] = task_chip(view["task"]) if view["task"] else ""  # `bd:123` -> `bd-123` (issue 16)
    return view


def session_view(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {
        "session_id": row["id"],
        "agent_id": row["agent"],
        "started_at": row["started_at"],
        "ended_at": row.get("ended_at"),
        "end_reason": row.get("end_reason"),
        "intent": row.get("intent", ""),
        "task": row.get("task", ""),
        "task_chip": task_chip(row.get("task") or "") if row.get("task") else "",
    }


def _require_name(name: str, role: str | None = None) -> None:
    problem = names.agent_name_problem(name, role)
    if problem:
        raise InvalidName(problem)


def _require_unshadowed(engine: Engine, name: str, role: str) -> None:
    """A name that is an address of this repo's (the configured operator role, a supervisor's
    address, another agent's role) would take that address's mail (`resolve` tries names first)."""
    settings = engine.settings
    if name == settings.console.operator_role:
        raise InvalidName(names.reserved_problem(name, "the operator's role (console.operator_role)"))
    if name in (names.strip_at(s) for s in settings.monitors.supervisors):
        raise InvalidName(names.reserved_problem(name, "a supervisor address (monitors.supervisors)"))
    if any(a.get("role") == name for n, a in engine.agents.items() if n != name):
        raise InvalidName(names.reserved_problem(name, "a role other agents hold"))
    if role in engine.agents and role != name:
        raise InvalidName(f"invalid role {role!r}: @{role} is an agent's name; pick another role")


def _require_text(kind: str, text: str) -> str:
    problem = names.text_problem(kind, text)
    if problem:
        raise InvalidInput(problem)
    return text


async def sync_identity_file(engine: Engine, name: str) -> None:
    """Write the agent's session and intent, as the engine now sees them, into its identity file.
    `whoami` answers from that file when the engine is down, and hook scripts read it directly:
    left alone it went on naming an ended session and the intent of the one before (walk C, B1).
    A file that is not there (an agent registered over RPC only) stays absent; a worktree that is
    gone or unwritable is not this call's failure: the journal already holds the change."""
    row = engine.agents.get(name)
    worktree = (row or {}).get("worktree")
    if not row or not worktree:
        return
    view = agent_view(engine, row)
    fields = {"session_id": view["session_id"], "intent": view["intent"]}
    try:
        await asyncio.to_thread(identity_file.update, worktree, name, fields)
    except OSError:
        pass


async def start_work_session(engine: Engine, name: str, intent: str = "") -> dict:
    """End the agent's open session (if any) and start a new one."""
    _require_text("intent", intent)
    events = []
    old = engine.active_sessions.get(name)
    if old:
        events.append(engine.event("session.end", name, {"session_id": old["id"], "reason": "normal"}))
    sid = ids.new_id("ses")
    events.append(engine.event("session.start", name, {"session_id": sid, "agent": name, "intent": intent}))
    await engine.commit(*events)
    await sync_identity_file(engine, name)
    return engine.active_sessions[name]


def refuse_other_clone(engine: Engine, name: str) -> None:
    """A name another clone registered stays that clone's (names are shared by every clone)."""
    existing = engine.agents.get(name)
    kept = existing.get("origin", "") if existing else ""
    if existing and not same_origin(kept, engine.journal.clone or "") and not engine.journal.is_ours(kept):
        raise Conflict(
            f"agent @{name} is registered on another clone ({existing.get('host') or '?'},"
            f" clone {existing['origin']}); names are shared by every clone: pick another name"
        )


def moves_agent(engine: Engine, name: str, worktree: str) -> bool:
    """Registering `name` in `worktree` would take it from another worktree."""
    home = (engine.agents.get(name) or {}).get("worktree")
    return bool(home and home != worktree)


async def register_agent(
    engine: Engine,
    *,
    name: str,
    role: str,
    worktree: str,
    module: str = "",
    display: str = "",
    runtime: str = "",
    kind: str = "agent",
    intent: str = "",
    force: bool = False,
    start_session: bool = False,
) -> dict:
    """Register (or re-register) `name` in `worktree`. The caller has checked who may: moving an
    agent from another worktree (`force`) needs its owner (`moves_agent` says when)."""
    _require_name(name, role)
    _require_unshadowed(engine, name, role)
    _require_text("display", display)
    _require_text("intent", intent)
    for what, value in (("role", role), ("module", module)):
        if value:
            problem = names.name_problem(value, what=what)
            if problem:
                raise InvalidName(problem)
    if runtime:  # the stored runtime is launched later: a raw `agent.register` gets no other check
        known_runtime(engine, runtime)
    existing = engine.agents.get(name)
    refuse_other_clone(engine, name)
    if existing and not intent:
        # Re-running quickstart without --intent is not clearing it (`session set-intent --clear`
        # is): the new session, the row and the identity file keep what the agent was doing.
        intent = agent_view(engine, existing)["intent"]
    if existing and moves_agent(engine, name, worktree) and not force:
        raise Conflict(
            f"agent @{name} is already registered in {existing['worktree']}; "
            "pick another name or pass --force to move it here"
        )
    data = {
        "name": name,
        "role": role,
        "module": module,
        "display": display,
        "runtime": runtime,
        "kind": kind,
        "worktree": worktree,
        # Re-registering keeps the original floor, so quickstart twice never hides history.
        "registered_at": existing["registered_at"] if existing else iso(),
        "intent": intent,
        # A name this clone registered under a former id keeps that origin: every clone knows it so.
        "origin": existing["origin"]
        if existing and existing.get("origin") and engine.journal.is_ours(existing["origin"])
        else engine.journal.clone or "",
        "host": _HOST,
    }
    unchanged = existing and all(existing.get(k) == v for k, v in data.items() if k != "intent")
    if not unchanged:
        await engine.commit(engine.event("agent.register", name, data))
    session = None
    if start_session:
        session = await start_work_session(engine, name, intent)
    engine.touch(name)
    return {
        "agent": agent_view(engine, engine.agents[name]),
        "session": session_view(session or engine.active_sessions.get(name)),
        "created": existing is None,
    }


async def require_room(worktree: str, name: str, *, named_by_env: bool, force: bool) -> None:
    """Refuse (Conflict) an identity file for `name` that would leave an agent in `worktree`
    unresolvable (identity_file.crowding_problem); `force` is the caller saying it sets THRUM_NAME."""
    if force:
        return
    problem = await asyncio.to_thread(
        identity_file.crowding_problem, worktree, name, named_by_env=named_by_env
    )
    if problem:
        raise Conflict(problem)


def known_runtime(engine: Engine, runtime: str) -> None:
    """Refuse a runtime name no preset knows (InvalidName for a malformed one, NotFound listing the
    known ones otherwise): `--runtime bogus` was stored and failed only at the first launch."""
    from thrum_engine.tmux import runtimes

    runtimes.get(engine.layout.repo, runtime)


async def enroll(
    engine: Engine,
    *,
    name: str,
    role: str,
    worktree: str,
    module: str = "",
    runtime: str = "",
    intent: str = "",
    force: bool = False,
    tmux_session: str = "",
) -> dict:
    """An agent made for a worktree Thrum set up (a new worktree, a tmux session): registered with
    a work session, and its identity file written there, before anything runs in it. A tmux
    session's pane carries THRUM_NAME, so its identity is picked by its environment."""
    await require_room(worktree, name, named_by_env=bool(tmux_session), force=force)
    reg = await register_agent(
        engine,
        name=name,
        role=role,
        worktree=worktree,
        module=module,
        runtime=runtime,
        intent=intent,
        force=force,
        start_session=True,
    )
    record = identity_file.identity_record(
        {**reg["agent"], "intent": intent},
        reg.get("session"),
        repo=engine.layout.repo,
        agent_pid=None,
        tmux_session=tmux_session,
        named_by_env=bool(tmux_session),
    )
    await asyncio.to_thread(identity_file.write, worktree, record)  # fsyncs: off the loop
    return reg


@method("agent.register", RegisterParams, writes=True)
async def register(engine: Engine, caller: Caller, p: RegisterParams) -> dict:
    worktree = caller.worktree or engine.layout.worktree
    refuse_other_clone(engine, p.name)  # before who may move it: it is not this clone's to move
    if p.force and moves_agent(engine, p.name, worktree):  # taking over another worktree's agent
        require_agent_owner(engine, caller, p.name, f"moving @{p.name} here")
    return await register_agent(
        engine,
        name=p.name,
        role=p.role,
        worktree=worktree,
        module=p.module,
        display=p.display,
        runtime=p.runtime,
        kind=p.kind,
        intent=p.intent,
        force=p.force,
        start_session=p.start_session,
    )


@method("agent.whoami", EmptyParams, identity=True)
async def whoami(engine: Engine, caller: Caller, p: EmptyParams) -> dict:
    row = engine.agents[caller.name]  # type: ignore[index]
    return {
        "agent": agent_view(engine, row),
        "session": session_view(engine.active_sessions.get(row["name"])),
    }


@method("agent.list", AgentListParams)
async def agent_list(engine: Engine, caller: Caller, p: AgentListParams) -> dict:
    rows = sorted(engine.agents.values(), key=lambda r: r["name"])
    if p.role:
        rows = [r for r in rows if r["role"] == names.strip_at(p.role)]
    if p.module:
        rows = [r for r in rows if r["module"] == p.module]
    return {"agents": [agent_view(engine, r) for r in rows]}


@method("agent.delete", AgentNameParams, writes=True)
async def agent_delete(engine: Engine, caller: Caller, p: AgentNameParams) -> dict:
    # A registered name goes as it is: one an older Thrum (or another clone) let in past today's
    # rules could otherwise never be removed (reliability probe, session 22, R3).
    bare = names.strip_at(p.name)
    name = bare if bare in engine.agents else names.named(p.name)
    if name not in engine.agents:
        raise UnknownAgent(f"no agent named @{name}")
    require_agent_owner(engine, caller, name, f"deleting @{name}")
    if name in engine.active_sessions and name != caller.name and not p.force:
        raise Conflict(f"@{name} has an active session; pass --force to delete it anyway")
    removed = await delete_agents(engine, caller, [name])
    return {"deleted": name, "identity_file": removed.get(name)}


async def delete_agents(engine: Engine, caller: Caller, agents: list[str]) -> dict[str, str]:
    """Delete `agents` and remove the identity file each had in its worktree ({name: path removed}).
    A file left behind kept the worktree ambiguous for the agent that stays there, and kept
    `THRUM_NAME=<deleted> thrum whoami` answering as if the agent were still there (walk C, A4)."""
    homes = {n: (engine.agents.get(n) or {}).get("worktree") for n in agents}
    await engine.commit(
        *(engine.event("agent.delete", author_of(engine, caller), {"name": n}) for n in agents)
    )
    removed = {}
    for name, worktree in homes.items():
        engine.last_seen.pop(name, None)
        if worktree and await asyncio.to_thread(_remove_identity_file, worktree, name):
            removed[name] = identity_file.path_of(worktree, name)
    return removed


def _remove_identity_file(worktree: str, name: str) -> bool:
    try:
        return identity_file.remove(worktree, name)
    except (OSError, identity_file.InvalidName):  # unreadable or gone; or a name that is no file's
        return False


def last_activity(engine: Engine, name: str) -> float:
    row = engine.agents.get(name, {})
    times = [engine.last_seen.get(name, 0.0)]
    for key in ("registered_at", "status_at"):
        if row.get(key):
            times.append(parse_iso(row[key]))
    return max(times)


@method("agent.cleanup", CleanupParams, writes=True)
async def agent_cleanup(engine: Engine, caller: Caller, p: CleanupParams) -> dict:
    cutoff = time.time() - p.threshold_days * 86400
    stale = sorted(n for n in engine.agents if last_activity(engine, n) < cutoff and n != caller.name)
    if not p.dry_run:
        require_operator(engine, caller, "deleting stale agents")
    removed: dict[str, str] = {}
    if not p.dry_run and stale:
        removed = await delete_agents(engine, caller, stale)
    return {
        "stale": stale,
        "deleted": [] if p.dry_run else stale,
        "dry_run": p.dry_run,
        "identity_files": sorted(removed.values()),
    }


@method("agent.set_status", SetStatusParams, identity=True, writes=True)
async def set_status(engine: Engine, caller: Caller, p: SetStatusParams) -> dict:
    name = names.named(p.agent, "--agent") if p.agent is not None else caller.name  # "" is not "me"
    if name not in engine.agents:
        raise UnknownAgent(f"no agent named @{name}")
    if name != caller.name:
        require_agent_owner(engine, caller, name, f"changing @{name}'s status")
    status = "" if p.status == "online" else p.status
    at = iso()
    await engine.commit(
        engine.event(
            "agent.update",
            author_of(engine, caller),
            {"name": name, "fields": {"status": status, "status_at": at}},
        )
    )
    worktree = engine.agents[name].get("worktree")
    if worktree:  # hook scripts read the status from the agent's identity file (upstream's fields)
        import asyncio

        from thrum_engine import identity_file

        fields = {"agent_status": p.status, "agent_status_updated_at": at}
        await asyncio.to_thread(identity_file.update, worktree, name, fields)
    return {"agent_id": name, "status": p.status}


# -- sessions --


@method("session.start", SessionStartParams, identity=True, writes=True)
async def session_start(engine: Engine, caller: Caller, p: SessionStartParams) -> dict:
    return {"session": session_view(await start_work_session(engine, caller.name, p.intent))}  # type: ignore[arg-type]


def _active(engine: Engine, name: str) -> dict:
    s = engine.active_sessions.get(name)
    if s is None:
        raise Conflict(f"@{name} has no active session: run `thrum session start`")
    return s


@method("session.end", SessionEndParams, identity=True, writes=True)
async def session_end(engine: Engine, caller: Caller, p: SessionEndParams) -> dict:
    s = dict(_active(engine, caller.name))  # type: ignore[arg-type]
    await engine.commit(engine.event("session.end", caller.name, {"session_id": s["id"], "reason": p.reason}))  # type: ignore[arg-type]
    s.update({"ended_at": iso(), "end_reason": p.reason})
    await sync_identity_file(engine, caller.name)  # type: ignore[arg-type]
    return {"session": session_view(s)}


@method("session.list", SessionListParams)
async def session_list(engine: Engine, caller: Caller, p: SessionListParams) -> dict:
    agent = names.named(p.agent, "--agent") if p.agent is not None else None  # "" is not "everyone"
    rows = await queries.sessions(engine.store, active=p.active, agent=agent)
    if agent is not None and not rows and agent not in engine.agents:
        # as `inbox --from` does: "No sessions." for a typo read as "that agent has none"
        raise UnknownAgent(f"--agent @{agent}: no agent by that name, and no session of one")
    return {"sessions": [session_view(r) for r in rows]}


@method("session.heartbeat", EmptyParams, identity=True)
async def heartbeat(engine: Engine, caller: Caller, p: EmptyParams) -> dict:
    s = engine.active_sessions.get(caller.name)  # type: ignore[arg-type]
    return {"agent_id": caller.name, "session_id": s["id"] if s else None, "at": iso()}


async def _update_session(engine: Engine, caller: Caller, field: str, value: str) -> dict:
    s = _active(engine, caller.name)  # type: ignore[arg-type]
    await engine.commit(
        engine.event("session.update", caller.name, {"session_id": s["id"], "fields": {field: value}})  # type: ignore[arg-type]
    )
    await sync_identity_file(engine, caller.name)  # type: ignore[arg-type]
    return {"session": session_view(engine.active_sessions.get(caller.name))}  # type: ignore[arg-type]


@method("session.set_intent", TextParams, identity=True, writes=True)
async def set_intent(engine: Engine, caller: Caller, p: TextParams) -> dict:
    return await _update_session(engine, caller, "intent", _require_text("intent", p.text))


@method("session.set_task", TextParams, identity=True, writes=True)
async def set_task(engine: Engine, caller: Caller, p: TextParams) -> dict:
    return await _update_session(engine, caller, "task", _require_text("task", p.text.strip()))

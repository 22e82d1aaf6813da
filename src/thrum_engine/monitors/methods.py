"""Engine methods for monitors: start (command), watch-pane, watch-file, list, show, stop, restart, logs."""

from __future__ import annotations

import json
import os
import shutil
from typing import TYPE_CHECKING

from pydantic import Field

from thrum_engine import ids, names
from thrum_engine.cron import check_cron
from thrum_engine.durations import iso
from thrum_engine.engine.authority import require_agent_owner
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.registry import method
from thrum_engine.errors import Conflict, InvalidInput, InvalidName, NotFound, ThrumError
from thrum_engine.messaging import resolve
from thrum_engine.model import Params
from thrum_engine.monitors.sources import inside
from thrum_engine.patterns import PatternError, compile_pattern
from thrum_engine.store import queries

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine
    from thrum_engine.monitors.service import MonitorService


class MonitorCommon(Params):
    name: str
    match: str
    to: str
    debounce: float | None = None


class CommandMonitorParams(MonitorCommon):
    argv: list[str]
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    schedule: str | None = None


class PaneMonitorParams(MonitorCommon):
    session: str


class FileMonitorParams(MonitorCommon):
    path: str
    allow_outside: bool = False


class MonitorIdParams(Params):
    id: str


class MonitorEditParams(Params):
    id: str
    match: str | None = None
    to: str | None = None
    debounce: float | None = None
    schedule: str | None = None  # "" clears it


class MonitorListParams(Params):
    all: bool = False


class MonitorLogsParams(Params):
    id: str
    limit: int = Field(50, ge=1, le=1000)


def service(engine: Engine) -> MonitorService:
    svc = engine.monitors
    if svc is None:
        raise ThrumError("monitors are not running in this engine")
    return svc


async def validate_common(engine: Engine, p: MonitorCommon) -> float:
    problem = names.problem("monitor", p.name)
    if problem:
        raise InvalidName(problem)
    check_match(p.match)
    resolve(engine, [p.to], None)  # an unknown target is refused now, not at the first match
    if await queries.monitor_named(engine.store, p.name):
        raise Conflict(f"a monitor named {p.name} already exists (see `thrum monitor list --all`)")
    return check_debounce(
        engine.settings.monitors.default_debounce_seconds if p.debounce is None else p.debounce
    )


def check_match(pattern: str) -> None:
    if not pattern:
        raise InvalidInput("--match must not be empty")
    try:
        compile_pattern(pattern)  # the engine that will run it: regex, in its re-compatible mode
    except PatternError as exc:
        raise InvalidInput(f"invalid pattern {pattern!r} for --match: {exc}") from None


def check_debounce(seconds: float) -> float:
    if not 0 <= seconds <= 86400:
        raise InvalidInput("--debounce must be between 0s and 24h")
    return seconds


def check_schedule(schedule: str) -> None:
    check_cron(schedule, "--schedule", "'*/5 * * * *'")


async def create_rule(
    engine: Engine, p: MonitorCommon, source: str, spec: dict, debounce: float, schedule: str | None = None
) -> dict:
    now = iso()
    if p.caller and p.caller in engine.agents:
        spec = {**spec, "owner": p.caller}  # who may stop or edit it besides the operator
    row = {
        "id": ids.new_id("mon"),
        "name": p.name,
        "source": source,
        "spec": json.dumps(spec, sort_keys=True),
        "pattern": p.match,
        "target": "@" + p.to.lstrip("@"),
        "debounce": debounce,
        "schedule": schedule,
        "status": "running",
        "created_at": now,
        "updated_at": now,
    }
    svc = service(engine)
    await queries.insert_monitor(engine.store, row)
    await svc.run(await find(engine, row["id"]))
    return {"monitor": await view(engine, row["id"])}


@method("monitor.start", CommandMonitorParams, writes=True)
async def start(engine: Engine, caller: Caller, p: CommandMonitorParams) -> dict:
    debounce = await validate_common(engine, p)
    if not p.argv or not p.argv[0]:
        raise InvalidInput("a command is required after `--`")
    cwd = os.path.realpath(os.path.expanduser(p.cwd)) if p.cwd else (caller.worktree or engine.layout.repo)
    if not os.path.isdir(cwd):
        raise InvalidInput(f"--cwd {p.cwd} is not a directory")
    exe = p.argv[0]
    found = (
        shutil.which(exe, path=os.environ.get("PATH"))
        if "/" not in exe
        else (exe if os.access(os.path.join(cwd, exe), os.X_OK) or os.access(exe, os.X_OK) else None)
    )
    if not found:
        raise InvalidInput(f"command not found: {exe}")
    for k in p.env:
        if not k or "=" in k or not (k[0].isalpha() or k[0] == "_"):
            raise InvalidInput(f"invalid --env name {k!r}")
    if p.schedule is not None:
        check_schedule(p.schedule)
    return await create_rule(
        engine, p, "command", {"argv": p.argv, "cwd": cwd, "env": p.env}, debounce, p.schedule
    )


@method("monitor.watch_pane", PaneMonitorParams, writes=True)
async def watch_pane(engine: Engine, caller: Caller, p: PaneMonitorParams) -> dict:
    debounce = await validate_common(engine, p)
    from thrum_engine.tmux.methods import get_session

    get_session(engine, p.session)
    return await create_rule(engine, p, "pane", {"session": p.session}, debounce)


@method("monitor.watch_file", FileMonitorParams, writes=True)
async def watch_file(engine: Engine, caller: Caller, p: FileMonitorParams) -> dict:
    debounce = await validate_common(engine, p)
    base = caller.worktree or engine.layout.repo
    path = os.path.realpath(os.path.join(base, os.path.expanduser(p.path)))
    roots = [engine.layout.repo] + ([caller.worktree] if caller.worktree else [])
    roots += [a["worktree"] for a in engine.agents.values() if a.get("worktree")]
    root = next((r for r in map(os.path.realpath, roots) if inside(path, r)), None)
    if not p.allow_outside and root is None:
        raise InvalidInput(f"{path} is outside the repo and its worktrees; pass --allow-outside to watch it")
    if not os.path.isdir(os.path.dirname(path)):
        raise InvalidInput(f"no such directory: {os.path.dirname(path)}")
    # The root is kept so every later read can check the path still resolves inside it (F13).
    spec = {"path": path, "root": None if p.allow_outside else root}
    return await create_rule(engine, p, "file", spec, debounce)


async def find(engine: Engine, ident: str) -> dict:
    row = await queries.monitor(engine.store, ident)
    if row is None:
        raise NotFound(f"no monitor {ident} (see `thrum monitor list --all`)")
    return row


def require_rule_owner(engine: Engine, caller: Caller, row: dict, verb: str) -> None:
    """A rule belongs to the agent that created it (`owner` in its spec; older rules: the operator's)."""
    owner = json.loads(row["spec"]).get("owner")
    require_agent_owner(engine, caller, owner, f"{verb} the monitor {row['name']}")


async def view(engine: Engine, ident: str) -> dict:
    row = await find(engine, ident)
    spec = json.loads(row["spec"])
    return {
        "id": row["id"],
        "name": row["name"],
        "source": row["source"],
        "spec": spec,
        "match": row["pattern"],
        "to": row["target"],
        "target": row["target"],  # upstream's key, which its scripts read
        "debounce": row["debounce"],
        "schedule": row["schedule"],
        "status": row["status"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "last_match_at": row["last_match_at"],
        "matches": row["matches"],
        "delivered": row["delivered"],
        "restarts": row["restarts"],
        "last_error": row["last_error"],
        "running": row["id"] in service(engine).running,
    }


@method("monitor.list", MonitorListParams)
async def list_(engine: Engine, caller: Caller, p: MonitorListParams) -> dict:
    ids_ = await queries.monitor_ids(engine.store, running_only=not p.all)
    return {"monitors": [await view(engine, mid) for mid in ids_]}


@method("monitor.show", MonitorIdParams)
async def show(engine: Engine, caller: Caller, p: MonitorIdParams) -> dict:
    return {"monitor": await view(engine, p.id)}


@method("monitor.stop", MonitorIdParams, writes=True)
async def stop(engine: Engine, caller: Caller, p: MonitorIdParams) -> dict:
    row = await find(engine, p.id)
    require_rule_owner(engine, caller, row, "stopping")
    svc = service(engine)
    await svc.halt(row["id"])
    await svc.set_status(row["id"], "stopped")
    await svc.event(row["id"], "stop")
    return {"monitor": await view(engine, row["id"])}


@method("monitor.restart", MonitorIdParams, writes=True)
async def restart(engine: Engine, caller: Caller, p: MonitorIdParams) -> dict:
    row = await find(engine, p.id)
    require_rule_owner(engine, caller, row, "restarting")
    svc = service(engine)
    await svc.halt(row["id"])
    await svc.set_status(row["id"], "running", "")
    await svc.run(await find(engine, row["id"]))
    return {"monitor": await view(engine, row["id"])}


@method("monitor.edit", MonitorEditParams, writes=True)
async def edit(engine: Engine, caller: Caller, p: MonitorEditParams) -> dict:
    """Change a rule's pattern, target, debounce or schedule in place: same id, same history; a
    running rule restarts on the new settings. The source stays (a new source is a new rule)."""
    row = await find(engine, p.id)
    require_rule_owner(engine, caller, row, "editing")
    changes: dict = {}
    if p.match is not None:
        check_match(p.match)
        changes["pattern"] = p.match
    if p.to is not None:
        resolve(engine, [p.to], None)
        changes["target"] = "@" + p.to.lstrip("@")
    if p.debounce is not None:
        changes["debounce"] = check_debounce(p.debounce)
    if p.schedule is not None:
        if row["source"] != "command":
            raise InvalidInput("only command monitors take a schedule")
        if p.schedule:
            check_schedule(p.schedule)
        changes["schedule"] = p.schedule or None
    if not changes:
        raise InvalidInput("nothing to change: give a new match, target, debounce or schedule")
    # Only what differs is an edit: the console's form sends every field, and the log listed them
    # all as changed (walk A, 14); the same values again change nothing and restart nothing.
    changes = {k: v for k, v in changes.items() if row[k] != v}
    if not changes:
        return {"monitor": await view(engine, row["id"])}
    svc = service(engine)
    await queries.update_monitor(engine.store, row["id"], changes, iso())
    await svc.event(row["id"], "edit", detail=", ".join(sorted(changes)))
    if row["status"] == "running":
        await svc.halt(row["id"])
        await svc.run(await find(engine, row["id"]))
    return {"monitor": await view(engine, row["id"])}


@method("monitor.logs", MonitorLogsParams)
async def logs(engine: Engine, caller: Caller, p: MonitorLogsParams) -> dict:
    row = await find(engine, p.id)
    events = await queries.monitor_log(engine.store, row["id"], p.limit)
    return {"monitor": row["id"], "name": row["name"], "events": events}

"""whoami, agent ..., session ...: who I am and what I am doing."""

from thrum_engine.cli.args import exclusive
from thrum_engine.cli.call import CliError, Ctx
from thrum_engine.cli.output import line
from thrum_engine.durations import parse_duration


def live_identity(ctx: Ctx, name: str) -> dict | None:
    """The engine's view of `name` ({"agent", "session"}) when an engine is already running here,
    else None: whoami works without the engine, so it never starts one, and an engine that cannot
    answer (busy, another worktree's claim) leaves whoami to the identity file. An engine that
    says the agent is not registered is believed: an identity file or THRUM_NAME naming a deleted
    agent must not be shown as a live identity (walk C, A4)."""
    from thrum_engine.rpc.client import EngineUnavailable, RpcError

    try:
        client = ctx.client(start=False)
    except CliError:
        return None
    try:
        return client.call("agent.whoami", {"caller": name}, 5.0)
    except RpcError as exc:
        if exc.kind == "unknown_agent":
            raise CliError(exc.message) from None
        return None
    except (EngineUnavailable, TimeoutError, OSError):
        return None


def _refuse_foreign_claim(ctx: Ctx, name: str) -> None:
    """THRUM_NAME naming an agent whose identity lives in another worktree: the engine refuses
    every call from here as that agent, so whoami says so instead of making up an identity for
    this worktree (and says it without the engine, from the identity files)."""
    from thrum_engine.cli.call import identity_home

    layout = ctx.layout
    home = identity_home(layout, name)
    if home is not None and home != layout.worktree:
        raise CliError(
            f"THRUM_NAME names @{name}, whose worktree is {home}, but this is {layout.worktree}"
            f" (run there, or unset THRUM_NAME; `thrum quickstart --name {name} --force` here moves @{name} here)"
        )


def whoami(ctx: Ctx) -> int:
    from thrum_engine.identity_fields import FIELDS
    from thrum_engine.layout import current_branch

    name = ctx.require_me()
    _refuse_foreign_claim(ctx, name)
    data = {f: "" for f in FIELDS}
    data.update({k: v for k, v in (ctx.identity_file or {}).items() if v is not None})
    live = live_identity(ctx, name)
    if live is not None:  # the engine's session and intent are the current ones; the file may lag
        data["session_id"] = (live.get("session") or {}).get("session_id") or ""
        data["intent"] = live["agent"].get("intent") or ""
    data["name"] = data.get("name") or name
    data["agent_id"] = name
    data["preferred_runtime"] = data["preferred_runtime"] or data["runtime"]
    data["worktree"] = data["worktree"] or ctx.layout.worktree
    data["branch"] = current_branch(data["worktree"]) or ""  # live: the checkout can move
    field = ctx.args.get("field")
    if field:
        if field not in data:
            raise CliError(f"unknown field {field!r}: one of {', '.join(sorted(data))}")
        value = data[field]
        if ctx.json:
            return ctx.emit({field: value}, None)
        line("" if value is None else str(value))
        return 0

    def human(d: dict) -> None:
        line(
            f"@{d['name']}"
            + (
                f" ({d.get('role')}" + (f"/{d['module']}" if d.get("module") else "") + ")"
                if d.get("role")
                else ""
            )
        )
        for k in ("worktree", "session_id", "intent"):
            if d.get(k):
                line(f"  {k}: {d[k]}")

    return ctx.emit(data, human)


def register(ctx: Ctx) -> int:
    from thrum_engine.cli.setup import _register, from_env, known_runtime

    from_env(ctx, "role", "module")
    a = ctx.args
    name = a.get("name")
    if not name:
        raise CliError("agent register needs a NAME (or --name)")

    if a.get("runtime") is not None:  # `--runtime ''` is a bad name, not "no runtime"
        known_runtime(ctx, a["runtime"])
    r = _register(
        ctx,
        name,
        a.get("role") or "agent",
        a.get("module") or "",
        a.get("display") or "",
        a.get("runtime") or "",
        a.get("intent") or "",
        force=a["force"],
        record_pid=True,
    )
    return ctx.emit(r, lambda r: line(f"✓ Registered @{r['agent']['name']} ({r['agent']['role']})"))


def _agent_line(ag: dict) -> str:
    role = ag["role"] + (f"/{ag['module']}" if ag.get("module") else "")
    extra = f"  {ag['intent']}" if ag.get("intent") else ""
    return f"@{ag['name']}  {role}  {ag.get('runtime') or '-'}{extra}"


def agent_list(ctx: Ctx) -> int:
    params = {}
    if ctx.args.get("role"):
        params["role"] = ctx.args["role"]
    if ctx.args.get("module"):
        params["module"] = ctx.args["module"]
    r = ctx.call("agent.list", params)
    if ctx.args["context"]:
        contexts = {w["path"]: w for w in ctx.call("overview")["worktrees"]}
        for ag in r["agents"]:
            ag["work_context"] = contexts.get(ag["worktree"])

    def human(r: dict) -> None:
        if not r["agents"]:
            line("No agents registered.")
        for ag in r["agents"]:
            line(_agent_line(ag))
            wc = ag.get("work_context")
            if wc:
                line(
                    f"    {wc['branch'] or 'detached'}: {len(wc['uncommitted'])} changed, {wc['ahead']} ahead"
                )

    return ctx.emit(r, human)


def agent_delete(ctx: Ctx) -> int:
    r = ctx.call("agent.delete", {"name": ctx.args["name"], "force": ctx.args["force"]})

    def human(r: dict) -> None:
        line(f"✓ Deleted @{r['deleted']}")
        if r.get("identity_file"):  # the engine removed it: the worktree no longer resolves to the agent
            line(f"Removed identity file: {r['identity_file']}")

    return ctx.emit(r, human)


def agent_cleanup(ctx: Ctx) -> int:
    exclusive(ctx.args, "--dry-run", "--force")
    days = 7.0
    text = ctx.args.get("threshold")
    if text:
        try:
            # a bare number is days (7), anything else a duration (12h)
            days = parse_duration(
                text + "d" if text.strip().lstrip("+-").replace(".", "", 1).isdigit() else text
            )
            days /= 86400
        except ValueError:
            raise CliError("--threshold takes days (e.g. 7) or a duration (e.g. 12h), up to 3660d") from None
        if days < 0:
            raise CliError(f"--threshold must not be negative, not {text[:40]!r}")
    r = ctx.call("agent.cleanup", {"threshold_days": days, "dry_run": not ctx.args["force"]})

    def human(r: dict) -> None:
        if not r["stale"]:
            line("No stale agents.")
        elif r["dry_run"]:
            line("Stale agents (pass --force to delete): " + ", ".join("@" + n for n in r["stale"]))
        else:
            line("✓ Deleted " + ", ".join("@" + n for n in r["deleted"]))
            for path in r.get("identity_files") or ():
                line(f"Removed identity file: {path}")

    return ctx.emit(r, human)


def set_status(ctx: Ctx) -> int:
    status = ctx.args["status"]
    if status not in ("working", "idle", "blocked", "stuck"):
        raise CliError(f"invalid status {status!r}: use working, idle, blocked or stuck")
    params = {"status": status}
    agent = ctx.agent_flag("--agent")
    if agent is not None:
        params["agent"] = agent
    r = ctx.call("agent.set_status", params)  # the engine also records it in the identity file
    own = agent is None or r["agent_id"] == ctx.me
    return ctx.emit(
        r,
        lambda r: line(
            f"✓ Status set to {r['status']}" if own else f"✓ Status for {r['agent_id']} set to {r['status']}"
        ),
    )


def _session_line(s: dict | None) -> str:
    if not s:
        return "no session"
    state = f"ended {s['ended_at']} ({s['end_reason']})" if s.get("ended_at") else "active"
    return f"{s['session_id']}  @{s['agent_id']}  started {s['started_at']}  {state}" + (
        f"  intent: {s['intent']}" if s.get("intent") else ""
    )


def session_start(ctx: Ctx) -> int:
    r = ctx.call("session.start", {"intent": ctx.args.get("intent") or ""})
    return ctx.emit(r, lambda r: line(f"✓ Session started: {r['session']['session_id']}"))


def session_end(ctx: Ctx) -> int:
    reason = ctx.args.get("reason") or "normal"
    if reason not in ("normal", "crash"):
        raise CliError(f"invalid --reason {reason!r}: use normal or crash")
    r = ctx.call("session.end", {"reason": reason})
    return ctx.emit(r, lambda r: line(f"✓ Session ended: {r['session']['session_id']}"))


def session_list(ctx: Ctx) -> int:
    params: dict = {"active": ctx.args["active"]}
    agent = ctx.agent_flag("--agent")
    if agent is not None:
        params["agent"] = agent
    r = ctx.call("session.list", params)

    def human(r: dict) -> None:
        if not r["sessions"]:
            line("No sessions.")
        for s in r["sessions"]:
            line(_session_line(s))

    return ctx.emit(r, human)


def heartbeat(ctx: Ctx) -> int:
    r = ctx.call("session.heartbeat")
    return ctx.emit(r, lambda r: line(f"✓ Heartbeat @{r['agent_id']}"))


def _text(ctx: Ctx) -> str:
    """TEXT, or "" with --clear (there was no way to clear an intent or a task: walk C, C7)."""
    text = " ".join(ctx.args["text"])
    if ctx.args.get("clear"):
        if text:
            raise CliError("TEXT and --clear are mutually exclusive")
        return ""
    if not text.strip():
        raise CliError("TEXT is required (--clear clears it)")
    return text


def _set(ctx: Ctx, field: str, label: str) -> int:
    r = ctx.call(f"session.set_{field}", {"text": _text(ctx)})
    value = r["session"][field]
    return ctx.emit(r, lambda r: line(f"✓ {label}: {value}" if value else f"✓ {label} cleared"))


def set_intent(ctx: Ctx) -> int:
    return _set(ctx, "intent", "Intent")


def set_task(ctx: Ctx) -> int:
    return _set(ctx, "task", "Task")

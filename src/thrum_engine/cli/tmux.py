"""tmux create|launch|start|status|list|kill|connect|send|capture|restart, and runtime list|show|set-default."""

from __future__ import annotations

import os
import sys

from thrum_engine.cli.call import CliError, Ctx
from thrum_engine.cli.output import error, line
from thrum_engine.names import problem, runtime_name_problem


def _check(kind: str, value: str | None) -> None:
    """Names are checked here too, so nothing malformed ever reaches the engine or tmux."""
    found = problem(kind, value) if value is not None else None
    if found:
        raise CliError(found)


def _runtime(value: str | None) -> None:
    """`--runtime R`: the one runtime-name rule (names.runtime_name_problem)."""
    found = runtime_name_problem(value) if value is not None else None
    if found:
        raise CliError(found)


def _session_line(s: dict) -> str:
    ps = s["pane"]
    who = "@" + s["agent"] if s["agent"] else "-"
    return (
        f"{s['name']}  {who}  {s['runtime']}  {s['state']}  {ps['state']} {int(ps['age_seconds'])}s"
        f" ({ps['source']})  {s['branch'] or ''}"
    )


def _create_params(ctx: Ctx, session: str, cwd: str) -> dict:
    a = ctx.args
    _check("session", session)
    if a.get("runtime") is not None:
        _runtime(a["runtime"])
    params = {
        "session": session,
        "cwd": cwd,
        "module": a.get("module") or "",
        "intent": a.get("intent") or "",
        "no_agent": bool(a.get("no_agent")),
        "force": bool(a.get("force")),
    }
    if a.get("name") is not None:  # `--name ""` is a bad name, not "name it after the session"
        params["agent"] = a["name"]
    for key, flag in (("role", "role"), ("runtime", "runtime")):
        if a.get(flag):
            params[key] = a[flag]
    return params


def create(ctx: Ctx) -> int:
    _check("session", ctx.args["session"])
    if not ctx.args.get("cwd"):
        raise CliError("tmux create needs --cwd DIR")
    cwd = os.path.abspath(ctx.args["cwd"])
    r = ctx.call("tmux.create", _create_params(ctx, ctx.args["session"], cwd))
    return ctx.emit(
        r,
        lambda r: (
            line(f"✓ Session created: {r['session']['name']}"),  # upstream's words
            r["session"]["agent"] and line(f"  agent: @{r['session']['agent']}"),
        ),
    )


def _launch_lines(r: dict) -> None:
    if not r["launched"]:
        line(f"Nothing to launch for runtime {r['runtime']}.")
        return
    primed = " and primed it" if r["primed"] else ""
    if r.get("primed_by") == "hook":
        primed = " (its SessionStart hook primed it)"
    line(f"✓ Launched {r['runtime']} in session {r['session']}{primed}")
    if r.get("note"):
        line(f"! {r['note']}")


def launch(ctx: Ctx) -> int:
    _check("session", ctx.args["session"])
    _runtime(ctx.args.get("runtime"))
    params = {"session": ctx.args["session"]}
    for k in ("runtime", "prompt"):
        if ctx.args.get(k):
            params[k] = ctx.args[k]
    r = ctx.call("tmux.launch", params, timeout=None)
    return ctx.emit(r, _launch_lines)


def start(ctx: Ctx) -> int:
    name = ctx.args.get("name")
    if not name:
        raise CliError("tmux start needs --name NAME (and usually --runtime R)")
    params = _create_params(ctx, name, os.getcwd())
    if ctx.args.get("prompt"):
        params["prompt"] = ctx.args["prompt"]
    r = ctx.call("tmux.start", params, timeout=None)
    return ctx.emit(
        r, lambda r: (line(f"✓ Session created: {r['session']['name']}"), _launch_lines(r["launch"]))
    )


def status(ctx: Ctx) -> int:
    r = ctx.call("tmux.status")

    problems = r.get("problems") or []  # sessions not watched (their log is a planted link)

    def human(r: dict) -> None:
        if not r["sessions"] and not problems:
            line("No sessions for this repo.")
        for s in r["sessions"]:
            line(_session_line(s))
        for p in problems:
            line(f"! {p['session']}: not watched: {p['problem']}")

    shown = {"sessions": r["sessions"], **({"problems": problems} if problems else {})}
    return ctx.emit(shown if ctx.json else r, human)


def kill(ctx: Ctx) -> int:
    _check("session", ctx.args["session"])
    r = ctx.call("tmux.kill", {"session": ctx.args["session"]})
    return ctx.emit(r, lambda r: line(f"✓ Killed session {r['killed']}"))


def send(ctx: Ctx) -> int:
    _check("session", ctx.args["session"])
    text = " ".join(ctx.args["text"])
    if not text:
        raise CliError("nothing to send: tmux send SESSION TEXT")
    r = ctx.call(
        "tmux.send", {"session": ctx.args["session"], "text": text, "enter": not ctx.args["no_enter"]}
    )
    return ctx.emit(r, lambda r: line(f"✓ Sent {r['sent']} characters to {r['session']}"))


def capture(ctx: Ctx) -> int:
    _check("session", ctx.args["session"])
    lines = ctx.whole("--lines", high=10_000) or 50  # the engine's bound (tmux.capture)
    r = ctx.call("tmux.capture", {"session": ctx.args["session"], "lines": lines})
    return ctx.emit(r, lambda r: [line(ln) for ln in r["lines"]])


def restart(ctx: Ctx) -> int:
    _check("session", ctx.args["session"])
    _runtime(ctx.args.get("runtime"))
    params = {"session": ctx.args["session"], "force": ctx.args["force"]}
    if ctx.args.get("runtime"):
        params["runtime"] = ctx.args["runtime"]
    written = _snapshot_before_restart(ctx, ctx.args["session"])
    try:
        r = ctx.call("tmux.restart", params, timeout=None)
    except CliError:
        if written:  # refused or failed: no restart, so no snapshot for a next session
            os.remove(written)
        raise
    return ctx.emit(r, lambda r: (line(f"✓ Session {params['session']} restarted"), _launch_lines(r)))


def _snapshot_before_restart(ctx: Ctx, session: str) -> str | None:
    """Keep the agent's conversation across the restart, as upstream's restart does: unless the agent
    saved its own snapshot (`tmux snapshot save`), write one from its pane now, before the pane goes;
    the briefing after the restart hands it over. Returns the path written, if any."""
    from thrum_engine import snapshots
    from thrum_engine.cli.snapshot import build
    from thrum_engine.layout import worktree_root

    found = [s for s in ctx.call("tmux.status").get("sessions", []) if s["name"] == session]
    if not found or not found[0].get("agent") or not found[0].get("cwd"):
        return None
    agent = found[0]["agent"]
    home = worktree_root(found[0]["cwd"])
    if home is None or snapshots.read(home, agent) is not None:
        return None
    text = build(ctx, agent, home, f"tmux restart {session}", require_session=False)
    return snapshots.save(home, agent, text)


def connect(ctx: Ctx) -> int:
    """Attach this terminal to a session (switch-client when already inside tmux)."""
    r = ctx.call("tmux.status")
    names = [s["name"] for s in r["sessions"]]
    target = ctx.args.get("session")
    if target is None:
        mine = [s["name"] for s in r["sessions"] if s["agent"] == ctx.me] if ctx.me else []
        if len(mine) == 1 or len(names) == 1:
            target = (mine or names)[0]
        else:
            raise CliError("which session? " + (", ".join(names) if names else "there are none"))
    _check("session", target)
    if target not in names:
        raise CliError(f"no session {target} in this repo")
    from thrum_engine.tmux.attach import attach_command

    attach = attach_command(r.get("socket_name"), target, dict(os.environ), to="your shell")
    if "attach-session" in attach.argv and not os.isatty(0):
        # tmux would say only `open terminal failed: not a terminal`, without our `Error:` shape.
        raise CliError(
            f"tmux connect needs a terminal: run it from an interactive shell to attach to {target}"
        )
    ctx.close()
    sys.stdout.flush()
    os.execvpe("tmux", attach.argv, attach.env)
    return 0  # not reached


def _presets(ctx: Ctx, name: str | None = None) -> tuple[list, str]:
    """The presets (or the one named) and the default, read from the repo's files: a read-only
    command must not start an engine (walk bug 17: the console then attached instead of hosting)."""
    from thrum_engine.errors import ThrumError
    from thrum_engine.settings import load_settings
    from thrum_engine.tmux import runtimes

    try:
        default = load_settings(ctx.layout.config_file).runtimes.default
        if name is not None:
            return [runtimes.get(ctx.layout.repo, name)], default
        return [r for _, r in sorted(runtimes.load(ctx.layout.repo).items())], default
    except ThrumError as exc:
        raise CliError(exc.message) from None
    except ValueError as exc:  # pydantic's ValidationError: a bad value in the config file or env
        raise CliError(f"invalid settings: {' '.join(str(exc).split())}") from None


def runtime_list(ctx: Ctx) -> int:
    presets, default = _presets(ctx)
    r = {"runtimes": [p.view() for p in presets], "default": default}

    def human(r: dict) -> None:
        for rt in r["runtimes"]:
            mark = "*" if rt["name"] == r["default"] else " "
            cmd = " ".join(rt["command"]) or "(nothing launched)"
            line(f"{mark} {rt['name']:10s} {cmd:30s} prime: {rt['prime'] or '-'}  {rt['description']}")

    return ctx.emit(r, human)


def runtime_show(ctx: Ctx) -> int:
    _runtime(ctx.args["runtime"])
    (preset,), default = _presets(ctx, ctx.args["runtime"])
    from thrum_engine.integrations import describe

    r = {"runtime": preset.view(), "default": default == preset.name, "integration": describe(preset.name)}

    def human(r: dict) -> None:
        rt = r["runtime"]
        for k in ("name", "command", "prime", "idle", "busy", "dialog", "approve", "deny", "description"):
            line(f"{k}: {rt[k]}")
        wiring = r["integration"]
        if wiring is None:
            line("integration: none (Thrum installs no files for this runtime)")
            return
        for part, path in wiring["files"].items():
            line(f"{part} file: {path or '(none for this runtime)'}")
        line(f"install: {wiring['install']}")
        for note in wiring["notes"]:
            line(f"note: {note}")

    return ctx.emit(r, human)


def runtime_set_default(ctx: Ctx) -> int:
    _runtime(ctx.args["runtime"])
    r = ctx.call("runtime.set_default", {"name": ctx.args["runtime"]})
    return ctx.emit(r, lambda r: line(f"✓ Default runtime: {r['default']}"))


def _command_line(c: dict) -> str:
    result = c.get("result") or c["status"]
    return f"{c['command_id']}  {result:22s}  {c['command']}" + (f"  ({c['note']})" if c["note"] else "")


def queue(ctx: Ctx) -> int:
    _check("session", ctx.args["session"])
    command = " ".join(ctx.args["command"])
    if not command.strip():
        raise CliError("nothing to queue: tmux queue SESSION CMD")
    params: dict = {"session": ctx.args["session"], "command": command, "wait": ctx.args["wait"]}
    # the engine's bounds (tmux.queue), checked here first so the flag is named before the session
    for flag, low, high in (("timeout", 0.001, 86400.0), ("silence", 0.0, 3600.0)):
        v = ctx.seconds("--" + flag, low=low, high=high)
        if v is not None:
            params[flag] = v
    r = ctx.call("tmux.queue", params, timeout=None)
    c = r["command"]

    finished = not ctx.args["wait"] or c["status"] == "done"
    outcome = (c.get("result") or c["status"]) + (f": {c['note']}" if c["note"] else "")

    def human(r: dict) -> None:
        if ctx.args["wait"]:
            if c["output"]:
                line(c["output"])
            if finished:
                line(f"✓ {outcome}")
        else:
            line(f"✓ Queued {c['command_id']} in {c['session']}")

    ctx.emit(r, human)
    if finished:
        return 0
    # Failed, timed out or cancelled: the pane's output stays on stdout (and the record in --json),
    # and the outcome is the error line every failing command gives.
    error(outcome)
    return 1


def queue_status(ctx: Ctx) -> int:
    _check("session", ctx.args["session"])
    r = ctx.call("tmux.queue_status", {"session": ctx.args["session"]})

    def human(r: dict) -> None:
        if not r["commands"]:
            line(f"No commands for {r['session']}.")
        for c in r["commands"]:
            line(_command_line(c))

    return ctx.emit(r, human)


def cancel(ctx: Ctx) -> int:
    r = ctx.call("tmux.cancel", {"command_id": ctx.args["command_id"]})

    def human(r: dict) -> None:
        c = r["command"]
        line(_command_line(c))
        if c["output"]:
            line(c["output"])

    return ctx.emit(r, human)

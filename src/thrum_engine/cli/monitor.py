"""monitor start|watch-pane|watch-file|list|show|stop|restart|logs."""

from __future__ import annotations

import os

from thrum_engine.cli.call import CliError, Ctx
from thrum_engine.cli.output import line


def _common(ctx: Ctx) -> dict:
    a = ctx.args
    ctx.agent_flag("--to")  # `--to ''` or `--to @`: an empty name, not a missing flag
    for flag in ("name", "match", "to"):
        if not a.get(flag):
            raise CliError(f"--{flag} is required")
    params = {"name": a["name"], "match": a["match"], "to": a["to"]}
    if a.get("debounce") is not None:
        params["debounce"] = ctx.seconds("--debounce")
    return params


def _started(r: dict) -> None:
    m = r["monitor"]
    line(f"Started monitor {m['name']} ({m['id']})")


def start(ctx: Ctx) -> int:
    params = _common(ctx)
    argv = ctx.args["rest"]
    if not argv:
        raise CliError("the command to watch goes after `--`: thrum monitor start ... -- CMD ARGS")
    env = {}
    for item in ctx.args["env"]:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise CliError(f"invalid --env {item!r}: use KEY=VALUE")
        env[k] = v
    params.update(argv=argv, env=env)
    if ctx.args.get("cwd"):
        params["cwd"] = os.path.abspath(ctx.args["cwd"])
    if ctx.args.get("schedule"):
        params["schedule"] = ctx.args["schedule"]
    return ctx.emit(ctx.call("monitor.start", params), _started)


def watch_pane(ctx: Ctx) -> int:
    params = _common(ctx)
    if not ctx.args.get("session"):
        raise CliError("--session is required")
    params["session"] = ctx.args["session"]
    return ctx.emit(ctx.call("monitor.watch_pane", params), _started)


def watch_file(ctx: Ctx) -> int:
    params = _common(ctx)
    if not ctx.args.get("path"):
        raise CliError("--path is required")
    params.update(path=os.path.abspath(ctx.args["path"]), allow_outside=ctx.args["allow_outside"])
    return ctx.emit(ctx.call("monitor.watch_file", params), _started)


def _line(m: dict) -> str:
    src = {
        "command": lambda s: " ".join(s["argv"]),
        "pane": lambda s: "pane " + s["session"],
        "file": lambda s: s["path"],
    }[m["source"]](m["spec"])
    err = f"  ! {m['last_error']}" if m["last_error"] else ""
    return (
        f"{m['id']}  {m['name']}  {m['status']}  /{m['match']}/ → {m['to']}  {m['matches']} matches"
        f"  [{src}]{err}"
    )


def list_(ctx: Ctx) -> int:
    r = ctx.call("monitor.list", {"all": ctx.args["all"]})

    def human(r: dict) -> None:
        if not r["monitors"]:
            line("No monitors." + ("" if ctx.args["all"] else " (--all shows stopped ones)"))
        for m in r["monitors"]:
            line(_line(m))

    return ctx.emit(r["monitors"] if ctx.json else r, human)  # upstream's shape: a bare array


def show(ctx: Ctx) -> int:
    r = ctx.call("monitor.show", {"id": ctx.args["id"]})

    def human(r: dict) -> None:
        m = r["monitor"]
        line(_line(m))
        for k in ("debounce", "schedule", "created_at", "last_match_at", "delivered", "restarts"):
            if m[k] not in (None, ""):
                line(f"  {k}: {m[k]}")

    return ctx.emit(r["monitor"] if ctx.json else r, human)  # upstream's shape: the rule itself


def stop(ctx: Ctx) -> int:
    r = ctx.call("monitor.stop", {"id": ctx.args["id"]})
    asked = ctx.args["id"]  # upstream's scripts grep `Stopped monitor <what they passed>`
    other = r["monitor"]["name"] if asked == r["monitor"]["id"] else r["monitor"]["id"]
    return ctx.emit(r, lambda r: line(f"✓ Stopped monitor {asked} ({other})"))


def restart(ctx: Ctx) -> int:
    r = ctx.call("monitor.restart", {"id": ctx.args["id"]})
    return ctx.emit(r, lambda r: line(f"✓ Restarted monitor {r['monitor']['name']} ({r['monitor']['id']})"))


def logs(ctx: Ctx) -> int:
    params = {"id": ctx.args["id"]}
    limit = ctx.whole("--limit", high=1000)  # the engine's bound (monitor.logs)
    if limit is not None:
        params["limit"] = limit
    r = ctx.call("monitor.logs", params)

    def human(r: dict) -> None:
        if not r["events"]:
            line(f"Nothing logged for {r['name']} yet.")
        for e in r["events"]:
            extra = f" → {e['message_id']}" if e["message_id"] else ""
            line(
                f"{e['at']}  {e['kind']:10s} {e['line'] or e['detail']}{extra}"
                + (f"  ({e['detail']})" if e["line"] and e["detail"] else "")
            )

    return ctx.emit(r, human)

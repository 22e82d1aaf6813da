"""prime, status, overview, team, ping, who-has, config show."""

from __future__ import annotations

from thrum_engine.cli.call import CliError, Ctx
from thrum_engine.cli.output import line
from thrum_engine.durations import human_age


def version(ctx: Ctx) -> int:
    from thrum_engine.version import __version__

    return ctx.emit({"version": __version__}, lambda r: line(f"thrum {r['version']}"))


def _member_line(m: dict) -> str:
    role = m["role"] + (f"/{m['module']}" if m.get("module") else "")
    unread = f"  {m['unread']} unread" if m.get("unread") else ""
    branch = f"  [{m['branch']}]" if m.get("branch") else ""
    intent = f"  — {m['intent']}" if m.get("intent") else ""
    age = human_age(m.get("idle_seconds") or 0)
    return f"@{m['name']}  {role}  {m['presence']} {age}  {m.get('runtime') or '-'}{branch}{unread}{intent}"


def team(ctx: Ctx) -> int:
    r = ctx.call("team.list", {"all": ctx.args["all"]})

    def human(r: dict) -> None:
        if not r["members"]:
            line("Nobody is online." + (" (try --all)" if not ctx.args["all"] and r["total"] else ""))
        for m in r["members"]:
            line(_member_line(m))

    return ctx.emit(r, human)


def ping(ctx: Ctx) -> int:
    r = ctx.call("team.ping", {"agent": ctx.args["agent"]})
    return ctx.emit(
        r,
        lambda r: line(
            f"@{r['member']['name']} is {r['member']['presence']}"
            f" (last seen {r['member']['last_seen_ago']} ago)"
        ),
    )


def who_has(ctx: Ctx) -> int:
    r = ctx.call("team.who_has", {"path": ctx.args["file"]})

    def human(r: dict) -> None:
        if not r["holders"]:
            line(f"Nobody is changing {r['file']}.")
        for h in r["holders"]:
            who = ", ".join("@" + a for a in h["agents"]) or "(no agent)"
            line(f"{who}  {h['branch'] or 'detached'}  {'+'.join(h['changes'])}  {h['path']}")

    return ctx.emit(r, human)


def _wc_line(wc: dict | None) -> str:
    if not wc:
        return "no worktree"
    return f"{wc['branch'] or 'detached'}: {len(wc['uncommitted'])} uncommitted, {wc['ahead']} ahead of {wc['base']}"


def status(ctx: Ctx) -> int:
    r = ctx.call("status")

    def human(r: dict) -> None:
        e = r["engine"]
        line(f"engine: {e['host']} pid {e['pid']} up {human_age(e['uptime'])} · {r['agents']} agents")
        if r.get("me"):
            line(_member_line(r["me"]))
            s = r.get("session")
            line(f"session: {s['session_id']}" if s else "session: none")
            line(f"work: {_wc_line(r.get('work_context'))}")

    return ctx.emit(r, human)


def overview(ctx: Ctx) -> int:
    r = ctx.call("overview")

    def human(r: dict) -> None:
        status_human = r
        e = status_human["engine"]
        line(f"engine: {e['host']} pid {e['pid']} · {r['messages']} messages")
        line("team:")
        for m in r["team"]:
            line("  " + _member_line(m))
        line("worktrees:")
        for w in r["worktrees"]:
            who = ", ".join("@" + a for a in w["agents"]) or "-"
            line(f"  {w['path']}  {who}  {_wc_line(w)}")

    return ctx.emit(r, human)


def prime(ctx: Ctx) -> int:
    """Never fails the session start: without an engine it prints what it knows locally."""
    try:
        r = ctx.call("prime")
    except CliError as exc:
        r = {"engine": None, "error": exc.message, "agent": ctx.identity_file}

    def human(r: dict) -> None:
        if r.get("engine") is None:
            line(f"Thrum engine unavailable: {r['error']}")
            if r.get("agent"):
                line(f"You are @{r['agent'].get('name')} ({r['agent'].get('role')})")
            return
        ag = r["agent"]
        line(f"# You are @{ag['name']} ({ag['role']}" + (f"/{ag['module']}" if ag["module"] else "") + ")")
        if r["session"]:
            line(
                f"Session {r['session']['session_id']}"
                + (f" — intent: {r['session']['intent']}" if r["session"]["intent"] else "")
            )
        line(f"Work: {_wc_line(r['work_context'])}")
        line(f"\n## Team ({len(r['team'])} online)")
        for m in r["team"]:
            line("- " + _member_line(m))
        line(f"\n## Inbox: {r['unread']} unread")
        for m in r["recent_unread"]:
            line(f"- {m['message_id']} from @{m['from']}: {m['preview']}")
        if r["unread"]:
            line("Read them with `thrum inbox` (that marks them read; `--unread` only peeks).")
        if r.get("preamble"):
            line("\n## Preamble\n" + r["preamble"].rstrip())
        if r.get("context"):
            line("\n## Saved context\n" + r["context"].rstrip())

    return ctx.emit(r, human)


def config_show(ctx: Ctx) -> int:
    from pydantic import ValidationError

    from thrum_engine.settings import load_settings

    try:
        s = load_settings(ctx.layout.config_file)  # a ThrumError is mapped by `call.run`
    except ValidationError as exc:  # a bad value in the file or env
        raise CliError(f"invalid settings: {' '.join(str(exc).split())}") from None
    r = {"config": s.model_dump(mode="json"), "config_file": ctx.layout.config_file}

    def human(r: dict) -> None:
        def walk(prefix: str, d: dict) -> None:
            for k in sorted(d):
                if isinstance(d[k], dict):
                    walk(f"{prefix}{k}.", d[k])
                else:
                    line(f"{prefix}{k} = {d[k]}")

        walk("", r["config"])
        line(f"(file: {r['config_file']})")

    return ctx.emit(r, human)

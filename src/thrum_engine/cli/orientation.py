"""prime, status, overview, team, ping, who-has, config show."""

from thrum_engine.cli.call import CliError, Ctx, cli_error, engine_failure, engine_failures
from thrum_engine.cli.output import line
from thrum_engine.durations import human_age


def version(ctx: Ctx) -> int:
    from thrum_engine.version import __version__

    return ctx.emit({"version": __version__}, lambda r: line(f"thrum {r['version']}"))


def _member_line(m: dict) -> str:
    from thrum_engine.briefing_text import member_line

    return member_line(m)


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
            tasks = h.get("tasks") or {}
            who = (
                ", ".join("@" + a + (f" ({tasks[a]})" if a in tasks else "") for a in h["agents"])
                or "(no agent)"
            )
            line(f"{who}  {h['branch'] or 'detached'}  {'+'.join(h['changes'])}  {h['path']}")

    return ctx.emit(r, human)


def _wc_line(wc: dict | None) -> str:
    from thrum_engine.briefing_text import work_line

    return work_line(wc)


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
    """Never fails the session start: no repo, no Thrum here, or no engine -> exit 0, one helpful line
    (and what the identity file knows)."""
    named = False  # who is asking was settled: a failure after that is the engine's
    try:
        if not ctx.layout.initialized():
            raise CliError(f"Thrum is not set up in {ctx.layout.repo}: run `thrum init` there")
        ctx.me  # noqa: B018 -- a bad THRUM_NAME is its own line, not "engine unavailable"
        named = True
        r = ctx.call("prime")
    except CliError as exc:
        try:
            agent = ctx.identity_file
        except CliError:
            agent = None
        # The engine answered and refused (no identity here, say), or the caller's name is wrong:
        # that is the line, not "unavailable" (reliability probe, session 22, R10).
        up = ctx.connected or not named
        r = {"engine": None, "error": exc.message, "agent": agent, "engine_running": up}

    def human(r: dict) -> None:
        if r.get("engine") is None:
            msg = r["error"]
            line(
                msg
                if msg.startswith("Thrum is not")
                else f"Thrum: {msg}"
                if r.get("engine_running")
                else f"Thrum engine unavailable: {msg} (start it: `thrum daemon start`)"
            )
            if r.get("agent"):
                line(f"You are @{r['agent'].get('name')} ({r['agent'].get('role')})")
            return
        import sys

        from thrum_engine.briefing_text import render
        from thrum_engine.terminal_text import terminal_safe

        sys.stdout.write(terminal_safe(render(r)))

    return ctx.emit(r, human)


def doctor_integrations(ctx: Ctx) -> int:
    """Per runtime and agent: installed files parse, the prime entry exists, hooks resolve and fired,
    MCP starts. Exit 1 when anything needs fixing (each problem says how)."""
    import os
    import shlex

    from thrum_engine.integrations import doctor
    from thrum_engine.names import strip_at

    layout = ctx.layout
    rep = doctor.Report()
    agents: list[dict] = []
    fired: dict = {"_unknown": True}
    try:
        client = ctx.client(start=False)
        params = {"caller": ctx.me} if ctx.me else {}
        agents = client.call("agent.list", params, 10.0)["agents"]
        fired = client.call("hooks.status", params, 10.0)["agents"]
    except CliError:
        rep.add(
            "engine",
            layout.repo,
            "engine",
            False,
            "the engine is not running: hook firings unknown",
            "thrum daemon start",
        )
    except (*engine_failures(), KeyError, TypeError) as exc:  # an older engine without hooks.status, too
        reason = cli_error(exc).message if engine_failure(exc) else f"unexpected answer: {exc!r}"
        rep.add(
            "engine",
            layout.repo,
            "engine",
            False,
            f"cannot read hook firings: {reason}",
            "thrum daemon restart",
        )
    agent = ctx.agent_flag("--agent")
    want = strip_at(agent) if agent is not None else None
    if want and not any(a["name"] == want for a in agents):
        raise CliError(f"no agent named @{want}" + ("" if agents else " (or the engine is not running)"))
    places: dict[str, set[str]] = {}
    by_wt: dict[str, list[str]] = {}
    for ag in agents:
        if want and ag["name"] != want:
            continue
        wt = ag.get("worktree") or layout.repo
        places.setdefault(wt, set())  # an agent with no runtime is a place to look at too
        if ag.get("runtime") and ag["runtime"] in doctor.integrations.RUNTIMES:
            places[wt].add(ag["runtime"])
        by_wt.setdefault(wt, []).append(f"{ag['name']}:{ag.get('runtime') or ''}")
    if not want:
        places.setdefault(layout.worktree, set())
    for wt in list(places):
        if os.path.isdir(wt):
            places[wt] |= set(doctor.installed_runtimes(wt))
    for wt, runtimes in sorted(places.items()):
        for rt in sorted(runtimes):
            doctor.check_worktree(rep, rt, wt, by_wt.get(wt, []), fired)
        # Walk, session 21: a worktree whose agent has no runtime (and no file of one) was not
        # mentioned at all; only the checkout doctor ran in was. The main checkout is where the
        # operator and the user register without a runtime, so it is named only when nothing
        # anywhere is wired (walk, runtimes 4: it made every run fail).
        here = wt in by_wt and wt != layout.repo
        if not runtimes and os.path.isdir(wt) and (here or not any(places.values())):
            rep.add(
                "-",
                wt,
                "installed",
                False,
                "no runtime is wired here",
                f"cd {shlex.quote(wt)} && thrum init --runtime claude (or codex, gemini, opencode, cursor, all)",
            )
    doctor.check_mcp_server(rep, layout.worktree)
    problems = rep.problems
    r = {"ok": not problems, "checks": rep.checks, "problems": len(problems), "notes": len(rep.notes)}

    def human(r: dict) -> None:
        for c in r["checks"]:
            mark = "✓" if c["ok"] else "!" if c["note"] else "✗"
            who = f" @{c['agent']}" if c["agent"] else ""
            head = f"{c['runtime']}{who} {c['check']}"
            if c["runtime"] == "-" or c["check"].startswith(c["runtime"]):  # of no one runtime: "mcp server"
                head = c["check"]
            line(f"{mark} {head}: {c['detail']}  [{c['worktree']}]")
            if c["fix"]:
                line(f"    fix: {c['fix']}")
        notes = f" {r['notes']} note(s) (!): steps only you can take, shown with each." if r["notes"] else ""
        line(("All integrations look right." if r["ok"] else f"{r['problems']} problem(s).") + notes)

    ctx.emit(r, human)
    return 0 if r["ok"] else 1


def config_show(ctx: Ctx) -> int:
    from thrum_engine.settings import load_settings

    s = load_settings(ctx.layout.config_file)  # a ThrumError (bad JSON, a bad value) is mapped by `call.run`
    r = {"config": s.model_dump(mode="json"), "config_file": ctx.layout.config_file}
    # upstream's key, which its scripts read at the top (`.runtime.primary`): our runtimes.default
    r["runtime"] = r["config"]["runtime"] = {"primary": s.runtimes.default}

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


def single_agent_mode(ctx: Ctx) -> int:
    """Upstream's switch, stored where upstream keeps it (`daemon.single_agent_mode` in config.json);
    the engine follows the file live, so the next briefing already reflects it."""
    import json

    value = ctx.args.get("value")
    path = ctx.layout.config_file
    if not ctx.layout.initialized():
        raise CliError(f"Thrum is not set up in {ctx.layout.repo}: run `thrum init` there")
    if value is not None:
        word = value.strip().lower()
        if word not in ("true", "false", "on", "off", "1", "0", "yes", "no"):
            raise CliError(f"invalid value {value!r}: use true or false")
        from thrum_engine.settings import update_config_file

        try:
            update_config_file(path, {"daemon": {"single_agent_mode": word in ("true", "on", "1", "yes")}})
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot update {path}: {exc}") from None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    on = bool(((data.get("daemon") or {}) if isinstance(data, dict) else {}).get("single_agent_mode"))
    return ctx.emit(
        {"single_agent_mode": on},
        lambda r: line(
            f"✓ Single-agent mode set to {str(on).lower()}"
            if value is not None
            else f"Single-agent mode: {str(on).lower()}"
        ),
    )

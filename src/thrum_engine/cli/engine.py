"""daemon start|stop|restart|status|logs, doctor [rebuild]."""

from __future__ import annotations

import os
import sys
import time

from thrum_engine.cli.call import CliError, Ctx
from thrum_engine.cli.output import line
from thrum_engine.daemon import control
from thrum_engine.durations import human_age


def start(ctx: Ctx) -> int:
    try:
        pid, started = control.start(ctx.layout, local=ctx.args["local"])
    except control.StartFailed as exc:
        raise CliError(str(exc)) from None
    local = control.local_session(ctx.layout)
    r = {"running": True, "pid": pid, "started": started, "repo_path": ctx.layout.repo, "local_only": local}
    if ctx.args["local"] and not local:  # it was running, syncing: --local did not apply to it
        ctx.hint("! it was started without --local: `thrum daemon restart --local` makes it local-only")
    elif local and not ctx.args["local"]:
        ctx.hint("! local-only: the last engine was started with --local and not stopped since")
    return ctx.emit(
        r, lambda r: line(f"✓ Engine {'started' if r['started'] else 'already running'} (pid {r['pid']})")
    )


def _stop(ctx: Ctx) -> int | None:
    try:
        return control.stop(ctx.layout)
    except (control.StartFailed, OSError) as exc:
        raise CliError(str(exc)) from None


def stop(ctx: Ctx) -> int:
    pid = _stop(ctx)
    r = {"stopped": pid is not None, "pid": pid}
    return ctx.emit(
        r, lambda r: line(f"✓ Engine stopped (pid {r['pid']})" if r["stopped"] else "Engine was not running.")
    )


def restart(ctx: Ctx) -> int:
    _check_settings(ctx)  # before the stop: a config the new engine would refuse keeps the old one
    local = ctx.args["local"] or control.local_session(ctx.layout)  # a restart keeps the mode
    old = _stop(ctx)
    try:
        pid, _ = control.start(ctx.layout, local=local)
    except control.StartFailed as exc:
        raise CliError(str(exc)) from None
    return ctx.emit(
        {"running": True, "pid": pid, "previous_pid": old},
        lambda r: line(f"✓ Engine restarted (pid {r['pid']})"),
    )


def _check_settings(ctx: Ctx) -> None:
    """The settings the engine about to start would read (its config file, this environment), refused
    here with the engine's own error. pydantic's import (~100 ms) only on this rare command."""
    from thrum_engine.errors import ThrumError
    from thrum_engine.settings import load_settings

    try:
        load_settings(ctx.layout.config_file, local=ctx.args.get("local") or None)
    except ThrumError as exc:
        raise CliError(f"{exc.message} (the running engine was left running; fix it, then restart)") from None


def status(ctx: Ctx) -> int:
    from thrum_engine.rpc.client import EngineUnavailable, ForeignServer, RpcError, connect_engine

    try:
        client = connect_engine(ctx.layout, 5.0)
    except ForeignServer as exc:
        raise CliError(str(exc)) from None
    if client is None:
        pid = control.engine_pid(ctx.layout)
        if pid is None and not control.lock_held(ctx.layout):
            try:
                control.cleanup_stale(ctx.layout)
            except control.StartFailed as exc:
                raise CliError(str(exc)) from None
            r = {
                "running": False,
                "pid": None,
                "repo_path": ctx.layout.repo,
                "uptime": None,
                "version": None,
                "host": None,
                "sync": None,
                "sync_status": None,
            }
            ctx.emit(r, lambda r: line("Engine is not running."))
            return 1
        who = f"running (pid {pid})" if pid else "running"
        raise CliError(
            f"the engine is {who} but not answering on its socket {ctx.layout.socket_path}: "
            "`thrum daemon start` repairs a lost socket, `thrum daemon stop` stops it"
        )
    try:
        info = client.call("engine.info", {}, 10.0)
    except TimeoutError:
        raise CliError(
            f"the engine (pid {client.peer_pid}) did not answer within 10s: it is busy or stuck;"
            " `thrum daemon stop` stops it"
        ) from None
    except (EngineUnavailable, RpcError) as exc:
        raise CliError(f"{exc}: `thrum daemon stop` stops it") from None
    finally:
        client.close()
    keys = ("running", "pid", "repo_path", "uptime", "version", "host", "sync", "sync_status")
    r = {k: info.get(k) for k in keys}
    bad = (info.get("settings") or {}).get("error")
    if bad:  # config.json was edited into something unusable: the engine kept its last good settings
        r["settings_error"] = bad
    pending = (info.get("settings") or {}).get("restart_needed") or []
    if pending:  # changed in config.json, but only a start takes them up
        r["restart_needed"] = pending
        ctx.hint(f"! {', '.join(pending)} changed: takes effect after `thrum daemon restart`")
    return ctx.emit(
        r,
        lambda r: (
            line(
                f"✓ Engine running: pid {r['pid']}, {r['host']}, up {human_age(r['uptime'])},"
                f" v{r['version']}, sync {r['sync']}"
            ),
            bad and line(f"! settings: {bad}"),
        ),
    )


def logs(ctx: Ctx) -> int:
    path = ctx.layout.log_path
    n = ctx.whole("--lines", low=0, high=1_000_000)
    n = 50 if n is None else n
    since = None
    if ctx.args.get("since"):
        since = time.time() - abs(ctx.seconds("--since") or 0.0)
    if not os.path.exists(path):
        raise CliError(f"no engine log yet at {path}")
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    if since is not None:
        cutoff = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
        lines = [ln for ln in lines if ln[:19] >= cutoff]
    lines = lines[-n:] if n > 0 else []
    if ctx.json:
        return ctx.emit({"path": path, "lines": lines}, None)
    for ln in lines:
        line(ln)
    if ctx.args["follow"]:
        with open(path, encoding="utf-8", errors="replace") as fh:
            fh.seek(0, os.SEEK_END)
            while True:
                chunk = fh.readline()
                if chunk:
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
                else:
                    time.sleep(0.25)
    return 0


def doctor(ctx: Ctx) -> int:
    r = ctx.call("doctor.check")

    def human(r: dict) -> None:
        j, p = r["journal"], r["projection"]
        line(f"journal: {j['events']} events in {len(j['shards'])} shards")
        line(
            f"projection: {p['applied_events']} applied, {p['agents']} agents, {p.get('messages', '?')} messages"
            f" (schema v{r['schema_version']})"
        )
        rec = r.get("projection_recovered")
        if rec:
            line(
                f"! the projection was unusable ({rec['reason']}) at {rec['at']}: moved to {rec['moved_to']}"
                f" and rebuilt from {rec['events']} journal events ({rec['local_tables']})"
            )
        for t in r["torn_tails_at_start"]:
            line(f"! torn tail in {t['shard']} set aside: {t['saved_to']}")
        for rej in r.get("rejected", []):
            line(
                f"! journal line {rej['shard']}:{rej['offset']} set aside ({rej['reason']}): {rej['saved_to']}"
            )
        if r["quarantined"]:
            line(f"! {len(r['quarantined'])} quarantined file(s) in var/quarantine")
        for note in r.get("notes", ()):
            line(f"! {note}")
        for prob in r["problems"]:
            line(f"✗ {prob}")
        if r["ok"]:
            line("✓ journal and projection agree")
        elif not r.get("rebuild_safe", True):
            line("Do not rebuild yet: the journal holds fewer events than the projection (see above).")

    if not r["ok"] and r.get("rebuild_safe", True):
        ctx.hint("Run `thrum doctor rebuild` to rebuild the projection.")
    ctx.emit(r, human)
    return 0 if r["ok"] else 1


def rebuild(ctx: Ctx) -> int:
    r = ctx.call("doctor.rebuild", {"force": bool(ctx.args.get("force"))}, timeout=None)
    return ctx.emit(
        r,
        lambda r: line(
            f"✓ Rebuilt the projection from {r['events']} events in {r['seconds']}s"
            f" ({r['events_per_second']} events/s); "
            + ("identical to before" if r["identical"] else "it differed before")
        ),
    )

"""version, init, quickstart: creating Thrum's state in a repo and joining it."""

from __future__ import annotations

import json
import os

from thrum_engine import git as gitcmd
from thrum_engine.cli.call import CliError, Ctx, read_text
from thrum_engine.cli.output import line
from thrum_engine.files import private_dir, write_private
from thrum_engine.layout import EXCLUDED, STATE_DIR, SYNC_BRANCH, Layout, exclude_thrum_state
from thrum_engine.names import agent_name_problem, name_problem

DEFAULT_PREAMBLE = """You are @{name} ({role}) on a team of agents coordinated through Thrum.
- Read messages: `thrum inbox` (marks them read; `--unread` only peeks); wait for one: `thrum wait --timeout 5m`
- Send: `thrum send "..." --to @name` (or @role, @everyone); reply: `thrum reply MSG_ID "..."`
- Say what you are doing: `thrum session set-intent "..."`; who is around: `thrum team`
"""


def git(cwd: str, *args: str, check: bool = True, stdin: str | None = None) -> str:
    try:
        return gitcmd.run(cwd, *args, check=check, stdin=stdin).strip()
    except gitcmd.GitFailed as exc:
        raise CliError(exc.message) from None


def plan_init(layout: Layout, stealth: bool) -> list[tuple[str, str]]:
    """What init would do, as (step, detail); empty when everything is in place."""
    steps = []
    if layout.worktree != layout.repo:
        redirect = os.path.join(layout.worktree, STATE_DIR, "redirect")
        if not os.path.exists(redirect):
            steps.append(("redirect", redirect))
    for d in (layout.state, os.path.join(layout.state, "identities"), layout.var, layout.context_dir):
        if not os.path.isdir(d):
            steps.append(("mkdir", d))
    if not os.path.exists(layout.config_file):
        steps.append(("config", layout.config_file))
    if git(layout.repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{SYNC_BRANCH}", check=False) == "":
        steps.append(("branch", SYNC_BRANCH))
    if not os.path.isdir(layout.sync_worktree):
        steps.append(("worktree", layout.sync_worktree))
    ignore_file = os.path.join(layout.git_dir, "info", "exclude")
    try:
        with open(ignore_file, encoding="utf-8") as fh:
            present = set(EXCLUDED) <= set(fh.read().split())
    except OSError:
        present = False
    if not present:
        steps.append(("ignore", ignore_file))
    return steps


def apply_init(layout: Layout, steps: list[tuple[str, str]], config: dict) -> None:
    for step, detail in steps:
        if step == "mkdir":
            private_dir(detail)
        elif step == "redirect":
            write_private(detail, os.path.join(layout.repo, STATE_DIR) + "\n")
        elif step == "config":
            write_private(detail, json.dumps(config, indent=2, sort_keys=True) + "\n")
        elif step == "branch":
            tree = git(layout.repo, "mktree", stdin="")
            commit = git(layout.repo, "commit-tree", tree, "-m", "thrum: journal branch")
            git(layout.repo, "update-ref", f"refs/heads/{SYNC_BRANCH}", commit)
        elif step == "worktree":
            os.makedirs(os.path.dirname(detail), exist_ok=True)
            git(layout.repo, "worktree", "add", "--quiet", detail, SYNC_BRANCH)
            os.makedirs(os.path.join(detail, "journal"), exist_ok=True)
        elif step == "ignore":
            exclude_thrum_state(layout.repo)


def ensure_init(
    ctx: Ctx, *, stealth: bool = False, dry_run: bool = False, config: dict | None = None
) -> list:
    layout = ctx.layout
    steps = plan_init(layout, stealth)
    main_layout = Layout(layout.repo)
    if layout.worktree != layout.repo:
        # A linked worktree shares the main checkout's state: make sure that exists too.
        steps = plan_init(main_layout, stealth) + [s for s in steps if s[0] == "redirect"]
    if not dry_run:
        apply_init(
            main_layout if layout.worktree != layout.repo else layout,
            [s for s in steps if s[0] != "redirect"],
            config or {},
        )
        apply_init(layout, [s for s in steps if s[0] == "redirect"], {})
    return steps


def init(ctx: Ctx) -> int:
    a = ctx.args
    config: dict = {}
    if a.get("worktrees_root"):
        config["worktrees"] = {"base_path": os.path.abspath(os.path.expanduser(a["worktrees_root"]))}
    layout = ctx.layout
    if a["force"] and os.path.exists(layout.config_file) and config and not a["dry_run"]:
        os.remove(layout.config_file)
    steps = ensure_init(ctx, stealth=a["stealth"], dry_run=a["dry_run"], config=config)
    result: dict = {
        "repo": layout.repo,
        "dry_run": a["dry_run"],
        "steps": [{"step": s, "path": d} for s, d in steps],
    }
    if not a["dry_run"] and not a["no_daemon"]:
        from thrum_engine.daemon.control import StartFailed, start

        try:
            pid, _ = start(Layout(layout.repo, layout.worktree))
        except StartFailed as exc:
            raise CliError(str(exc)) from None
        result["daemon_pid"] = pid
    if a.get("name") and not a["dry_run"]:
        result["agent"] = _register(
            ctx,
            a["name"],
            a.get("role") or "agent",
            a.get("module") or "",
            "",
            "",
            "",
            force=a["force"],
            record_pid=True,
        )

    def human(r: dict) -> None:
        verb = "Would" if r["dry_run"] else "✓"
        if not r["steps"]:
            line(f"Thrum is already initialized in {r['repo']}")
        for s in r["steps"]:
            line(f"{verb} {s['step']}: {s['path']}")
        if not r["dry_run"]:
            line(f"✓ Thrum ready in {r['repo']}")

    return ctx.emit(result, human)


def _register(
    ctx: Ctx,
    name: str,
    role: str,
    module: str,
    display: str,
    runtime: str,
    intent: str,
    *,
    force: bool,
    record_pid: bool,
    start_session: bool = False,
) -> dict:
    problem = agent_name_problem(name, role) or name_problem(role, what="role")
    if problem:
        raise CliError(problem)
    params = {
        "name": name,
        "role": role,
        "module": module,
        "display": display,
        "runtime": runtime,
        "intent": intent,
        "force": force,
        "start_session": start_session,
    }
    from thrum_engine.rpc.client import EngineUnavailable, RpcError

    try:
        r = ctx.client().call("agent.register", params)  # no caller: we are becoming someone
    except RpcError as exc:
        raise CliError(exc.message) from None
    except EngineUnavailable as exc:
        raise CliError(f"lost the engine: {exc}") from None
    from thrum_engine import identity_file

    identity_file.write(
        ctx.layout.worktree,
        identity_file.identity_record(
            {**r["agent"], "intent": intent},
            r.get("session"),
            repo=ctx.layout.repo,
            agent_pid=os.getppid() if record_pid else None,
        ),
    )
    return r


def quickstart(ctx: Ctx) -> int:
    a = ctx.args
    name, role = a.get("name"), a.get("role")
    if not name or not role:
        raise CliError("quickstart needs --name NAME and --role ROLE (and usually --module M)")
    problem = (
        agent_name_problem(name, role)
        or name_problem(role, what="role")
        or (name_problem(a["module"], what="module") if a.get("module") else None)
    )
    if problem:
        raise CliError(problem)
    preamble_src = a.get("preamble_file")
    preamble = None
    if preamble_src:
        preamble = read_text(preamble_src, what="--preamble-file")
    steps = []
    if not a["no_init"]:
        steps = ensure_init(ctx)
    elif not ctx.layout.initialized():
        raise CliError("thrum is not initialized here and --no-init was given: run `thrum init`")
    r = _register(
        ctx,
        name,
        role,
        a.get("module") or "",
        a.get("display") or "",
        a.get("runtime") or "",
        a.get("intent") or "",
        force=a["force"],
        record_pid=not a["no_agent_pid"],
        start_session=True,
    )
    from thrum_engine.cli.context import paths

    _, ppath = paths(ctx.layout, name)
    if preamble is not None or not os.path.exists(ppath):
        write_private(
            ppath, preamble if preamble is not None else DEFAULT_PREAMBLE.format(name=name, role=role)
        )
    result = {
        "agent": r["agent"],
        "session": r["session"],
        "created": r["created"],
        "identity_file": ctx.layout.identity_path(name),
        "initialized": bool(steps),
    }

    def human(r: dict) -> None:
        ag = r["agent"]
        line(
            f"✓ {'Registered' if r['created'] else 'Welcome back'} @{ag['name']} ({ag['role']}"
            + (f"/{ag['module']}" if ag["module"] else "")
            + ")"
        )
        if r["session"]:
            line(f"✓ Session {r['session']['session_id']}")
        line(f"✓ Identity file {r['identity_file']}")

    return ctx.emit(result, human)

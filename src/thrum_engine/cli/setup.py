"""version, init, quickstart: creating Thrum's state in a repo and joining it."""

from __future__ import annotations

import json
import os

from thrum_engine import git as gitcmd
from thrum_engine.cli.call import CliError, Ctx, read_text
from thrum_engine.cli.output import line
from thrum_engine.files import private_dir, write_private
from thrum_engine.layout import EXCLUDED, STATE_DIR, SYNC_BRANCH, Layout, exclude_thrum_state
from thrum_engine.names import agent_name_problem, name_problem, runtime_name_problem

DEFAULT_PREAMBLE = """You are @{name} ({role}) on a team of agents coordinated through Thrum.
- Read messages: `thrum inbox` (marks them read; `--unread` only peeks); wait for one: `thrum wait --timeout 5m`
- Send: `thrum send "..." --to @name` (or @role, @everyone); reply: `thrum reply MSG_ID "..."`
- Say what you are doing: `thrum session set-intent "..."`; who is around: `thrum team`
"""


def role_preamble(ctx: Ctx, name: str, role: str, module: str = "") -> str:
    """An agent's preamble: its role template rendered (the short default when roles are skipped),
    naming the coordinator the team has (it said @coordinator, a name nobody had, whoever led)."""
    from thrum_engine.integrations import roles

    layout = ctx.layout
    try:
        mode = (read_config(Layout(layout.repo).config_file).get("roles") or {}).get("mode")
    except CliError:
        mode = None
    if mode == "skip":
        return DEFAULT_PREAMBLE.format(name=name, role=role)
    try:
        team = ctx.call("agent.list", {}, start=False)["agents"]
    except CliError:
        team = []  # no engine to ask: the role's address
    values = roles.RoleVars(
        name, role, module, layout.worktree, roles.coordinator_of(team, name, layout.repo), layout.repo
    )
    return roles.render(layout.repo, values)


def git(cwd: str, *args: str, check: bool = True, stdin: str | None = None) -> str:
    """Init's git: what it makes is the journal's branch and worktree, private as the journal is."""
    try:
        return gitcmd.run(cwd, *args, check=check, stdin=stdin, private=True).strip()
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
    # A copy's worktree is this repository's once relinked.
    gitcmd.relink(layout.sync_worktree, layout.git_dir)
    state = gitcmd.sync_worktree_state(layout.repo, layout.sync_worktree, SYNC_BRANCH, layout.git_dir)
    if state in ("missing", "no-branch"):
        steps.append(("worktree", layout.sync_worktree))
    elif state == "blocked":
        raise CliError(
            f"{layout.sync_worktree} holds files but is not this repository's journal worktree:"
            " move it aside, then run `thrum init` again (it is made from the a-sync branch)"
        )
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
            private_dir(os.path.dirname(detail))
            try:
                gitcmd.repair_sync_worktree(layout.repo, detail, SYNC_BRANCH, layout.git_dir)
            except gitcmd.GitFailed as exc:
                raise CliError(exc.message) from None
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


def _runtimes_flag(value: str | None) -> list[str]:
    """`--runtime R|all` (R may be a comma list) as known integration names."""
    from thrum_engine.integrations.entries import RUNTIMES

    if value is None:
        return []
    if value == "all":
        return list(RUNTIMES)
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:  # `--runtime ''`: a bad name, not "no runtime"
        raise CliError(str(runtime_name_problem("")))
    for n in names:
        problem = runtime_name_problem(n)
        if problem:
            raise CliError(problem)
        if n not in RUNTIMES:
            raise CliError(f"no integration for runtime {n!r}: one of {', '.join(RUNTIMES)}, or all")
    return names


def _user_level(runtimes: list[str]) -> tuple[list[str], list[str]]:
    """`--user --runtime all`: every runtime that has user-level wiring, and a note naming those it
    skips (a runtime named by hand without one is still refused: that is a request we cannot do)."""
    from thrum_engine.integrations import user_scope

    skipped = [r for r in runtimes if not user_scope.supported(r)]
    notes = (
        [
            f"--user skipped {', '.join(skipped)}: no user-level wiring; install them per worktree (without --user)"
        ]
        if skipped
        else []
    )
    return [r for r in runtimes if user_scope.supported(r)], notes


def read_config(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"{path} is not valid JSON ({exc}); fix it first") from None
    return data if isinstance(data, dict) else {}


def record_defaults(path: str, explicit: dict, defaults: dict) -> dict:
    """Write into config.json what init used: an explicit flag always, a default only where the
    file says nothing (so a re-run changes nothing). Returns the keys written, dotted."""
    data = read_config(path)
    written: dict = {}
    for dotted, value in [*((k, v) for k, v in defaults.items()), *explicit.items()]:
        keys = dotted.split(".")
        node = data
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        if (dotted in explicit or keys[-1] not in node) and node.get(keys[-1]) != value:
            node[keys[-1]] = value
            written[dotted] = value
    if written:
        write_private(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return written


def _ask(question: str, default: str, choices: tuple[str, ...] | None = None) -> str:
    import sys

    while True:
        sys.stdout.write(f"{question} [{default}]: ")
        sys.stdout.flush()
        answer = sys.stdin.readline()
        if not answer:
            return default
        answer = answer.strip() or default
        if choices is None or answer in choices:
            return answer
        line(f"  one of: {', '.join(choices)}")


def wizard(a: dict) -> dict:
    """The first-run questions on a terminal: only what no flag answered."""
    from thrum_engine.integrations.entries import RUNTIMES
    from thrum_engine.integrations.roles import ROLE_MODES

    line("Setting up Thrum in this repo (Enter takes the default; `--non-interactive` skips this).")
    if not a.get("name"):
        name = _ask("Your agent name in this checkout (none: you are the operator)", "none")
        if name != "none":
            a["name"] = name
            a["role"] = a.get("role") or _ask("Its role", "coordinator")
    if not a.get("worktrees_root"):
        root = _ask("Where agents' worktrees go", "~/.thrum/worktrees")
        if root != "~/.thrum/worktrees":
            a["worktrees_root"] = root
    if not a.get("runtime"):
        rt = _ask(
            "Runtime to wire up (" + ", ".join(RUNTIMES) + ", all, none)",
            "claude",
            (*RUNTIMES, "all", "none"),
        )
        a["runtime"] = None if rt == "none" else rt
    if not a.get("roles"):
        a["roles"] = _ask(
            "Role templates (enhanced: copy them here to edit; default; skip)", "default", ROLE_MODES
        )
    if not a.get("no_daemon"):
        a["no_daemon"] = _ask("Start the engine now? (y/n)", "y", ("y", "n", "yes", "no")).startswith("n")
    return a


def _copy_role_templates(layout: Layout, force: bool, dry_run: bool) -> list[str]:
    from thrum_engine.integrations import roles

    written = []
    d = roles.repo_dir(layout.repo)
    for role, text in roles.shipped_files().items():
        path = os.path.join(d, f"{role}.md")
        if os.path.exists(path) and not force:
            continue
        written.append(path)
        if not dry_run:
            write_private(path, text)
    return written


def install_runtimes(
    ctx: Ctx,
    runtimes: list[str],
    *,
    force: bool = False,
    dry_run: bool = False,
    stealth: bool | None = None,
    parts: tuple[str, ...] | None = None,
    agent: str | None = None,
    role: str | None = None,
    module: str = "",
    user: bool = False,
    notes: list[str] | None = None,
) -> dict:
    """The installer for this worktree, with the repo's recorded choices (stealth, roles); `user`:
    into the user's home instead (only when asked: `init --user`); `notes` go out with its own."""
    from thrum_engine import integrations

    layout = ctx.layout
    cfg = read_config(Layout(layout.repo).config_file)
    if stealth is None:
        stealth = bool((cfg.get("integrations") or {}).get("stealth"))
    req = integrations.Request(
        worktree=layout.worktree,
        repo=layout.repo,
        runtimes=runtimes,
        agent=agent,
        role=role,
        module=module,
        force=force,
        dry_run=dry_run,
        stealth=stealth,
        parts=parts or integrations.PARTS,
        roles_mode=str((cfg.get("roles") or {}).get("mode") or "default"),
        user=user,
        notes=list(notes or []),
    )
    try:
        return integrations.install(req)
    except integrations.InstallError as exc:
        raise CliError(exc.message) from None


def install_lines(r: dict) -> None:
    verb = "Would write" if r["dry_run"] else "✓ Wrote"
    for f in r["files"]:
        if f["action"] != "keep":
            line(f"{verb} {f['path']} ({f['action']}: {', '.join(f['parts'])})")
    kept = r.get("kept") or []
    for what in kept:
        line(
            f"! kept {what} as it is: it differs from what this thrum writes (`thrum init --force` rewrites it)"
        )
    if not any(f["action"] != "keep" for f in r["files"]):
        if kept:
            line(
                f"Nothing written for {', '.join(r['runtimes'])}: {len(kept)} changed Thrum file(s) or entries kept"
            )
        else:
            line(f"Runtime files for {', '.join(r['runtimes'])} are in place (nothing to change)")
    for n in r["notes"]:
        line(f"! {n}")
    if r.get("diff"):
        line(r["diff"].rstrip("\n"))


def init(ctx: Ctx) -> int:
    import sys

    from thrum_engine.integrations.roles import ROLE_MODES

    a = dict(ctx.args)
    layout = ctx.layout
    first_run = not os.path.exists(Layout(layout.repo).config_file)
    if (
        first_run
        and not a["non_interactive"]
        and not a["dry_run"]
        and not ctx.json
        and sys.stdin.isatty()
        and sys.stdout.isatty()
    ):
        a = wizard(a)
    if a.get("roles") and a["roles"] not in ROLE_MODES:
        raise CliError(f"--roles must be one of {', '.join(ROLE_MODES)}")
    runtimes = _runtimes_flag(a.get("runtime"))
    if a.get("user") and not runtimes and not a.get("skills"):
        raise CliError("--user installs runtime files into your home: name them with --runtime R")
    user_notes = []
    if a.get("user") and a.get("runtime") == "all":
        runtimes, user_notes = _user_level(runtimes)
    config: dict = {}
    if a.get("worktrees_root"):
        config["worktrees"] = {"base_path": os.path.abspath(os.path.expanduser(a["worktrees_root"]))}
    if runtimes and not a["dry_run"]:
        # A runtime file that cannot be merged into refuses the whole init before anything is made.
        install_runtimes(
            ctx,
            runtimes,
            force=a["force"],
            dry_run=True,
            stealth=a["stealth"] or None,
            user=bool(a.get("user")),
        )
    if a["force"] and os.path.exists(layout.config_file) and config and not a["dry_run"]:
        os.remove(layout.config_file)
    steps = ensure_init(ctx, stealth=a["stealth"], dry_run=a["dry_run"], config=config)
    result: dict = {
        "repo": layout.repo,
        "dry_run": a["dry_run"],
        "steps": [{"step": s, "path": d} for s, d in steps],
    }
    main_config = Layout(layout.repo).config_file
    explicit: dict = {}
    if a.get("worktrees_root"):
        explicit["worktrees.base_path"] = config["worktrees"]["base_path"]
    if len(runtimes) == 1:
        explicit["runtimes.default"] = explicit["runtime.primary"] = runtimes[0]
    if a.get("roles"):
        explicit["roles.mode"] = a["roles"]
    if a["stealth"]:
        explicit["integrations.stealth"] = True
    if not a["dry_run"]:
        current = read_config(main_config)
        default_runtime = (current.get("runtimes") or {}).get("default") or "claude"
        defaults = {
            "worktrees.base_path": os.path.expanduser("~/.thrum/worktrees"),
            "runtimes.default": default_runtime,
            "runtime.primary": (current.get("runtimes") or {}).get("default") or default_runtime,
        }
        result["config_recorded"] = record_defaults(main_config, explicit, defaults)
    if a.get("roles") == "enhanced":
        result["role_templates"] = _copy_role_templates(layout, a["force"], a["dry_run"])
    if not a["dry_run"] and not a["no_daemon"]:
        from thrum_engine.daemon.control import StartFailed, start

        try:
            pid, _ = start(Layout(layout.repo, layout.worktree))
        except StartFailed as exc:
            raise CliError(str(exc)) from None
        result["daemon_pid"] = pid
    if a.get("name") and not a["dry_run"] and a["no_daemon"] and not _engine_running(ctx):
        # --no-daemon starts no engine, and registering needs one: say how to register later.
        result["agent_deferred"] = (
            f"@{a['name']} is not registered yet (--no-daemon started no engine): run "
            f"`thrum quickstart --name {a['name']} --role {a.get('role') or 'agent'}` when you want it"
        )
    elif a.get("name") and not a["dry_run"]:
        result["agent"] = _register(
            ctx,
            a["name"],
            a.get("role") or "agent",
            a.get("module") or "",
            "",
            runtimes[0] if len(runtimes) == 1 else "",
            "",
            force=a["force"],
            record_pid=True,
        )
    parts = None
    if a.get("skills") and not runtimes:
        runtimes = [str((read_config(main_config).get("runtimes") or {}).get("default") or "claude")]
        parts = ("prime",)
    if runtimes:
        result["integrations"] = install_runtimes(
            ctx,
            runtimes,
            force=a["force"],
            dry_run=a["dry_run"],
            stealth=a["stealth"] or None,
            parts=parts,
            agent=a.get("name") or None,
            role=a.get("role") or None,
            module=a.get("module") or "",
            user=bool(a.get("user")),
            notes=user_notes,
        )

    def human(r: dict) -> None:
        verb = "Would" if r["dry_run"] else "✓"
        if not r["steps"] and not r.get("integrations"):
            line(f"Thrum is already initialized in {r['repo']}")
        for s in r["steps"]:
            line(f"{verb} {s['step']}: {s['path']}")
        for path in r.get("role_templates") or []:
            line(f"{verb} role template: {path}")
        if r.get("integrations"):
            install_lines(r["integrations"])
        if r.get("agent_deferred"):
            line(f"• {r['agent_deferred']}")
        if not r["dry_run"]:
            line(f"✓ Thrum ready in {r['repo']}")

    return ctx.emit(result, human)


def _engine_running(ctx: Ctx) -> bool:
    """Whether an engine already answers here (asking never starts one)."""
    try:
        ctx.client(start=False)
    except CliError:
        return False
    return True


def refuse_crowding(ctx: Ctx, name: str, *, force: bool) -> bool:
    """Refuse a second identity in this worktree that would leave an agent here unresolvable
    (identity_file.crowding_problem); returns whether `name` is picked by this caller's THRUM_NAME."""
    from thrum_engine import identity_file

    named_by_env = os.environ.get("THRUM_NAME") == name  # this caller's own commands pick it by name
    if not force:
        problem = identity_file.crowding_problem(ctx.layout.worktree, name, named_by_env=named_by_env)
        if problem:
            raise CliError(problem)
    return named_by_env


def known_runtime(ctx: Ctx, runtime: str) -> None:
    """`--runtime R` for an agent: the name of a preset (built in, or in a runtimes.json), else an
    error listing them. Checked before anything is written; the engine checks again."""
    from thrum_engine.tmux import runtimes

    runtimes.get(ctx.layout.repo, runtime)


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
    if runtime:
        known_runtime(ctx, runtime)
    from thrum_engine import identity_file

    named_by_env = refuse_crowding(ctx, name, force=force)  # before the engine registers anything
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
    r = ctx.call("agent.register", params, as_caller=False)  # no caller: we are becoming someone
    identity_file.write(
        ctx.layout.worktree,
        identity_file.identity_record(
            r["agent"],  # its intent is the engine's: the one given, or the one kept
            r.get("session"),
            repo=ctx.layout.repo,
            agent_pid=os.getppid() if record_pid else None,
            named_by_env=named_by_env,
        ),
    )
    return r


def from_env(ctx: Ctx, *fields: str) -> None:
    """CLI.md's THRUM_NAME / THRUM_ROLE / THRUM_MODULE fill what the flags left out (a flag wins),
    so a pane or script that exports its identity needs no flags to register it."""
    for f in fields:
        if not ctx.args.get(f):
            ctx.args[f] = os.environ.get("THRUM_" + f.upper()) or ctx.args.get(f)


def quickstart(ctx: Ctx) -> int:
    from_env(ctx, "name", "role", "module")
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
    if a.get("runtime") is not None:  # before init writes anything
        known_runtime(ctx, a["runtime"])
    preamble_src = a.get("preamble_file")
    preamble = None
    if preamble_src:
        preamble = read_text(preamble_src, what="--preamble-file")
    refuse_crowding(ctx, name, force=a["force"])  # before init or anything else is written
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
            ppath,
            preamble if preamble is not None else role_preamble(ctx, name, role, a.get("module") or ""),
        )
    result = {
        "agent": r["agent"],
        "session": r["session"],
        "created": r["created"],
        "identity_file": ctx.layout.identity_path(name),
        "initialized": bool(steps),
    }
    from thrum_engine.integrations.entries import RUNTIMES

    if a.get("runtime") in RUNTIMES:
        result["integrations"] = install_runtimes(
            ctx, [a["runtime"]], force=a["force"], agent=name, role=role, module=a.get("module") or ""
        )

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
        if r.get("integrations"):
            install_lines(r["integrations"])

    return ctx.emit(result, human)


def setup_claude_md(ctx: Ctx) -> int:
    """Print Thrum's CLAUDE.md block; `--apply` puts it into CLAUDE.md between its markers."""
    from thrum_engine import integrations

    ident = ctx.identity_file or {}
    if not ctx.args["apply"]:
        req = integrations.Request(
            worktree=ctx.layout.worktree,
            repo=ctx.layout.repo,
            runtimes=["claude"],
            agent=ident.get("name") or ctx.me,
            role=ident.get("role"),
            module=ident.get("module") or "",
        )
        block = integrations.instruction_block(req)
        return ctx.emit({"block": block, "applied": False}, lambda r: line(r["block"].rstrip("\n")))
    r = install_runtimes(
        ctx,
        ["claude"],
        force=ctx.args["force"],
        parts=("instructions",),
        agent=ident.get("name") or ctx.me,
        role=ident.get("role"),
        module=ident.get("module") or "",
    )
    return ctx.emit({**r, "applied": True}, install_lines)

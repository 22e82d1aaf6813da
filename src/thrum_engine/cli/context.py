"""`thrum context`: an agent's saved context and preamble, plain files under `.thrum/context/`."""

from __future__ import annotations

import os
import sys

from thrum_engine.cli.call import CliError, Ctx, read_text, stdin_text
from thrum_engine.cli.output import line
from thrum_engine.cli.setup import role_preamble
from thrum_engine.files import write_private
from thrum_engine.layout import Layout
from thrum_engine.names import identity_name_problem, strip_at


def _me(ctx: Ctx) -> str:
    return ctx.require_me()


def _mine(ctx: Ctx) -> str:
    """The caller's name, for changing its context: `context` works without the engine, so the
    engine's rule (an identity counts only in its own worktree) is applied here, from the identity
    file. Without it `THRUM_NAME=bob thrum context save` rewrote bob's context from any seat. The
    main checkout is the operator's and may change anyone's."""
    name = ctx.require_me()
    layout = ctx.layout
    path = layout.identity_path(name)
    if layout.worktree != layout.repo and not os.path.exists(path):
        raise CliError(
            f"@{name} has no identity in this worktree ({path} is missing): "
            "an agent changes only its own context; run `thrum quickstart` here first"
        )
    return name


def paths(layout: Layout, name: str) -> tuple[str, str]:
    """An agent's context and preamble files; the name is checked first, so it is never a path."""
    problem = identity_name_problem(name)
    if problem:
        raise CliError(problem)
    d = layout.context_dir
    return os.path.join(d, f"{name}.md"), os.path.join(d, f"{name}.preamble.md")


def _paths(ctx: Ctx, name: str) -> tuple[str, str]:
    return paths(ctx.layout, name)


def _read(path: str) -> str | None:
    return read_text(path, what="context file") if os.path.exists(path) else None


def _synced(ctx: Ctx, name: str) -> str | None:
    """`name`'s context as `context sync` put it on the journal branch (another clone's, or this
    one's from before), read from the branch itself: a merge stages it without writing the file
    (sync walk 3: `context show --agent alice` said none on every other clone)."""
    from thrum_engine import git as gitcmd

    sync_wt, rel = _shared(ctx, name)
    try:
        done = gitcmd.call(sync_wt, "show", f"HEAD:{rel}", private=True)
    except (gitcmd.GitFailed, OSError):
        return None  # no journal worktree (yet)
    return done.out if done.code == 0 else None


def _require_agent(ctx: Ctx, name: str) -> None:
    """An `--agent` name nobody here holds is an error, as `inbox --from` makes it: "(none saved)"
    for a typo read as "that agent saved nothing"."""
    from thrum_engine.cli.call import identity_home

    if identity_home(ctx.layout, name) is None:
        raise CliError(
            f"--agent @{name}: no agent by that name in this repo's worktrees, and no context synced for one"
        )


def _input(ctx: Ctx) -> str:
    src = ctx.args.get("file")
    if src:
        return read_text(src, what="--file")
    if sys.stdin.isatty():
        raise CliError("pipe the context on stdin or pass --file F")
    return stdin_text()


def _write(path: str, text: str) -> None:
    try:
        write_private(path, text)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


def save(ctx: Ctx) -> int:
    name = _mine(ctx)
    path, _ = _paths(ctx, name)
    text = _input(ctx)
    _write(path, text)
    return ctx.emit(
        {"agent_id": name, "path": path, "bytes": len(text.encode())},
        lambda r: line(f"✓ Context saved ({r['bytes']} bytes): {r['path']}"),
    )


def show(ctx: Ctx) -> int:
    if ctx.args["session"] and ctx.args["project"]:
        raise CliError("--session and --project are mutually exclusive")
    if ctx.args["project"]:
        return _project(ctx)
    agent = ctx.agent_flag("--agent")
    name = strip_at(agent) if agent is not None else _me(ctx)
    path, ppath = _paths(ctx, name)
    context = _read(path)
    source = "local" if context is not None else None
    if context is None:
        context = _synced(ctx, name)
        source = "synced" if context is not None else None
    if context is None and name != ctx.me and not os.path.exists(ppath):
        _require_agent(ctx, name)
    preamble = None if ctx.args["no_preamble"] else _read(ppath)
    r = {"agent_id": name, "context": context, "preamble": preamble, "source": source}
    if ctx.args["session"]:
        return ctx.emit(r, lambda r: _session_text(r, path))

    def human(r: dict) -> None:
        if ctx.args["raw"]:
            sys.stdout.write((r["preamble"] or "") + (r["context"] or ""))
            return
        if r["preamble"]:
            line("## Preamble\n" + r["preamble"].rstrip())
        title = "## Context (synced from another clone)" if r["source"] == "synced" else "## Context"
        line(title + "\n" + (r["context"].rstrip() if r["context"] else "(none saved)"))

    return ctx.emit(r, human)


def clear(ctx: Ctx) -> int:
    """Clear my saved context here and, when `context sync` shared it, on the journal branch too
    (a commit of its removal, so the next sync shares that the way it shared the save): left on
    the branch, `show` brought it back as "synced from another clone"."""
    name = _mine(ctx)
    path, _ = _paths(ctx, name)
    local = os.path.exists(path)
    if local:
        os.remove(path)
    synced = _unshare(ctx, name)
    r = {"agent_id": name, "cleared": local or synced, "local": local, "synced": synced}

    def human(r: dict) -> None:
        if not r["cleared"]:
            line("No saved context.")
        elif r["synced"]:
            line("✓ Context cleared, here and on a-sync — the next sync shares the removal")
        else:
            line("✓ Context cleared")

    return ctx.emit(r, human)


def _shared(ctx: Ctx, name: str) -> tuple[str, str]:
    """The journal worktree and, inside it, the path of `name`'s shared context."""
    return ctx.layout.sync_worktree, os.path.join("context", f"{name}.md")


def _unshare(ctx: Ctx, name: str) -> bool:
    """Commit the removal of `name`'s context from the journal branch; False when it was not there."""
    sync_wt, rel = _shared(ctx, name)
    if _synced(ctx, name) is None:
        return False
    from thrum_engine.cli.setup import git

    git(sync_wt, "rm", "-q", "--cached", "--", rel)
    try:
        os.remove(os.path.join(sync_wt, rel))
    except FileNotFoundError:
        pass
    git(sync_wt, "commit", "--no-verify", "-q", "-m", f"context: clear {name}", "--", rel)
    return True


def preamble(ctx: Ctx) -> int:
    name = _mine(ctx) if ctx.args["init"] or ctx.args.get("file") else _me(ctx)
    _, ppath = _paths(ctx, name)
    if ctx.args["init"] and ctx.args.get("file"):
        raise CliError("--init and --file are mutually exclusive")
    if ctx.args["init"]:
        ident = ctx.identity_file or {}
        _write(ppath, role_preamble(ctx, name, ident.get("role", "agent"), ident.get("module") or ""))
    elif ctx.args.get("file"):
        _write(ppath, _input(ctx))
    text = _read(ppath)
    return ctx.emit(
        {"agent_id": name, "path": ppath, "preamble": text},
        lambda r: sys.stdout.write(r["preamble"] or "(no preamble)\n"),
    )


PROJECT_STATE = "project_state.md"


def _session_text(r: dict, path: str) -> None:
    """Upstream's `context show --session` (what its load-context skill prints): the session context
    only, under `# Context for NAME`, or `No context saved for NAME`."""
    if not r["context"] and not r["preamble"]:
        line(f"No context saved for {r['agent_id']}")
        return
    head = f"# Context for {r['agent_id']}"
    if r["context"]:
        import time

        updated = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(path)))
        head += f" ({len(r['context'].encode())} bytes, updated {updated})"
    sys.stdout.write(head + "\n\n")
    if r["preamble"]:
        sys.stdout.write(r["preamble"].rstrip("\n") + "\n" + ("\n" if r["context"] else ""))
    if r["context"]:
        sys.stdout.write(r["context"])


def _project(ctx: Ctx) -> int:
    path = os.path.join(ctx.layout.context_dir, PROJECT_STATE)
    text = _read(path)
    return ctx.emit(
        {"path": path, "project_state": text},
        lambda r: sys.stdout.write(
            text if text else f"No project state found (.thrum/context/{PROJECT_STATE})\n"
        ),
    )


def sync(ctx: Ctx) -> int:
    """Put my saved context on the a-sync branch, where every clone's sync picks it up (upstream's
    `context sync`). Only that one file is committed (`commit -- <path>`), so the journal files the
    engine is writing beside it stay the sync's business."""
    agent = ctx.agent_flag("--agent")
    name = _mine(ctx) if agent is None else strip_at(agent)
    if agent is not None and name != ctx.me and ctx.layout.worktree != ctx.layout.repo:
        raise CliError(f"only the operator syncs another agent's context (@{name} is not you)")
    path, _ = _paths(ctx, name)
    text = _read(path)
    sync_wt, rel = _shared(ctx, name)
    if not os.path.isdir(sync_wt):
        raise CliError(f"no sync worktree at {sync_wt}: run `thrum init` first")
    if text is None:
        return ctx.emit(
            {"agent_id": name, "synced": False, "path": None},
            lambda r: line(f"No context file for {name}, nothing to sync."),
        )
    from thrum_engine.cli.setup import git

    dest = os.path.join(sync_wt, rel)
    try:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w", encoding="utf-8") as fh:  # shared by design: it travels with the branch
            fh.write(text)
    except OSError as exc:
        raise CliError(f"cannot write {dest}: {exc.strerror or exc}") from None
    git(sync_wt, "add", "--", rel)
    changed = bool(git(sync_wt, "status", "--porcelain", "--", rel))
    if changed:
        git(sync_wt, "commit", "--no-verify", "-q", "-m", f"context: sync {name}", "--", rel)
    return ctx.emit(
        {"agent_id": name, "synced": True, "changed": changed, "path": dest},
        lambda r: line(
            f"✓ Context synced for {name} on a-sync"
            + ("" if changed else " (unchanged)")
            + " — the next sync shares it"
        ),
    )

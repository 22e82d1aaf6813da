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
    name = strip_at(ctx.args["agent"]) if ctx.args.get("agent") else _me(ctx)
    path, ppath = _paths(ctx, name)
    context = _read(path)
    preamble = None if ctx.args["no_preamble"] else _read(ppath)
    r = {"agent_id": name, "context": context, "preamble": preamble}

    def human(r: dict) -> None:
        if ctx.args["raw"]:
            sys.stdout.write((r["preamble"] or "") + (r["context"] or ""))
            return
        if r["preamble"]:
            line("## Preamble\n" + r["preamble"].rstrip())
        line("## Context\n" + (r["context"].rstrip() if r["context"] else "(none saved)"))

    return ctx.emit(r, human)


def clear(ctx: Ctx) -> int:
    name = _mine(ctx)
    path, _ = _paths(ctx, name)
    existed = os.path.exists(path)
    if existed:
        os.remove(path)
    return ctx.emit(
        {"agent_id": name, "cleared": existed},
        lambda r: line("✓ Context cleared" if r["cleared"] else "No saved context."),
    )


def preamble(ctx: Ctx) -> int:
    name = _mine(ctx) if ctx.args["init"] or ctx.args.get("file") else _me(ctx)
    _, ppath = _paths(ctx, name)
    if ctx.args["init"] and ctx.args.get("file"):
        raise CliError("--init and --file are mutually exclusive")
    if ctx.args["init"]:
        ident = ctx.identity_file or {}
        _write(ppath, role_preamble(ctx.layout, name, ident.get("role", "agent"), ident.get("module") or ""))
    elif ctx.args.get("file"):
        _write(ppath, _input(ctx))
    text = _read(ppath)
    return ctx.emit(
        {"agent_id": name, "path": ppath, "preamble": text},
        lambda r: sys.stdout.write(r["preamble"] or "(no preamble)\n"),
    )

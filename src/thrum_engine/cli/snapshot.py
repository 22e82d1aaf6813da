"""`tmux snapshot save|restore|check`: the conversation state an agent keeps across a restart.

Upstream's restart skill runs `thrum tmux snapshot save` and then asks for `tmux restart`; its
auto-restart hook checks with `snapshot check` (exit 0: there is one). The next briefing (`prime`, or
the session-start hook) hands the snapshot to the new session once and removes it.
"""

from __future__ import annotations

import os

from thrum_engine import snapshots
from thrum_engine.cli.call import CliError, Ctx
from thrum_engine.cli.output import line
from thrum_engine.daemon.lock import pid_alive


def _mine(ctx: Ctx) -> tuple[str, str]:
    """Me and my worktree: a snapshot is written only where my identity lives."""
    name = ctx.require_me()
    layout = ctx.layout
    if layout.worktree != layout.repo and not os.path.exists(layout.identity_path(name)):
        raise CliError(
            f"@{name} has no identity in this worktree: run the snapshot command in your own worktree"
        )
    return name, layout.worktree


def _pane_of(ctx: Ctx, agent: str) -> tuple[str | None, list[str] | None]:
    """The agent's tmux session and its last lines, when it has one."""
    sessions = ctx.call("tmux.status").get("sessions", [])
    mine = [s["name"] for s in sessions if s.get("agent") == agent]
    if not mine:
        return None, None
    r = ctx.call("tmux.capture", {"session": mine[0], "lines": snapshots.MAX_PANE_LINES})
    return mine[0], list(r.get("lines") or [])


def build(ctx: Ctx, agent: str, worktree: str, reason: str, *, require_session: bool) -> str:
    from thrum_engine.cli.context import paths
    from thrum_engine.layout import current_branch

    if agent == ctx.me:
        ident = dict(ctx.identity_file or {})
    else:
        from thrum_engine.cli.call import read_identity_file

        ident = read_identity_file(ctx.layout.identity_path(agent, worktree)) or {}
    session, pane = _pane_of(ctx, agent)
    if require_session and session is None and not pid_alive(ident.get("agent_pid")):
        raise CliError(
            f"@{agent} has no running session to snapshot (no tmux session, no live agent process):"
            " start one with `thrum tmux launch` or `thrum quickstart`"
        )
    if session:
        ident["tmux_session"] = session
    ctx_path, _ = paths(ctx.layout, agent)
    try:
        with open(ctx_path, encoding="utf-8", errors="replace") as fh:
            saved = fh.read()
    except OSError:
        saved = None
    return snapshots.render(
        agent, reason=reason, identity=ident, pane=pane, context=saved, branch=current_branch(worktree) or ""
    )

    return True


def save(ctx: Ctx) -> int:
    name, worktree = _mine(ctx)
    text = build(ctx, name, worktree, ctx.args.get("reason") or "", require_session=True)
    path = snapshots.save(worktree, name, text)
    n = text.count("\n")
    return ctx.emit(
        {"agent_id": name, "path": path, "lines": n},
        lambda r: line(f"✓ Restart snapshot saved for {name} ({n} lines)"),
    )


def check(ctx: Ctx) -> int:
    name, worktree = _mine(ctx)
    path = snapshots.path_of(worktree, name)
    exists = os.path.exists(path)
    ctx.emit(
        {"agent_id": name, "exists": exists, "path": path},
        lambda r: line(
            f"Restart snapshot for {name}: {path}" if exists else f"No restart snapshot for {name}."
        ),
    )
    return 0 if exists else 1


def restore(ctx: Ctx) -> int:
    name, worktree = _mine(ctx)
    text = snapshots.consume(worktree, name)
    if text is None:
        raise CliError(f"no restart snapshot for @{name}: `thrum tmux snapshot save` writes one")
    import sys

    return ctx.emit({"agent_id": name, "snapshot": text}, lambda r: sys.stdout.write(text))

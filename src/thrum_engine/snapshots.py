"""Restart snapshots: an agent's conversation state written just before its session restarts, and
handed to the next briefing once (upstream's `.thrum/restart/<agent>.md`, which its restart skill and
auto-restart hook write with `thrum tmux snapshot save` and read back with `restore`).

Stdlib only: the CLI writes and reads these on its light path; the engine consumes one in `prime`.
The file lives in the agent's own worktree (`<worktree>/.thrum/restart/`), private (0600), and the
name is checked before it is ever part of a path.
"""

from __future__ import annotations

import os
import time

from thrum_engine.errors import InvalidName
from thrum_engine.files import private_dir, write_private
from thrum_engine.names import identity_name_problem

RESTART_DIR = os.path.join(".thrum", "restart")
MAX_PANE_LINES = 400


def path_of(worktree: str, name: str) -> str:
    problem = identity_name_problem(name)
    if problem:
        raise InvalidName(problem)
    return os.path.join(worktree, RESTART_DIR, f"{name}.md")


def render(
    name: str, *, reason: str, identity: dict, pane: list[str] | None, context: str | None, branch: str
) -> str:
    """The snapshot as markdown: why, who and where, then the pane's last lines (the conversation as
    the runtime showed it) and the saved context, with a resume plan the next session acts on."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = [
        f"# Restart snapshot for @{name}",
        "",
        f"- saved: {stamp}",
        f"- reason: {reason or 'restart'}",
        f"- role: {identity.get('role') or '-'}"
        + (f"/{identity['module']}" if identity.get("module") else ""),
        f"- branch: {branch or '-'}",
        f"- intent: {identity.get('intent') or '-'}",
    ]
    if identity.get("tmux_session"):
        out.append(f"- tmux session: {identity['tmux_session']}")
    if context:
        out += ["", "## Saved context", "", context.rstrip()]
    if pane:
        lines = pane[-MAX_PANE_LINES:]
        out += ["", f"## Conversation (last {len(lines)} lines of the pane)", "", "```", *lines, "```"]
    out += [
        "",
        "## Resume plan",
        "",
        "1. Re-read the intent and the conversation above: that is where you stopped.",
        "2. Check `thrum inbox` for what arrived while you restarted.",
        "3. Carry on from the last step in progress; tell your coordinator you are back.",
        "",
    ]
    return "\n".join(out)


def save(worktree: str, name: str, text: str) -> str:
    path = path_of(worktree, name)
    private_dir(os.path.dirname(path))
    write_private(path, text)
    return path


def read(worktree: str, name: str) -> str | None:
    try:
        with open(path_of(worktree, name), encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def consume(worktree: str, name: str) -> str | None:
    """Read and remove: a snapshot is for the one session that follows the restart."""
    text = read(worktree, name)
    if text is not None:
        try:
            os.remove(path_of(worktree, name))
        except FileNotFoundError:
            pass
    return text

"""Adopting a tmux session Thrum did not create (upstream's `tmux launch` on a plain `tmux new-session`).

A session someone made by hand in one of this repo's worktrees is taken on as if `tmux create` had
made it: tagged with the repo (so discovery keeps it after an engine restart), its pane streamed, and
tied to the agent registered in that worktree when there is exactly one. A session outside every
worktree, or tagged by another repo, is never taken.
"""

from __future__ import annotations

import asyncio
import os

from thrum_engine.engine.authority import require_owner
from thrum_engine.engine.core import Caller, Engine
from thrum_engine.errors import InvalidInput
from thrum_engine.files import create_private
from thrum_engine.layout import worktree_of
from thrum_engine.tmux import runtimes
from thrum_engine.tmux.manager import Session, TmuxManager


def _tag(m: TmuxManager, name: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        m.tmux.cmd("set-option", "-t", f"={name}:", key, value)
    m.tmux.cmd("set-option", "-w", "-t", f"={name}:", "remain-on-exit", "on")


def _fresh_stream(m: TmuxManager, pane_id: str, path: str) -> None:
    create_private(path, b"")  # its own stream from now on (never emptied through a link)
    m.tmux.pipe(pane_id, path)


async def adopt_foreign(engine: Engine, m: TmuxManager, caller: Caller, name: str) -> Session | None:
    """The session `name` adopted, or None when tmux has no untagged session of that name."""
    rows = await asyncio.to_thread(m.tmux.sessions)
    row = next((r for r in rows if r["session_name"] == name), None)
    if row is None or row.get("@thrum_repo"):
        return None  # no such session, or another repo's (this repo's are known already)
    cwd = os.path.realpath(row["pane_current_path"] or "/")
    wt = worktree_of(engine.layout.repo, cwd)
    if wt is None:
        raise InvalidInput(
            f"tmux session {name} runs in {cwd}, outside every worktree of {engine.layout.repo}:"
            " Thrum adopts only sessions in this repo's worktrees (cd there, or `thrum tmux create`)"
        )
    require_owner(engine, caller, wt, f"adopting tmux session {name}")
    m.check_stream(name)  # before it is tagged as this repo's
    here = [
        n for n, a in engine.agents.items() if a.get("worktree") and os.path.realpath(a["worktree"]) == wt
    ]
    agent = here[0] if len(here) == 1 else ""
    shell = runtimes.BUILTIN["shell"]
    async with m.lock:
        tags = {"@thrum_repo": engine.layout.repo, "@thrum_agent": agent, "@thrum_runtime": shell.name}
        await asyncio.to_thread(_tag, m, name, tags)
        path = m.stream_path(name)
        await asyncio.to_thread(_fresh_stream, m, row["pane_id"], path)
        s = await m.adopt(name, row["pane_id"], agent, shell, cwd)
        s.launched = False  # a shell until the runtime is typed into it
        s.saw(row)
    return s

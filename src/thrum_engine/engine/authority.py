"""Who may act on whom: the one authorization policy, applied by every method that touches something
another agent owns.

* The **operator** may do everything: the console's own identity (an in-process caller, which never
  came through the socket) and any caller whose working directory is the main checkout.
* An **agent** (a caller inside one of the repo's linked worktrees) may act on what belongs to its
  own worktree: its agent record (delete, status), its tmux sessions and panes (send, interrupt,
  kill, restart, launch, queue, cancel), the monitor rules its agents created (stop, restart, edit)
  and the worktree itself (teardown). Sending messages, registering itself and stopping or restarting
  the engine (which any agent can start again) need no more than being in a worktree.
* A caller **outside every worktree** (including a directory dressed up as one: a `.git` and a
  `.thrum/redirect` that `git worktree list` does not know) is read-only.
* Acts on everyone at once (purging messages, deleting stale agents, the repo's default runtime)
  are the operator's.

Ownership is by worktree because that is what the engine can verify: a caller's worktree comes
from the kernel (its pid's cwd), while a claimed name is only trusted once it matches that worktree.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from thrum_engine.engine.caller import Caller
from thrum_engine.errors import Forbidden

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

OPERATOR_HINT = "the operator (the console, or a caller in the main checkout) may"


def _same(a: str, b: str) -> bool:
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def is_operator(engine: Engine, caller: Caller) -> bool:
    if caller.read_only:
        return False
    if caller.worktree is None:
        return True  # in-process: the console hosting or attached to the engine, and the engine itself
    return _same(caller.worktree, engine.layout.repo)


def require_operator(engine: Engine, caller: Caller, action: str) -> None:
    """Refuse `action` (it affects every agent) unless the caller is the operator."""
    if not is_operator(engine, caller):
        raise Forbidden(f"{action} affects every agent: only {OPERATOR_HINT} do it")


def require_owner(engine: Engine, caller: Caller, owner_worktree: str | None, action: str) -> None:
    """Refuse `action` on something owned by `owner_worktree` unless the caller is in that worktree or
    is the operator. An owner of None (unknown, or older records) is the operator's alone."""
    if is_operator(engine, caller):
        return
    if caller.read_only or caller.worktree is None:
        raise Forbidden(f"{action} changes state; run it from inside one of this repo's worktrees")
    if owner_worktree and _same(owner_worktree, caller.worktree):
        return
    whose = f"the worktree {owner_worktree}" if owner_worktree else "no agent's worktree"
    raise Forbidden(
        f"{action}: that belongs to {whose}; an agent may act only on its own, {OPERATOR_HINT} act on any"
    )


def agent_worktree(engine: Engine, name: str | None) -> str | None:
    """The worktree an agent is registered in (None for unknown or unregistered names)."""
    if not name:
        return None
    return (engine.agents.get(name) or {}).get("worktree") or None


def require_agent_owner(engine: Engine, caller: Caller, agent: str | None, action: str) -> None:
    """`require_owner` for something owned by agent `agent` (its record, a rule it created)."""
    require_owner(engine, caller, agent_worktree(engine, agent), action)

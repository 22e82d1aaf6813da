"""The per-worktree identity file `.thrum/identities/<name>.json`: how a process finds out who it is."""

from __future__ import annotations

import json
import os

from thrum_engine import names
from thrum_engine.errors import InvalidName
from thrum_engine.files import write_private


def identity_record(agent: dict, session: dict | None, *, repo: str, agent_pid: int | None) -> dict:
    return {
        "name": agent["name"],
        "role": agent["role"],
        "module": agent.get("module", ""),
        "display": agent.get("display", ""),
        "runtime": agent.get("runtime", ""),
        "intent": agent.get("intent", ""),
        "worktree": agent["worktree"],
        "repo": repo,
        "registered_at": agent["registered_at"],
        "session_id": (session or {}).get("session_id"),
        "agent_pid": agent_pid,
    }


def path_of(worktree: str, name: str) -> str:
    """`<worktree>/.thrum/identities/<name>.json`; the name is checked first, so it can never be a path."""
    problem = names.identity_name_problem(name)
    if problem:
        raise InvalidName(problem)
    return os.path.join(worktree, ".thrum", "identities", f"{name}.json")


def write(worktree: str, record: dict) -> str:
    """Atomically (re)write the identity file (0600, no symlink followed); returns its path."""
    path = path_of(worktree, record["name"])
    write_private(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def remove(worktree: str, name: str) -> bool:
    try:
        os.remove(path_of(worktree, name))
        return True
    except FileNotFoundError:
        return False

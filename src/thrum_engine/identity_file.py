"""The per-worktree identity file `.thrum/identities/<name>.json`: how a process finds out who it is."""

from __future__ import annotations

import json
import os

from thrum_engine import names
from thrum_engine.errors import InvalidName
from thrum_engine.files import write_private
from thrum_engine.identity_fields import FIELDS  # noqa: F401 - re-exported: the file's fields


def identity_record(
    agent: dict,
    session: dict | None,
    *,
    repo: str,
    agent_pid: int | None,
    tmux_session: str = "",
) -> dict:
    return {
        "name": agent["name"],
        "role": agent["role"],
        "module": agent.get("module", ""),
        "display": agent.get("display", ""),
        "runtime": agent.get("runtime", ""),
        "preferred_runtime": agent.get("runtime", ""),
        "agent_status": agent.get("status", "") or "",
        "agent_status_updated_at": agent.get("status_at", "") or "",
        "tmux_session": tmux_session,
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


def update(worktree: str, name: str, fields: dict) -> bool:
    """Merge `fields` into an existing identity file (a status change); False when there is none."""
    path = path_of(worktree, name)
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict):
        return False
    record.update(fields)
    write(worktree, record)
    return True


def remove(worktree: str, name: str) -> bool:
    try:
        os.remove(path_of(worktree, name))
        return True
    except FileNotFoundError:
        return False

"""The per-worktree identity file `.thrum/identities/<name>.json`: how a process finds out who it is."""

from __future__ import annotations

import json
import os


def identity_record(agent: dict, session: dict | None, *, repo: str, agent_pid: int | None) -> dict:
    return {
        "name": agent["name"], "role": agent["role"], "module": agent.get("module", ""),
        "display": agent.get("display", ""), "runtime": agent.get("runtime", ""), "intent": agent.get("intent", ""),
        "worktree": agent["worktree"], "repo": repo, "registered_at": agent["registered_at"],
        "session_id": (session or {}).get("session_id"), "agent_pid": agent_pid,
    }


def write(worktree: str, record: dict) -> str:
    """Atomically (re)write the identity file; returns its path."""
    d = os.path.join(worktree, ".thrum", "identities")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"{record['name']}.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def remove(worktree: str, name: str) -> bool:
    try:
        os.remove(os.path.join(worktree, ".thrum", "identities", f"{name}.json"))
        return True
    except FileNotFoundError:
        return False

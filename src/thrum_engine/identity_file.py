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
    named_by_env: bool = False,
) -> dict:
    """The file's record. `named_by_env`: the agent's processes carry THRUM_NAME (a pane Thrum made,
    a quickstart run under THRUM_NAME), so it does not rely on being its worktree's only identity
    (`crowding_problem` reads it)."""
    record = {
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
    if named_by_env or tmux_session:
        record["named_by_env"] = True
    return record


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


def read(worktree: str, name: str) -> dict | None:
    """The identity file's record, or None when there is none (or it is not a JSON object)."""
    try:
        with open(path_of(worktree, name), encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError, InvalidName):
        return None
    return record if isinstance(record, dict) else None


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


def names_in(worktree: str) -> list[str]:
    """The names of the identity files in `worktree` (sorted; none when there is no folder)."""
    try:
        files = os.listdir(os.path.join(worktree, ".thrum", "identities"))
    except OSError:
        return []
    return sorted(f[:-5] for f in files if f.endswith(".json"))


def _named_by_env(worktree: str, name: str) -> bool:
    record = read(worktree, name) or {}
    return bool(record.get("named_by_env") or record.get("tmux_session"))


def crowding_problem(worktree: str, name: str, *, named_by_env: bool) -> str | None:
    """Why writing `name`'s identity file into `worktree` would leave an agent there unresolvable,
    or None. Resolution without THRUM_NAME takes the worktree's *only* identity file (DESIGN,
    Identity), so a second file silently broke `whoami`, `inbox` and the hooks of the agent already
    there, and of the new one too (walk C, A3). Allowed: the file is already there (re-registering
    changes nothing), and a new identity picked by its environment (`named_by_env`) beside ones
    that are too, or beside several (none of which was resolved by being the only one)."""
    others = [n for n in names_in(worktree) if n != name]
    if not others or name in names_in(worktree):
        return None
    if named_by_env and (len(others) > 1 or _named_by_env(worktree, others[0])):
        return None
    held = ", ".join("@" + n for n in others)
    where = os.path.join(worktree, ".thrum", "identities")
    return (
        f"this worktree already holds the identity of {held} ({where}): another one would make `thrum`"
        f" here unable to tell the agents apart without THRUM_NAME; give @{name} a worktree of its own"
        f" (`thrum worktree create NAME --name {name} --role ROLE`), or set THRUM_NAME for every agent"
        " here and pass --force"
    )

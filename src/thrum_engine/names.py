"""Name rules shared by the CLI (early, friendly errors) and the engine (the authority).

No `re`: the CLI imports this on every call and `re` costs ~6 ms of start-up.
"""

from __future__ import annotations

RESERVED = frozenset({"daemon", "system", "thrum", "all", "everyone", "broadcast"})
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
MAX_NAME = 64


def name_problem(name: str, *, what: str = "agent name") -> str | None:
    """Why `name` is not a valid agent/role/module name, or None when it is."""
    if not name:
        return f"{what} must not be empty"
    if len(name) > MAX_NAME:
        return f"{what} {name!r} is longer than {MAX_NAME} characters"
    if not set(name) <= _NAME_CHARS:
        return f"invalid {what} {name!r}: use lowercase letters, digits and _ only"
    return None


def agent_name_problem(name: str, role: str | None = None) -> str | None:
    problem = name_problem(name)
    if problem:
        return problem
    if name in RESERVED:
        return f"agent name {name!r} is reserved ({', '.join(sorted(RESERVED))})"
    if role is not None and name == role:
        return f"agent name {name!r} must differ from its role"
    return None


def strip_at(address: str) -> str:
    return address[1:] if address.startswith("@") else address

"""`Caller`: who is calling. A leaf module (stdlib only) so every method module, the socket server
and the console can import it at run time without pulling in the engine core."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """`worktree` comes from the kernel (the caller's cwd) and is what a claimed `name` is checked
    against; `read_only` callers are outside every worktree. No worktree: an in-process caller."""

    name: str | None = None
    worktree: str | None = None
    pid: int | None = None
    read_only: bool = False

    @classmethod
    def trusted(cls, name: str | None = None) -> Caller:
        return cls(name=name)

"""`Caller`: who is calling. A leaf module (stdlib only) so every method module, the socket server
and the console can import it at run time without pulling in the engine core."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Caller:
    """`worktree` comes from the kernel (the caller's cwd) and is what a claimed `name` is checked
    against; `read_only` callers are outside every worktree. No worktree: an in-process caller.
    `gone`: done once the caller's connection has hung up (a killed `thrum wait`, a hook that gave
    up): what would only be shown to it is then not taken from another path."""

    name: str | None = None
    worktree: str | None = None
    pid: int | None = None
    read_only: bool = False
    gone: asyncio.Future | None = field(default=None, compare=False, repr=False)

    @property
    def hung_up(self) -> bool:
        return self.gone is not None and self.gone.done()

    @classmethod
    def trusted(cls, name: str | None = None) -> Caller:
        return cls(name=name)

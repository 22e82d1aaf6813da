"""The engine's method table: one name per operation, shared by the socket and in-process callers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thrum_engine.engine.caller import Caller
from thrum_engine.model import Params

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

Handler = Callable[["Engine", Caller, Any], Awaitable[dict]]


@dataclass(frozen=True)
class Method:
    name: str
    params: type[Params]
    handler: Handler
    identity: bool  # the caller must be a registered agent
    writes: bool  # refused to read-only callers (outside every worktree)
    timeout: bool = True  # False for methods that bound their own time (wait)


METHODS: dict[str, Method] = {}


def method(
    name: str, params: type[Params], *, identity: bool = False, writes: bool = False, timeout: bool = True
):
    def deco(fn: Handler) -> Handler:
        METHODS[name] = Method(name, params, fn, identity, writes, timeout)
        return fn

    return deco

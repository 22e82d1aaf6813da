"""`PerEngine`: the state a subsystem keeps beside an engine (delivery paths, hook firings, the loop
guard's counts, the ask reminders), made on first use and gone with the engine. Keyed weakly, so a
test's many engines never keep each other's state alive, and one process can host several."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

T = TypeVar("T")


class PerEngine(Generic[T]):
    def __init__(self, make: Callable[[Engine], T]) -> None:
        self._make = make
        self._of: weakref.WeakKeyDictionary[Engine, T] = weakref.WeakKeyDictionary()

    def __call__(self, engine: Engine) -> T:
        """`engine`'s one instance (made now, on first use)."""
        got = self._of.get(engine)
        if got is None:
            got = self._of[engine] = self._make(engine)
        return got

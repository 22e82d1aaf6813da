"""Idempotent sends (issue 16): the same (author, key) within the window stores one message.

The key travels in the message's journal line (`data.idempotency_key`), so a rebuild, a restart
and another clone's sync all know it. The check is an in-memory map, loaded from the projection
at start and kept by listening to every applied batch (local commits and synced ones alike): a
keyed send pays two dict lookups, never a query. A retry that arrives while the first attempt
is still being written waits for it instead of racing it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from thrum_engine.durations import iso, parse_iso
from thrum_engine.errors import InvalidInput

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

MAX_KEY = 200
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/+=@")


def check_key(key: str) -> str:
    """A key is 1-200 plain characters (so a keyed journal line stays on the fast rebuild path)."""
    if not key or len(key) > MAX_KEY or not _KEY_CHARS.issuperset(key):
        raise InvalidInput(
            f"invalid idempotency key {key[:40]!r}: 1-{MAX_KEY} characters of letters, digits and - _ . : / + = @"
        )
    return key


class IdempotencyIndex:
    """(author, key) -> (message id, when it was created) for the keys seen within the window."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._done: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._pending: dict[tuple[str, str], asyncio.Future] = {}
        self._unlisten = None

    @property
    def window(self) -> float:
        return self.engine.settings.messages.idempotency_window_seconds

    async def start(self) -> None:
        from thrum_engine.store import queries

        cutoff = iso(time.time() - self.window)
        for r in await queries.keyed_messages_since(self.engine.store, cutoff):
            self._note(r["author"], r["idem_key"], r["id"], r["created_at"])
        self._unlisten = self.engine.bus.listen(self._on_applied)

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    def __len__(self) -> int:
        return len(self._done)

    def _note(self, author: str, key: str, message_id: str, created_at: str) -> None:
        try:
            at = parse_iso(created_at)
        except ValueError:
            at = time.time()
        k = (author, key)
        if k not in self._done:
            self._done[k] = (message_id, at)
        # Oldest first (about: ids and times grow together): expired keys leave from the front.
        floor = time.time() - self.window
        while self._done:
            first = next(iter(self._done.values()))
            if first[1] >= floor:
                break
            self._done.popitem(last=False)

    def _on_applied(self, events: list[dict]) -> None:
        for ev in events:
            if ev["type"] == "message.create":
                d = ev["data"]
                key = d.get("idempotency_key")
                if key is not None:
                    self._note(ev["author"], key, d["message_id"], d.get("created_at", ev["ts"]))

    def known(self, author: str, key: str) -> str | None:
        hit = self._done.get((author, key))
        if hit is None or hit[1] < time.time() - self.window:
            return None
        return hit[0]

    def forget(self, author: str, key: str) -> None:
        self._done.pop((author, key), None)

    async def claim(self, author: str, key: str) -> str | None:
        """The message already stored under (author, key), or None: then the caller stores it and
        must call `release` when done (stored or failed); a concurrent retry waits for that."""
        k = (author, key)
        while True:
            hit = self.known(author, key)
            if hit is not None:
                return hit
            fut = self._pending.get(k)
            if fut is None:
                self._pending[k] = asyncio.get_running_loop().create_future()
                return None
            await asyncio.shield(fut)

    def release(self, author: str, key: str) -> None:
        fut = self._pending.pop((author, key), None)
        if fut is not None and not fut.done():
            fut.set_result(None)

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
        self._pending: dict[tuple[str, str], list[asyncio.Future]] = {}  # being stored: who waits
        self._unlisten = None

    @property
    def window(self) -> float:
        return self.engine.settings.messages.idempotency_window_seconds

    async def start(self) -> None:
        from thrum_engine.store import queries

        cutoff = iso(time.time() - self.window)
        for r in await queries.keyed_messages_since(self.engine.store, cutoff):
            try:
                at = parse_iso(r["created_at"])
            except ValueError:
                continue
            self._note(r["author"], r["idem_key"], r["id"], at)
        for r in await queries.keyed_held_since(self.engine.store, cutoff):  # held: no message yet
            self._note(r["author"], r["idem_key"], r["message_id"], parse_iso(r["held_at"]))
        self._unlisten = self.engine.bus.listen(self._on_applied)

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    def __len__(self) -> int:
        return len(self._done)

    def _note(self, author: str, key: str, message_id: str, at: float) -> None:
        k = (author, key)
        if k not in self._done:
            self._done[k] = (message_id, at)
        # Oldest first (noted in time order): expired keys leave from the front.
        done = self._done
        floor = at - self.window
        while done and next(iter(done.values()))[1] < floor:
            done.popitem(last=False)

    def _on_applied(self, events: list[dict]) -> None:
        # Noted at the time it was applied here (parsing each event's timestamp cost a keyed send
        # ~20 us, about 10 % of its engine CPU): the window runs from when this engine saw the key.
        now = None
        for ev in events:
            if ev["type"] in ("message.create", "message.hold"):
                # a held message (message.hold) carries its create event: its key is taken too
                d = ev["data"] if ev["type"] == "message.create" else ev["data"]["event"]["data"]
                key = d.get("idempotency_key")
                if key is not None:
                    if now is None:
                        now = time.time()
                    self._note(ev["author"], key, d["message_id"], now)

    def known(self, author: str, key: str) -> str | None:
        hit = self._done.get((author, key))
        if hit is None or hit[1] < time.time() - self.window:
            return None
        return hit[0]

    def forget(self, author: str, key: str) -> None:
        self._done.pop((author, key), None)

    def claim(self, author: str, key: str) -> str | asyncio.Future | None:
        """The message already stored under (author, key); or None: the caller now stores it and
        must call `release` when done (stored or failed); or, while another request with the key
        is being stored, a future to await before asking again. Synchronous: a fresh key costs two
        dict lookups and one insert, no future."""
        hit = self.known(author, key)
        if hit is not None:
            return hit
        k = (author, key)
        waiting = self._pending.get(k)
        if waiting is None:
            self._pending[k] = []
            return None
        fut = asyncio.get_running_loop().create_future()
        waiting.append(fut)
        return fut

    def release(self, author: str, key: str) -> None:
        for fut in self._pending.pop((author, key), ()):
            if not fut.done():
                fut.set_result(None)

"""The loop guard (issue 16): agent-to-agent traffic that runs away is held for the operator.

Two limits, from `guards` in config.json: exchanges between two agents within a minute (messages
that turn their conversation around: a loop is a pair answering each other, while one agent sending
a batch is not), and agent messages in one thread since the last message from or to a human. A message past either is not delivered: `create_message` stores
it as `message.hold` (its create event inside), the sender is told it is held, and the operator is
told once per runaway pair or thread. `thrum release` commits the held create events as they are
and starts that pair's and thread's counts afresh, so delivery proceeds.

Messages from or to a human (an agent of kind `user`) or from the engine or a monitor are never
held, and a human message in a thread resets its count. The counts are in memory: an engine
restart ends a loop's damping along with the loop's connections.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from thrum_engine.engine.per_engine import PerEngine

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

WINDOW_SECONDS = 60.0


class Guards:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.clock = clock
        self.pairs: dict[tuple[str, str], deque[float]] = {}
        self.last: dict[tuple[str, str], str] = {}  # pair -> who spoke last in it
        self.threads: dict[str, int] = {}  # thread id -> agent messages since the last human one
        self.tripped: set[str] = set()  # pairs and threads held (the operator was told), until a release

    def exempt(self, author: str, recipients: list[str]) -> bool:
        """Traffic the guard never holds: from the engine or a monitor, from or to a human."""
        agents = self.engine.agents
        row = agents.get(author)
        if row is None or row.get("kind") == "user" or author == "system" or ":" in author:
            return True
        for r in recipients:
            row = agents.get(r)
            if row is not None and row.get("kind") == "user":
                return True
        return False

    def check(self, author: str, recipients: list[str], thread_id: str | None) -> tuple[str, str] | None:
        """(key, reason) when this message must be held, else None (and it is counted).

        A pair's count is of exchanges: messages that turn the conversation around (the other one
        answering). A loop is two agents answering each other; one agent sending many messages in a
        row (results, a batch) is not one and is never held for it. Once a pair or a thread trips,
        everything further in it is held until the operator releases it (or, for a thread, a human
        speaks in it)."""
        g = self.engine.settings.guards
        if not g.enabled or not recipients:
            return None
        if self.exempt(author, recipients):
            if thread_id:  # a human spoke in the thread: its count restarts
                self.threads.pop(thread_id, None)
                self.tripped.discard(f"thread:{thread_id}")
            return None
        now = self.clock()
        others = recipients if author not in recipients else [r for r in recipients if r != author]
        tripped = self.tripped
        for r in others:
            pair = (author, r) if author <= r else (r, author)
            if tripped:
                key = f"pair:{pair[0]}:{pair[1]}"
                if key in tripped:
                    self.last[pair] = author
                    return (
                        key,
                        f"loop guard: @{pair[0]} and @{pair[1]} are held until the operator releases them",
                    )
            window = self.pairs.get(pair)
            if window is None or self.last.get(pair, author) == author:
                continue  # not an answer: one agent going on is no loop
            while window and now - window[0] > WINDOW_SECONDS:
                window.popleft()
            if len(window) >= g.pair_per_minute:
                self.last[pair] = author
                key = f"pair:{pair[0]}:{pair[1]}"
                why = (
                    f"loop guard: {len(window)} exchanges between @{pair[0]} and @{pair[1]} within a minute"
                    f" (guards.pair_per_minute is {g.pair_per_minute})"
                )
                return key, why
        if thread_id:
            key = f"thread:{thread_id}"
            count = self.threads.get(thread_id, 0)
            if count >= g.thread_exchanges or key in tripped:
                why = (
                    f"loop guard: {count} agent messages in thread {thread_id} without a"
                    f" human one (guards.thread_exchanges is {g.thread_exchanges})"
                )
                return key, why
        last = self.last
        for r in others:
            pair = (author, r) if author <= r else (r, author)
            if last.get(pair) != author:
                self.pairs.setdefault(pair, deque()).append(now)
                last[pair] = author
        if thread_id:
            self.threads[thread_id] = self.threads.get(thread_id, 0) + 1
        if len(self.pairs) > 10_000:  # agents come and go: forget quiet pairs
            self.pairs = {k: w for k, w in self.pairs.items() if w and now - w[-1] <= WINDOW_SECONDS}
            self.last = {k: v for k, v in self.last.items() if k in self.pairs}
        return None

    def trip(self, key: str) -> bool:
        """Hold everything further under `key`; whether the operator still needs telling (once)."""
        if key in self.tripped:
            return False
        self.tripped.add(key)
        return True

    def released(self, author: str, recipients: list[str], thread_id: str | None) -> None:
        """The operator let this pair's (and thread's) held traffic through: counts start afresh."""
        for r in recipients:
            a, b = _pair(author, r)
            self.pairs.pop((a, b), None)
            self.last.pop((a, b), None)
            self.tripped.discard(f"pair:{a}:{b}")
        if thread_id:
            self.threads.pop(thread_id, None)
            self.tripped.discard(f"thread:{thread_id}")


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


attach: PerEngine[Guards] = PerEngine(Guards)  # the engine's guard, made on first use

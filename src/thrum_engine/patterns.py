"""User-supplied regular expressions: monitor `--match` rules and runtime preset markers.

A pattern like `^(a|a)+$` backtracks for hours on one short line, and these patterns come from
users and from `.thrum/runtimes.json` files a cloned repo can carry. So every one is compiled with
the `regex` engine in its `re`-compatible mode (V0: the syntax users already know) and every
search runs under a time budget (`timeout=`). Monitor matching also runs in a small dedicated
thread pool with the GIL released (`concurrent=True`), so the event loop never waits on a match
and a slow rule cannot take the workers that git and tmux calls use. On Linux the pool's threads
run at the lowest CPU priority: a pattern burning its budget must not take the core the loop needs.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import regex

Pattern = regex.Pattern
T = TypeVar("T")

MATCH_WORKERS = 2  # two rules over budget at once still leave nothing else waiting on them
MATCH_NICE = 19
_pool: ThreadPoolExecutor | None = None


class PatternError(ValueError):
    """The pattern does not compile; the text says why (for an `Error: invalid pattern ...` line)."""


class PatternTimeout(Exception):
    """A search ran past its budget: the pattern is too costly for this text and must be stopped."""

    def __init__(self, pattern: str, budget: float, text: str) -> None:
        super().__init__(f"pattern {pattern!r} took longer than {budget:g}s on one input")
        self.pattern = pattern
        self.budget = budget
        self.text = text


# How many items a pattern's counted repeats may expand to. `regex` compiles a repeat's minimum as
# that many copies (`x{1000}` and `x{1000,}` are a thousand; `x{0,1000}` is a loop), so time and memory
# grow with the product of nested minimums: `(?:x{2000}){2000}` held the event loop 3 s and
# `(?:x{3500}){3500}` took 2.5 GB (reliability probe, session 22, R2); a compile cannot be
# interrupted, so the count is checked first. 10,000 compiles in ~40 ms here.
MAX_EXPANDED = 10_000


def compile_pattern(pattern: str, *, multiline: bool = False) -> Pattern:
    """Compile with `re` syntax (regex V0); any compile failure becomes a PatternError."""
    size = expanded_size(pattern)
    if size > MAX_EXPANDED:
        raise PatternError(
            f"its counted repeats expand to {size:,} items, more than {MAX_EXPANDED:,}:"
            " use smaller counts, or * and + (which do not expand)"
        )
    flags = regex.V0 | (regex.MULTILINE if multiline else 0)
    try:
        return regex.compile(pattern, flags)
    except (regex.error, ValueError, OverflowError, RecursionError, MemoryError) as exc:
        raise PatternError(str(exc) or type(exc).__name__) from None


def _count(pattern: str, at: int) -> tuple[int, int] | None:
    """The `{m}`, `{m,}`, `{m,n}` or `{,n}` at `at`: (how many copies it makes: its minimum, where it
    ends); None when the brace is a literal one, as `re` reads it."""
    end = pattern.find("}", at)
    if end < 0:
        return None
    low, comma, high = pattern[at + 1 : end].partition(",")
    if not (low.isdigit() or (comma and not low)) or (high and not high.isdigit()) or (not low and not high):
        return None
    return max(int(low or 0), 1), end + 1


def _group_body(pattern: str, at: int) -> tuple[int, bool]:
    """Where the body of the group opening at `at` starts, past `?:`, `?P<name>`, `?=`, `?<!`, ...;
    and whether it is a group at all (`(?i)`, inline flags alone, is not)."""
    i = at + 1
    if not pattern.startswith("?", i):
        return i, True
    i += 1
    if pattern.startswith(("P<", "<"), i) and not pattern.startswith(("<=", "<!"), i):
        close = pattern.find(">", i)
        return (len(pattern) if close < 0 else close + 1), True
    if pattern.startswith(("=", "!", ">", ":", "|"), i) or pattern.startswith(("<=", "<!"), i):
        return i + (2 if pattern.startswith("<", i) else 1), True
    while i < len(pattern) and (pattern[i].isalpha() or pattern[i] == "-"):
        i += 1  # inline flags: `(?i)` alone, or `(?i:...)` scoped
    if pattern.startswith(":", i):
        return i + 1, True
    return i + 1 if pattern.startswith(")", i) else i, not pattern.startswith(")", i)


def expanded_size(pattern: str) -> int:
    """About how many items `pattern` compiles to: each atom one, a counted repeat its minimum times
    what it repeats, the branches of an alternation added; `*`, `+`, `?` and what a range adds past
    its minimum are loops, not copies.
    A rough reading of the syntax (escapes, classes, groups), enough to size the work."""
    frames = [[0, 0, 0]]  # per open group: (finished branches, this branch, the last item)
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        top = frames[-1]
        if c == "\\":
            top[1], top[2], i = top[1] + 1, 1, i + 2
        elif c == "[":
            j = i + 1 + (pattern.startswith("^", i + 1))
            j += pattern.startswith("]", j)
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            top[1], top[2], i = top[1] + 1, 1, j + 1
        elif c == "(" and pattern.startswith("(?#", i):
            close = pattern.find(")", i)
            i = n if close < 0 else close + 1
        elif c == "(":
            i, opens = _group_body(pattern, i)
            if opens:
                frames.append([0, 0, 0])
        elif c == ")" and len(frames) > 1:
            done = frames.pop()
            inner = done[0] + done[1]
            frames[-1][1] += inner
            frames[-1][2] = inner
            i += 1
        elif c == "|":
            top[0], top[1], top[2] = top[0] + top[1], 0, 0
            i += 1
        elif c == "{" and (counted := _count(pattern, i)) is not None:
            copies, i = counted
            top[1] += top[2] * (copies - 1)
            top[2] *= copies
        elif c in "*+?":
            i += 1
        else:
            top[1], top[2], i = top[1] + 1, 1, i + 1
    while len(frames) > 1:  # unbalanced: the compile says so
        done = frames.pop()
        frames[-1][1] += done[0] + done[1]
    return frames[0][0] + frames[0][1]


def search(rx: Pattern, text: str, budget: float) -> regex.Match | None:
    """One bounded search: raises PatternTimeout instead of running past `budget` seconds."""
    try:
        return rx.search(text, timeout=budget, concurrent=True)
    except TimeoutError:
        raise PatternTimeout(rx.pattern, budget, text) from None


def latest_match(rx: Pattern, text: str, budget: float) -> tuple[int, int]:
    """(start, end) of the last match in `text`, (-1, -1) for none; the budget covers the whole scan."""
    best = (-1, -1)
    try:
        for m in rx.finditer(text, timeout=budget, concurrent=True):
            best = (m.start(), m.end())
    except TimeoutError:
        raise PatternTimeout(rx.pattern, budget, text) from None
    return best


def matching_lines(line_rx: Pattern, chunk_rx: Pattern | None, lines: list[str], budget: float) -> list[str]:
    """The lines that match, each search bounded by `budget`. Most batches match nothing, so one
    multiline search over the batch skips the per-line work for them (it can only err towards
    searching). Runs in a match worker, never on the loop."""
    if not lines:
        return []
    if chunk_rx is not None and search(chunk_rx, "\n".join(lines), budget) is None:
        return []
    return [ln for ln in lines if search(line_rx, ln, budget) is not None]


def _lower_priority() -> None:
    """Linux gives each thread its own nice value (setpriority on the thread id); elsewhere the id
    would name a process, so nothing is changed there."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), MATCH_NICE)
        except OSError:
            pass


async def off_loop(fn: Callable[..., T], *args: object) -> T:
    """Run `fn(*args)` in the match pool (created on first use; its threads end with the process)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(
            max_workers=MATCH_WORKERS, thread_name_prefix="thrum-match", initializer=_lower_priority
        )
    return await asyncio.get_running_loop().run_in_executor(_pool, fn, *args)

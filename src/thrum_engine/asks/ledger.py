"""The delivery ledger (issue 16): what happened to each (message, recipient), step by step.

A record moves stored -> notified (via channel, wait, hook or nudge) -> seen -> read -> acked or replied.
Until the recipient was shown the message (notified, seen or read) it is **not yet delivered**, and the
sender is told why when it is known: nobody is there to show it to (no channel, no `wait`, no recent hooks,
no tmux pane), the pane's runtime exited, or a dialog holds the pane.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from thrum_engine.durations import parse_iso

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

OFFLINE = "offline: no channel, wait, recent hooks or tmux pane; it waits in the inbox"
EXITED = "its pane's runtime has exited; it waits in the inbox"
DIALOG = "a dialog is open in its pane; the nudge waits until it closes"

# The order a record's steps happen in, with the column each one's time is in.
STEPS = (
    ("notified", "notified_at"),
    ("seen", "seen_at"),
    ("read", "read_at"),
    ("acked", "acked_at"),
    ("replied", "replied_at"),
)


def _session(engine: Engine, agent: str):
    tmux = engine.tmux
    return tmux.for_agent(agent) if tmux is not None else None


_attach = None  # delivery_paths.attach, imported on first use (delivery_paths imports messaging)


def why_unreachable(engine: Engine, agent: str) -> str | None:
    """Why nothing can surface a message to `agent` right now (None: some path can)."""
    global _attach
    if _attach is None:
        from thrum_engine.delivery_paths import attach

        _attach = attach
    paths = _attach(engine)
    if agent in paths.channels and paths.delivering_channels(agent):
        return None
    if engine.bus.waiting(agent) or paths.hooks_fresh(agent):
        return None
    if (engine.agents.get(agent) or {}).get("kind") == "user" and console_open(engine, agent):
        return None  # the console shows a person their mail (and marks it seen)
    s = _session(engine, agent)
    if s is None:
        return OFFLINE
    state = s.state.state
    if state == "exited":
        return EXITED
    if state == "blocked":
        return DIALOG
    return None


def console_open(engine: Engine, person: str) -> bool:
    """A console is open for `person`: this engine is hosted by one, or one attached over the
    socket is long-polling as them."""
    if engine.host == "tui":
        return True
    return engine.changes is not None and engine.changes.watched_by(person)


def unreachable(engine: Engine, recipients: list[str], author: str) -> list[dict]:
    """The recipients a message cannot be surfaced to right now, each with the reason."""
    out = []
    for r in recipients:
        if r == author:
            continue  # a note to oneself is in one's own inbox, which is where it belongs
        reason = why_unreachable(engine, r)
        if reason is not None:
            out.append({"recipient": r, "reason": reason})
    return out


def _seconds(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    try:
        return round(max(0.0, parse_iso(b) - parse_iso(a)), 3)
    except ValueError:
        return None


def steps(d: dict, created_at: str) -> list[dict]:
    """A record's steps in order, each with its time and how long it took after the previous one."""
    out = [{"state": "stored", "at": created_at, "after_seconds": 0.0}]
    prev = created_at
    for state, col in STEPS:
        at = d.get(col)
        if not at:
            continue
        step = {"state": state, "at": at, "after_seconds": _seconds(prev, at)}
        if state == "notified":
            step["via"] = d.get("notified_via") or "nudge"
        out.append(step)
        prev = max(prev, at)
    return out


def delivered(d: dict) -> bool:
    """Shown to its recipient: notified by some path, or seen, read or answered."""
    return bool(d.get("notified_at") or d.get("seen_at") or d.get("read_at") or d.get("replied_at"))


def annotate(engine: Engine, d: dict, author: str, created_at: str, reasons: dict | None = None) -> None:
    """Add the ledger's fields to one delivery record (as `deliveries_for` builds it); `reasons`
    keeps each recipient's reason across the records of one listing (one look per recipient)."""
    d["steps"] = steps(d, created_at)
    d["delivered"] = delivered(d) or d["recipient"] == author
    if not d["delivered"]:
        reasons = {} if reasons is None else reasons
        r = d["recipient"]
        if r not in reasons:
            reasons[r] = why_unreachable(engine, r) or "pending: no path has shown it yet"
        d["undelivered_reason"] = reasons[r]
        d["waiting_seconds"] = round(max(0.0, time.time() - parse_iso(created_at)), 1)

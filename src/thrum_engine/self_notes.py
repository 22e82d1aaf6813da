"""A note to yourself: a message its own recipient wrote, and not a schedule's fire.

CLI.md: `send --to @me` is stored in your inbox and never surfaced (not nudged, pushed, shown by a
hook or returned by `wait`): a stop hook that showed it would block every turn that ends after the
note. A reminder you scheduled for yourself (issue 16: `schedule create --to @me`) is the opposite
case: its point is to reach you at its time, so every path surfaces it as it surfaces mail from
anyone else. Each path asks this one question; the store's queries ask it in SQL
(`store.queries.SURFACED`), which must say the same.
"""

from __future__ import annotations


def note_to_self(ev: dict, recipient: str) -> bool:
    """Whether a `message.create` event is, for `recipient`, a note to themself (never surfaced)."""
    if ev["author"] != recipient:
        return False
    meta = ev["data"].get("meta")
    return not (isinstance(meta, dict) and meta.get("scheduled"))

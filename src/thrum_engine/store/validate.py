"""Is a journal event fit to apply? Checked for every line read back (start-up catch-up, rebuild,
`doctor`), because lines also come from older and newer Thrums and, with sync, other machines.

A line that fails is set aside, never applied, and never stops the engine. Unknown event types
and unknown fields are a newer writer's: tolerated, skipped, and counted.
"""

from __future__ import annotations

from pydantic import ValidationError

from thrum_engine import names
from thrum_engine.journal import COPY
from thrum_engine.model import ANY_EVENT, DATA_KEYS, ENVELOPE_KEYS, EVENT_ADAPTERS, EVENT_VERSION


class EventCheck:
    """Checks events in apply order. The first line with an event id wins; a later line with the same
    id and another line (a forged one) is refused, so every path projects the same first line. The
    same line again in another shard (sync re-homes lines a rewritten shard lost, and two clones may
    both do it) is one event: `COPY`, skipped and counted, never a problem."""

    __slots__ = ("copies", "newer", "seen", "unknown_fields", "unknown_types")

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}  # event id -> its line's length (0: the line was not given)
        self.copies = 0
        self.unknown_types = 0
        self.newer = 0  # lines written with a `v` above EVENT_VERSION
        self.unknown_fields = 0  # lines carrying fields this Thrum does not know (ignored)

    def __call__(self, ev: dict, raw: bytes | None = None) -> str | None:
        """The reason `ev` (read from the line `raw`) cannot be applied, `COPY`, or None (and then its
        id counts as seen)."""
        reason = shape_problem(ev, self)
        if reason is None:
            reason = self.first(ev["id"], raw)
        return reason

    def first(self, event_id: str, raw: bytes | None = None) -> str | None:
        """The duplicate check alone, for lines whose shape is already known to be right. The line's
        length stands for its bytes (hashing them cost a rebuild 0.4 us a line, 11 % of parsing): a
        forged line of the same length is then skipped unreported, and the first still wins."""
        mark = len(raw) if raw is not None else 0
        seen = self.seen.get(event_id)
        if seen is None:
            self.seen[event_id] = mark
            return None
        if mark and seen == mark:
            self.copies += 1
            return COPY
        return f"duplicate event id {event_id}"

    def counts(self) -> dict[str, int]:
        return {
            "unknown_types": self.unknown_types,
            "newer_writer": self.newer,
            "unknown_fields": self.unknown_fields,
            "copies": self.copies,  # lines another shard holds too (one event each)
        }


# The words CLI.md has always kept from agent names (`daemon system thrum all everyone broadcast`); the
# ones reserved since (`me`, the role words) may be in an older journal, and are the command's to refuse.
_NEVER = frozenset({"daemon", "system", "thrum", "all", "everyone", "broadcast"})


def shape_problem(ev: dict, counts: EventCheck | None = None) -> str | None:
    """Why `ev` does not match its type's schema, or None. No duplicate check (see `EventCheck`)."""
    etype = ev.get("type")
    adapter = EVENT_ADAPTERS.get(etype) if type(etype) is str else None
    try:
        (adapter or ANY_EVENT).validate_python(ev)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "event"
        value = repr(first.get("input"))
        return f"{etype!r} event: {where}: {first.get('msg')} (got {value[:60]})"
    if etype == "agent.register":
        # A name from another clone or another Thrum is still never a path, an option or an address
        # word: `../../evil`, `--force` or `all` got broadcasts and could never be deleted
        # (reliability probe, session 22, R3). The softer rules (a role's word, the agent's own
        # role) are the registering command's: an older journal may hold such a name, harmless.
        name = ev["data"]["name"]
        found = names.problem("agent", name) or (names.reserved_problem(name) if name in _NEVER else None)
        if found:
            return f"'agent.register' event: {found}"
    if counts is not None:
        if adapter is None:
            counts.unknown_types += 1
        if ev["v"] > EVENT_VERSION:
            counts.newer += 1
        if not ENVELOPE_KEYS.issuperset(ev) or (
            adapter is not None and not DATA_KEYS[str(etype)].issuperset(ev["data"])
        ):
            counts.unknown_fields += 1
    return None

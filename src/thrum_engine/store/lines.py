"""Raw journal lines -> SQL runs, for `doctor rebuild`.

A rebuild is mostly plain messages (with or without an idempotency key) (one author, some recipients, a body), and
`json.loads` plus building rows from the dicts was most of its cost. The writer
encodes every event the same way (sorted keys, no spaces, UTF-8), so a line of
that common shape is matched by one regular expression and its rows are built
straight from the captured bytes. The pattern only accepts strings with no
escapes, quotes or control characters, where the captured bytes *are* the
decoded value; anything else (an escape in a body, a reply, structured data, an
older or newer writer's line) takes the `json.loads` path. Both paths yield
identical rows.

Every line is checked before it is applied (`store.validate`): the pattern itself
admits only the right shape, so a plain line needs only the duplicate-id check;
a line on the `json.loads` path is checked against its event model.
"""

from __future__ import annotations

import re

from thrum_engine.journal import COPY, MAX_LINE_BYTES, parse_event
from thrum_engine.store.apply import Projection
from thrum_engine.store.validate import EventCheck

# (index of the line in the batch, reason, unreadable: not a JSON event at all)
LineRejected = tuple[int, str, bool]

# A JSON string without escapes: its characters between the quotes are its value. The line is
# decoded once and matched as text (one decode instead of one per field).
_S = r'"([^"\\\x00-\x1f]*)"'
_PLAIN_MESSAGE = re.compile(
    r'\{"author":'
    + _S
    + r',"data":\{"content":'
    + _S
    + r',"format":'
    + _S
    + r'(?:,"idempotency_key":'
    + _S
    + r')?,"message_id":'
    + _S
    + r',"recipients":\[("[^"\\\x00-\x1f]*"(?:,"[^"\\\x00-\x1f]*")*)\](?:,"thread_id":'
    + _S
    + r')?\},"id":"(evt_[0-9A-Z]{26})","ts":'
    + _S
    + r',"type":"message\.create","v":1\}'
).fullmatch


def ops_for_lines(
    lines: list[bytes],
    check: EventCheck | None = None,
) -> tuple[list[tuple[str, list[tuple]]], int, list[LineRejected]]:
    """Complete journal lines, in order -> (SQL runs, events applied, lines rejected).

    `check` None skips validation (only for measuring what it costs): unreadable lines are still refused.
    """
    proj = Projection()
    events = 0
    rejected: list[LineRejected] = []
    plain = _PLAIN_MESSAGE
    first = check.first if check is not None else None
    for i, raw in enumerate(lines):
        if len(raw) >= MAX_LINE_BYTES:
            rejected.append((i, f"a line of {len(raw) + 1} bytes (over {MAX_LINE_BYTES})", True))
            continue
        try:
            m = plain(raw.decode())
        except UnicodeDecodeError:  # not UTF-8: json.loads decides what it is
            m = None
        if m is not None:
            author, content, fmt, key, mid, recipients, thread, eid, ts = m.groups()
            reason = first(eid, raw) if first is not None else None
            if reason is COPY:
                continue
            if reason is not None:
                rejected.append((i, reason, False))
                continue
            names = recipients[1:-1].split('","')
            # As `apply._message_create` builds them: created_at is the event's ts, `addressed` is the
            # recipients (these names need no JSON escaping), the other columns their defaults.
            proj.message_rows(
                eid,
                (mid, author, thread, fmt, content, ts, '["@' + '","@'.join(names) + '"]', key),
                [(r, mid, ts, author) for r in names],
            )
            events += 1
            continue
        ev = parse_event(raw)
        if ev is None:
            rejected.append((i, "not a JSON event", True))
            continue
        reason = check(ev, raw) if check is not None else None
        if reason is COPY:
            continue
        if reason is not None:
            rejected.append((i, reason, False))
            continue
        proj.event(ev)
        events += 1
    return proj.finish(), events, rejected

"""When a schedule fires: `--at TIME`, `--in DURATION`, `--cron EXPR` turned into epoch seconds.

Pure functions of a given `now`, so the service's clock (a test's frozen one) decides everything.
Cron expressions are the monitors' kind (five fields, croniter), evaluated in UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from thrum_engine.errors import InvalidInput

LATE_AFTER = 60.0  # a fire this much after its time is marked late even while the engine ran


def parse_at(text: str, now: float) -> float:
    """`2026-12-02T19:30`, `2026-12-02 19:30:00+01:00`, `...Z` (no zone: local time), or `19:30`
    / `19:30:15` (the next such time, local) -> epoch seconds."""
    t = text.strip()
    clock = t.split(":")
    if 2 <= len(clock) <= 3 and all(p.isdigit() and len(p) <= 2 for p in clock):
        h, m = int(clock[0]), int(clock[1])
        s = int(clock[2]) if len(clock) == 3 else 0
        if not (h < 24 and m < 60 and s < 60):
            raise InvalidInput(f"invalid --at {text!r}: no such time of day")
        base = datetime.fromtimestamp(now).astimezone()
        when = base.replace(hour=h, minute=m, second=s, microsecond=0)
        if when.timestamp() <= now:
            when += timedelta(days=1)
        return when.timestamp()
    try:
        when = datetime.fromisoformat(t.replace(" ", "T", 1) if "T" not in t else t)
    except ValueError:
        raise InvalidInput(
            f"invalid --at {text!r}: an ISO time (2026-12-02T19:30, ...Z or +01:00) or HH:MM"
        ) from None
    try:
        if when.tzinfo is None:
            when = when.astimezone()  # local time
        return when.timestamp()
    except (ValueError, OverflowError, OSError):  # year 1 in a zone east of UTC: no such instant
        raise InvalidInput(f"invalid --at {text!r}: out of range") from None

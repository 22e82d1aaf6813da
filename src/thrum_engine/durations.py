"""Durations and timestamps without `re` or `datetime` parsing libraries (CLI start-up)."""

import time

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """'30s', '-30s', '+1m30s', '2h', '500ms', '45' (seconds) -> signed seconds."""
    s = text.strip().lower()
    if not s:
        raise ValueError("empty duration")
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    try:
        return sign * float(s)
    except ValueError:
        pass
    total, num, i = 0.0, "", 0
    while i < len(s):
        c = s[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        unit = "ms" if s.startswith("ms", i) else c
        if unit not in _UNITS or not num:
            raise ValueError(f"invalid duration {text!r} (examples: 30s, 5m, 2h, 7d)")
        total += float(num) * _UNITS[unit]
        num = ""
        i += len(unit)
    if num:
        raise ValueError(f"invalid duration {text!r}: number {num!r} has no unit")
    return sign * total


_iso_cache: tuple[int, str] = (-1, "")


def iso(ts: float | None = None) -> str:
    """Fixed-width UTC timestamp (microseconds) that sorts lexicographically."""
    global _iso_cache
    ts = time.time() if ts is None else ts
    secs = int(ts)
    micros = round((ts - secs) * 1_000_000)
    if micros == 1_000_000:
        secs, micros = secs + 1, 0
    if _iso_cache[0] != secs:  # formatting the seconds is the slow part; it changes once a second
        _iso_cache = (secs, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)))
    return f"{_iso_cache[1]}.{micros:06d}Z"


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 (Howard Hinnant's algorithm): no `calendar`/`datetime` import."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_iso(text: str) -> float:
    """Inverse of `iso`; also accepts a date (YYYY-MM-DD) or seconds precision, UTC."""
    t = text.strip().rstrip("Z")
    try:
        date, _, clock = t.partition("T")
        y, mo, d = (int(x) for x in date.split("-"))
        h = mi = 0
        s = 0.0
        if clock:
            parts = clock.split(":")
            h, mi = int(parts[0]), int(parts[1])
            s = float(parts[2]) if len(parts) > 2 else 0.0
        if not (1 <= mo <= 12 and 1 <= d <= 31 and 0 <= h < 24 and 0 <= mi < 60 and 0 <= s < 61):
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(f"invalid date/time {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)") from None
    return _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s


def human_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"

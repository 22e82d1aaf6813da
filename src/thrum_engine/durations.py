"""Durations and timestamps without `re` or `datetime` parsing libraries (CLI start-up)."""

import time

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

# The longest duration any option takes (ten years): past it a number is a typo, and a timestamp
# or a socket timeout made from it overflows the platform's time_t (`--timeout 99999999999h`).
MAX_DURATION = 10 * 366 * 86400.0


def parse_duration(text: str) -> float:
    """'30s', '-30s', '+1m30s', '2h', '500ms', '45' (seconds) -> signed seconds, at most
    MAX_DURATION either way; NaN, infinities and what only spells a float (`1e3`, `1_0`) are refused."""
    s = text.strip().lower()
    if not s:
        raise ValueError("empty duration")
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    total, num, i = 0.0, "", 0
    while i < len(s):
        c = s[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        unit = "ms" if s.startswith("ms", i) else c
        if unit not in _UNITS or not _is_decimal(num):
            raise ValueError(f"invalid duration {text!r} (examples: 30s, 5m, 2h, 7d)")
        total += float(num) * _UNITS[unit]
        num = ""
        i += len(unit)
    if num:
        if i != len(num) or not _is_decimal(num):  # `1m30`: a number after a unit needs one too
            raise ValueError(f"invalid duration {text!r}: number {num!r} has no unit")
        total = float(num)  # bare seconds
    if total > MAX_DURATION:
        raise ValueError(f"duration {text[:40]!r} is too long: at most {MAX_DURATION / 86400:g}d")
    return sign * total


def _is_decimal(num: str) -> bool:
    """Digits with at most one point, and at least one digit (`float` also takes `nan`, `1e400`)."""
    return num.count(".") <= 1 and any(c.isdigit() for c in num)


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
        # Years past 9999 (or before 1970) are no time this engine writes, and `iso` of one overflows.
        ok_date = 1970 <= y <= 9999 and 1 <= mo <= 12 and 1 <= d <= 31
        if not (ok_date and 0 <= h < 24 and 0 <= mi < 60 and 0 <= s < 61):
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

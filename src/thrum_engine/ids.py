"""Monotonic ULIDs: ids sort in creation order, so replaying the journal by id is replaying it in order."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


# Two characters per 10 bits: a ULID is 13 table lookups instead of 26 shifts and a reverse.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = tuple(range(120, -10, -10))


def _encode128(value: int) -> str:
    pairs = _PAIRS
    return "".join([pairs[(value >> s) & 1023] for s in _SHIFTS])


def ulid() -> str:
    """26 Crockford base32 chars; within one millisecond the random part increments."""
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand += 1
        else:
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
        _last_ms = ms
        return _encode128((ms << 80) | (_last_rand & ((1 << 80) - 1)))


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"


PREFIXES = ("msg", "thr", "ses", "evt", "cmd", "mon")


def is_id(value: str, prefix: str) -> bool:
    if not value.startswith(prefix + "_"):
        return False
    body = value[len(prefix) + 1 :]
    return len(body) == 26 and all(c in _ALPHABET for c in body)


def check_id(value: str, prefix: str, what: str) -> str:
    """`value` when it is a `prefix`_<ULID> id; otherwise the one error every command gives for it."""
    if not is_id(value, prefix):
        from thrum_engine.errors import InvalidInput

        raise InvalidInput(f"invalid {what} id {value[:40]!r} (expected {prefix}_<ULID>)")
    return value

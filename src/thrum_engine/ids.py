"""Monotonic ULIDs: ids sort in creation order, so replaying the journal by id is replaying it in order."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


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
        return _encode(ms, 10) + _encode(_last_rand & ((1 << 80) - 1), 16)


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"


PREFIXES = ("msg", "thr", "ses", "evt", "cmd", "mon")


def is_id(value: str, prefix: str) -> bool:
    if not value.startswith(prefix + "_"):
        return False
    body = value[len(prefix) + 1:]
    return len(body) == 26 and all(c in _ALPHABET for c in body)

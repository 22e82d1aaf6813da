"""The engine lock: an exclusive flock held for the engine's lifetime (SIGKILL releases it)."""

from __future__ import annotations

import fcntl
import os


def acquire(path: str) -> int | None:
    """Take the lock; returns the open fd (keep it open) or None if another engine holds it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def held(path: str) -> bool:
    """True when some engine holds the lock right now."""
    if not os.path.exists(path):
        return False
    fd = acquire(path)
    if fd is None:
        return True
    os.close(fd)
    return False

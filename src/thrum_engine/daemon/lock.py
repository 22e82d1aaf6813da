"""The engine lock: an exclusive flock held for the engine's lifetime (SIGKILL releases it).

Two flocks: one on `thrum.lock` (what other tools and older versions look at) and one on an
anchor that cannot be deleted from under a running engine, the repo's git directory. Deleting
`thrum.lock` then frees nothing: a second engine still finds the anchor locked.
"""

from __future__ import annotations

import fcntl
import os

_anchors: dict[int, int] = {}  # lock-file fd -> anchor fd, both held until release()
_paths: dict[int, str] = {}  # lock-file fd -> its path, for restore()
_spares: dict[int, list[int]] = {}  # lock-file fd -> fds of lock files made again by restore()


def _flock_or_close(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    return True


def _open_anchor(anchor: str) -> int | None:
    try:
        return os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None


def acquire(path: str, anchor: str | None = None) -> int | None:
    """Take the lock; returns the open fd (keep it open, give it to release()) or None if another
    engine holds it."""
    afd = _open_anchor(anchor) if anchor else None
    if afd is not None and not _flock_or_close(afd):
        return None
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    except BaseException:
        if afd is not None:
            os.close(afd)
        raise
    if not _flock_or_close(fd):
        if afd is not None:
            os.close(afd)
        return None
    if afd is not None:
        _anchors[fd] = afd
    _paths[fd] = path
    return fd


def release(fd: int) -> None:
    os.close(fd)
    for extra in (_anchors.pop(fd, None), *_spares.pop(fd, [])):
        if extra is not None:
            os.close(extra)
    _paths.pop(fd, None)


def restore() -> None:
    """Make every lock file this process holds exist again, locked, when it was deleted or replaced
    (the anchor keeps other engines out meanwhile; tools that look at the file see it held again)."""
    for fd, path in list(_paths.items()):
        held = [fd, *_spares.get(fd, [])]
        try:
            st = os.stat(path)
            if any(os.fstat(h).st_ino == st.st_ino and os.fstat(h).st_dev == st.st_dev for h in held):
                continue
        except FileNotFoundError:
            pass
        except OSError:
            continue
        try:
            new = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:
            continue
        if _flock_or_close(new):
            _spares.setdefault(fd, []).append(new)


def held(path: str, anchor: str | None = None) -> bool:
    """True when some engine holds the lock right now (either of its two flocks)."""
    if anchor:
        afd = _open_anchor(anchor)
        if afd is not None:
            if not _flock_or_close(afd):
                return True
            os.close(afd)
    if not os.path.exists(path):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    if not _flock_or_close(fd):
        return True
    os.close(fd)
    return False


def holder(path: str, anchor: str | None = None) -> int | None:
    """The pid holding the lock, from the kernel's own table (/proc/locks), or None.

    Unlike the pid file this cannot be stale or forged: it names the process that owns the flock."""
    inodes = set()
    for p in (anchor, path):
        if p:
            try:
                st = os.stat(p)
            except OSError:
                continue
            inodes.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
    if not inodes:
        return None
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            rows = fh.read().splitlines()
    except OSError:
        return None
    for row in rows:
        f = row.split()
        if len(f) < 6 or f[1] != "FLOCK" or f[3] != "WRITE":
            continue
        try:
            major, minor, ino = f[5].split(":")
            key = (int(major, 16), int(minor, 16), int(ino))
            pid = int(f[4])
        except ValueError:
            continue
        if key in inodes and pid > 0:
            return pid
    return None


def pid_alive(pid: object) -> bool:
    """Whether `pid` names a live process (one of another user's counts: it exists). Anything
    that is not a positive int, as read from a file someone may have edited, is no process."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

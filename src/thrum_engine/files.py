"""Writing Thrum's own small files (identities, context, preambles, config) without following links.

A planted `<name>.json.tmp -> /elsewhere` symlink must not turn a routine identity write into a write
to any file the user owns, and an agent's context must not be readable by other users whatever the
umask. So every such write goes through `write_private`: a fresh temp file created with
O_CREAT|O_EXCL|O_NOFOLLOW (a link, or anything at that name, makes the create fail instead of being
followed), mode 0600 set explicitly, then an atomic `os.replace`, which renames over a link rather
than through it. The parent directory is made 0700 and must not itself be a symlink.

Stdlib only (`os`): the CLI writes context files on its light path.
"""

from __future__ import annotations

import os
import stat

FILE_MODE = 0o600
DIR_MODE = 0o700
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def private_dir(path: str) -> str:
    """Create `path` (and parents) and make the leaf 0700; refuses a leaf that is a symlink."""
    os.makedirs(path, mode=DIR_MODE, exist_ok=True)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise OSError(f"refusing to write into {path}: it is a symlink or not a directory")
    if stat.S_IMODE(st.st_mode) != DIR_MODE and st.st_uid == os.getuid():
        os.chmod(path, DIR_MODE)
    return path


def fsync_dir(path: str) -> None:
    """Make the names in `path` (a file just created or renamed there) survive a crash."""
    dfd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_private(path: str, data: str | bytes, *, durable: bool = False) -> None:
    """Atomically replace `path` with `data` as a 0600 file; never follows a symlink anywhere it writes.
    `durable`: the new content and its name are on disk when this returns (fsync of the file, then of
    the folder), for files whose state something else records (a synced shard's offset)."""
    directory = private_dir(os.path.dirname(os.path.abspath(path)))
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, _CREATE, FILE_MODE)
    try:
        try:
            os.fchmod(fd, FILE_MODE)  # the umask may have narrowed it; never widened
            write_all(fd, raw)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if durable:
            fsync_dir(directory)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_scratch(path: str, data: bytes) -> None:
    """A new 0600 file holding `data`, not fsynced: a snapshot another process reads at once and
    that is deleted right after (a crash loses nothing that matters). Never follows a symlink."""
    fd = os.open(path, _CREATE, FILE_MODE)
    try:
        write_fully(fd, data)
    finally:
        os.close(fd)


def write_fully(fd: int, data: bytes) -> None:
    """Every byte of `data` (`os.write` may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_all(fd: int, data: bytes) -> None:
    """Every byte of `data`, then fsync: what a file Thrum relies on after a crash needs."""
    write_fully(fd, data)
    os.fsync(fd)


def create_private(path: str, data: bytes, *, exclusive: bool = False) -> bool:
    """Write and fsync `path` in place as a 0600 file, never through a planted symlink; False when
    `exclusive` and it exists already (a quarantine copy made once)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_EXCL if exclusive else os.O_TRUNC)
    try:
        fd = os.open(path, flags, FILE_MODE)
    except FileExistsError:
        if exclusive:
            return False
        raise
    try:
        os.fchmod(fd, FILE_MODE)
        write_all(fd, data)
    finally:
        os.close(fd)
    return True


def link_problem(path: str) -> str | None:
    """Why `path`, a file Thrum opens by its name, cannot be Thrum's own (a symlink planted there, or
    not a regular file), or None (nothing there yet is fine). Checked before anything depends on it,
    so a refusal is one clear line up front instead of an ELOOP from the no-follow open halfway."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symlink: remove it (Thrum never writes its files through a link)"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file: remove it"
    return None


def open_append_private(path: str) -> int:
    """Open `path` for appending, created 0600, never through a symlink; an existing file of ours
    with looser bits (an older Thrum, git, a loose umask) is tightened. Returns the fd."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        st = os.fstat(fd)
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd

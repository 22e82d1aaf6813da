"""Line sources for monitors. Each yields text lines until stopped; none uses a shell."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import AsyncIterator, Callable

MINIMAL_ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR")


def minimal_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in MINIMAL_ENV_KEYS if k in os.environ}
    env.update(extra)
    return env


class LineSplitter:
    """Feeds text in any chunking, hands out whole lines (a partial last line waits)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.partial = ""

    def feed(self, text: str) -> list[str]:
        data = self.partial + text
        lines = data.split("\n")
        self.partial = lines.pop()
        if len(self.partial) > self.cap * 4:  # a runaway line without newline: emit what we have
            lines.append(self.partial)
            self.partial = ""
        return [ln.rstrip("\r")[: self.cap] for ln in lines]


async def command_output(
    argv: list[str], cwd: str, env: dict[str, str], on_start: Callable[[asyncio.subprocess.Process], None]
) -> AsyncIterator[str]:
    """stdout and stderr text of one run of `argv` (exec'd directly, never through a shell), in chunks."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        limit=1 << 20,
    )
    on_start(proc)
    assert proc.stdout is not None
    try:
        while True:
            chunk = await proc.stdout.read(65536)
            if not chunk:
                break
            yield chunk.decode("utf-8", "replace")
        await proc.wait()  # the real exit status (killing a finished child would lose it)
    finally:
        if proc.returncode is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        await proc.wait()


def inside(path: str, root: str) -> bool:
    """`path` is `root` or below it (both already resolved)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


class PathEscaped(Exception):
    """The watched path no longer leads to a regular file inside the allowed area (a symlink was
    swapped in, or a directory on the way was): the rule must stop rather than read it."""


class FileFollower:
    """Appended lines of a file, following rotation (a new inode, or truncation) like `tail -F`.

    The path was resolved and checked when the rule was made, but files move: every read checks
    again that it still resolves inside `root` (None: the rule was allowed outside), opens it
    with O_NOFOLLOW (the stored path is already resolved, so a symlink there is a swap) and checks
    what was actually opened, so a later `ln -s /etc/shadow x.log` stops the rule instead of
    streaming the outside file.
    """

    def __init__(self, path: str, cap: int, root: str | None = None) -> None:
        self.path = path
        self.root = root
        self.split = LineSplitter(cap)
        self.inode: int | None = None
        self.offset = 0
        try:
            st = os.lstat(path)
            self.inode, self.offset = st.st_ino, st.st_size  # only lines appended from now on
        except FileNotFoundError:
            pass

    def _check(self, real: str) -> None:
        if self.root is not None and not inside(real, self.root):
            raise PathEscaped(f"{self.path} now resolves to {real}, outside {self.root}")

    def _open(self) -> int | None:
        self._check(os.path.realpath(self.path))
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathEscaped(
                    f"{self.path} was replaced by a symlink to {os.path.realpath(self.path)}"
                ) from None
            raise
        try:
            try:
                opened = os.readlink(f"/proc/self/fd/{fd}")  # what was opened, not what the name says now
            except OSError:
                opened = None
            if opened is not None and opened.startswith("/"):
                self._check(opened)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PathEscaped(f"{self.path} is no longer a regular file")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def read_new(self) -> list[str]:
        """New whole lines since the last read. Blocking file IO: the engine calls it in a thread."""
        fd = self._open()
        if fd is None:
            return []
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if st.st_ino != self.inode or st.st_size < self.offset:
                self.inode, self.offset = st.st_ino, 0  # rotated or truncated: the new file from its start
                self.split.partial = ""
            if st.st_size == self.offset:
                return []
            fh.seek(self.offset)
            data = fh.read(st.st_size - self.offset)
        self.offset += len(data)
        return self.split.feed(data.decode("utf-8", "replace"))

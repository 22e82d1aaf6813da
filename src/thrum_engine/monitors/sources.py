"""Line sources for monitors. Each yields text lines until stopped; none uses a shell."""

from __future__ import annotations

import asyncio
import os
from typing import AsyncIterator, Callable

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


async def command_output(argv: list[str], cwd: str, env: dict[str, str],
                         on_start: Callable[[asyncio.subprocess.Process], None]) -> AsyncIterator[str]:
    """stdout and stderr text of one run of `argv` (exec'd directly, never through a shell), in chunks."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True, limit=1 << 20)
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


class FileFollower:
    """Appended lines of a file, following rotation (a new inode, or truncation) like `tail -F`."""

    def __init__(self, path: str, cap: int) -> None:
        self.path = path
        self.split = LineSplitter(cap)
        self.inode: int | None = None
        self.offset = 0
        try:
            st = os.stat(path)
            self.inode, self.offset = st.st_ino, st.st_size  # only lines appended from now on
        except FileNotFoundError:
            pass

    def read_new(self) -> list[str]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        if st.st_ino != self.inode or st.st_size < self.offset:
            self.inode, self.offset = st.st_ino, 0  # rotated or truncated: the new file from its start
            self.split.partial = ""
        if st.st_size == self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(st.st_size - self.offset)
        self.offset += len(data)
        return self.split.feed(data.decode("utf-8", "replace"))

    async def lines(self, stop: asyncio.Event) -> AsyncIterator[str]:
        from watchfiles import awatch

        parent = os.path.dirname(self.path) or "."
        name = os.path.basename(self.path)

        def ours(change, path: str) -> bool:
            return os.path.basename(path) == name

        for line in self.read_new():
            yield line
        # yield_on_timeout: a stat a second closes the gap between the first read and the watcher
        # being armed (a line appended in between would otherwise wait for the next write).
        async for _changes in awatch(parent, watch_filter=ours, debounce=50, step=10, stop_event=stop,
                                     rust_timeout=1000, yield_on_timeout=True, recursive=False):
            for line in self.read_new():
                yield line

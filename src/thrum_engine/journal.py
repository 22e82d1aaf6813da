"""The journal: append-only per-author JSONL shards, the source of truth.

One shard per author so that git merges of the sync branch never conflict.
All methods block (file IO + fsync): the engine calls them from one writer
thread, never from the event loop.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

SUFFIX = ".jsonl"


def shard_name(author: str) -> str:
    """Shard file stem for an author; `monitor:ci` -> `monitor-ci`."""
    return author.replace(":", "-").replace("/", "-")


def parse_event(raw: bytes) -> dict | None:
    """One complete journal line -> its event, or None when it is not one (unreadable)."""
    try:
        ev = json.loads(raw)
    except ValueError:
        return None
    return ev if isinstance(ev, dict) and "id" in ev else None


def parse_lines(lines: list[bytes]) -> tuple[list[dict], int]:
    """Complete journal lines -> (events, unreadable lines)."""
    events = [ev for ev in map(parse_event, lines) if ev is not None]
    return events, len(lines) - len(events)


@dataclass
class TornTail:
    shard: str
    offset: int
    length: int
    saved_to: str


class Journal:
    def __init__(self, directory: str, quarantine_dir: str) -> None:
        self.dir = directory
        self.quarantine_dir = quarantine_dir
        self._fds: dict[str, int] = {}
        self._sizes: dict[str, int] = {}

    # -- start-up --
    def open(self) -> list[TornTail]:
        """Create the directory and set aside any torn final line left by a crash."""
        os.makedirs(self.dir, exist_ok=True)
        torn = []
        for shard in self.shards():
            report = self._repair_tail(shard)
            if report:
                torn.append(report)
        return torn

    def _repair_tail(self, shard: str) -> TornTail | None:
        path = self.path(shard)
        size = os.path.getsize(path)
        if size == 0:
            return None
        with open(path, "rb") as fh:
            # Walk back to the last newline; the bytes after it are a torn write.
            block = 65536
            pos = size
            tail_start = None
            while pos > 0:
                start = max(0, pos - block)
                fh.seek(start)
                chunk = fh.read(pos - start)
                idx = chunk.rfind(b"\n")
                if idx >= 0:
                    tail_start = start + idx + 1
                    break
                pos = start
            if tail_start is None:
                tail_start = 0
            if tail_start == size:
                return None
            fh.seek(tail_start)
            tail = fh.read()
        os.makedirs(self.quarantine_dir, exist_ok=True)
        saved = os.path.join(self.quarantine_dir, f"{shard}.{int(time.time() * 1000)}.torn")
        with open(saved, "wb") as out:
            out.write(tail)
            out.flush()
            os.fsync(out.fileno())
        with open(path, "r+b") as fh:
            fh.truncate(tail_start)
            fh.flush()
            os.fsync(fh.fileno())
        return TornTail(shard, tail_start, len(tail), saved)

    # -- reading --
    def path(self, shard: str) -> str:
        return os.path.join(self.dir, shard + SUFFIX)

    def shards(self) -> list[str]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX))

    def size(self, shard: str) -> int:
        try:
            return os.path.getsize(self.path(shard))
        except FileNotFoundError:
            return 0

    def read_events(self, shard: str, offset: int = 0) -> tuple[list[dict], int, int]:
        """All complete events after `offset`: (events, end offset, unreadable lines). The fast path
        for start-up catch-up and rebuild: one read, one split, `json.loads` per line."""
        with open(self.path(shard), "rb") as fh:
            fh.seek(offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a torn tail (no newline) is not ours to apply
        events, corrupt = parse_lines(data[:end].split(b"\n")[:-1] if end else [])
        return events, offset + end, corrupt

    # -- writing --
    def _fd(self, shard: str) -> int:
        fd = self._fds.get(shard)
        if fd is None:
            path = self.path(shard)
            existed = os.path.exists(path)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if not existed:
                dfd = os.open(self.dir, os.O_RDONLY)
                try:
                    os.fsync(dfd)  # the new file's name must survive a crash too
                finally:
                    os.close(dfd)
            self._fds[shard] = fd
            self._sizes[shard] = os.fstat(fd).st_size
        return fd

    def append(self, lines_by_shard: dict[str, list[bytes]]) -> dict[str, int]:
        """Write and fsync every shard's lines; return each shard's new end offset.

        On failure the shards touched are truncated back, so a failed batch
        leaves no half-written line for the next start to quarantine.
        """
        done: dict[str, int] = {}
        try:
            for shard, lines in lines_by_shard.items():
                fd = self._fd(shard)
                done[shard] = self._sizes[shard]
                data = memoryview(b"".join(lines))
                while data:
                    n = os.write(fd, data)
                    data = data[n:]
            for shard in lines_by_shard:
                os.fsync(self._fds[shard])
        except OSError:
            for shard, start in done.items():
                try:
                    os.ftruncate(self._fds[shard], start)
                except OSError:
                    pass
            raise
        for shard in lines_by_shard:
            self._sizes[shard] = os.fstat(self._fds[shard]).st_size
        return {shard: self._sizes[shard] for shard in lines_by_shard}

    def close(self) -> None:
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()

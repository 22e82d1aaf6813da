"""The journal: append-only per-author JSONL shards, the source of truth.

One shard per author so that git merges of the sync branch never conflict.
All methods block (file IO + fsync): the engine calls them from one writer
thread, never from the event loop.

Shards, quarantined lines and the directories holding them are private to the
user (0600 files, 0700 directories) whatever the umask: they hold every message.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from thrum_engine import fastjson
from thrum_engine.files import (
    create_private,
    fsync_dir,
    open_append_private,
    private_dir,
    write_all,
    write_fully,
    write_private,
)

SUFFIX = ".jsonl"
# A line longer than this is refused whatever it holds: a body is capped far below it (even written
# as escapes), so only a broken or hostile writer makes one.
MAX_LINE_BYTES = 16 * 1024 * 1024
# Shard fds kept open between batches. One shard per author means thousands of shards on a busy
# repo; past this many the least recently written is closed (reopening costs one open()).
MAX_OPEN_SHARDS = 32
# A batch from several authors fsyncs their shards at once, from this many threads: the disk's
# flushes overlap (16 shards on this machine's ext4: 2.25 ms one after another, 0.96 ms at once;
# 16 clients as 16 agents +42 % msgs/s, bench/README, session 14).
SYNC_THREADS = 16
REJECTED_INDEX = "rejected.jsonl"


CLONE_SEP = "@"
# What an event check returns for a line another shard already holds (see
# `store.validate.EventCheck`): skipped, neither applied twice nor set aside.
COPY = "copy"
# Beside the clone id file: the inode of the folder holding it and the ids this clone wrote under before.
CLONE_RECORD = "clone.json"


def _read_clone_file(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as fh:
            value = fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return value if value and value.isalnum() else None


def _new_clone_id() -> str:
    return secrets.token_hex(4)


@dataclass
class CloneIdentity:
    """This clone's id and the ids it wrote under before (a copy of the folder, or a move away from an
    id another clone turned out to share)."""

    id: str
    former: list[str] = field(default_factory=list)
    minted: str = ""  # why a new id was made at this start ("" when the kept one stands)


def clone_identity(path: str) -> CloneIdentity:
    """This clone's id (kept in `.thrum/var/clone`, never synced): it names the shards this machine
    writes, so no two clones may share it. A copy of the repository carries the file along (cp -a,
    rsync, a restored backup): `clone.json` beside it records the inode of `.thrum/var`, and a
    folder whose inode differs is a copy, which takes an id of its own and keeps the old one as
    former (its shards are then another writer's, merged like any other clone's). Two copies that
    share an inode (a disk image) are told apart by sync instead (`Journal.move_clone`)."""
    var = os.path.dirname(path)
    record = os.path.join(var, CLONE_RECORD)
    kept = _read_clone_file(path)
    info: dict = {}
    try:
        with open(record, encoding="utf-8") as fh:
            loaded = json.load(fh)
        info = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        pass
    private_dir(var)
    here = _place(var)
    former = [f for f in info.get("former", []) if isinstance(f, str) and f.isalnum() and f != kept]
    minted = ""
    if kept is None:
        kept, minted = _new_clone_id(), "new"
    elif info.get("id") == kept and _moved(info, here):
        former.append(kept)
        kept, minted = _new_clone_id(), "copy"
    if (
        minted
        or info.get("id") != kept
        or info.get("inode") != here["inode"]
        or info.get("path") != here["path"]
    ):
        _save_clone(path, CloneIdentity(kept, former), here)
    return CloneIdentity(kept, former, minted)


def _place(var: str) -> dict:
    return {"inode": os.stat(var).st_ino, "path": os.path.realpath(var)}


def _moved(info: dict, here: dict) -> bool:
    """A copy: another folder (inode) at another path. Either alone is not: a rename keeps the inode,
    and some filesystems (overlayfs) give a folder a new inode at each mount."""
    if info.get("inode") is None or info.get("path") is None:
        return False  # recorded by a Thrum that kept no place: trusted
    return info["inode"] != here["inode"] and info["path"] != here["path"]


def _save_clone(path: str, ident: CloneIdentity, place: dict) -> None:
    """The record first, then the id file (what an older Thrum reads); both durable. A crash between
    the two leaves the old id in the file and in the record's former ids, never an id forgotten."""
    var = os.path.dirname(path)
    record = {"id": ident.id, "former": ident.former, **place}
    write_private(os.path.join(var, CLONE_RECORD), json.dumps(record, sort_keys=True) + "\n", durable=True)
    write_private(path, ident.id + "\n", durable=True)


def shard_name(author: str) -> str:
    """Shard file stem for an author; `monitor:ci` -> `monitor-ci`."""
    return author.replace(":", "-").replace("/", "-")


def parse_event(raw: bytes) -> dict | None:
    """One complete journal line -> its event, or None when it is not one (unreadable)."""
    try:
        ev = fastjson.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        return None
    return ev if isinstance(ev, dict) and "id" in ev else None


def parse_event_record(raw: bytes) -> dict | None:
    try:
        rec = json.loads(raw)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def parse_lines(lines: list[bytes]) -> tuple[list[dict], int]:
    """Complete journal lines -> (events, unreadable lines)."""
    events = [ev for ev in map(parse_event, lines) if ev is not None]
    return events, len(lines) - len(events)


@dataclass
class Rejected:
    """A complete journal line that cannot be applied. It stays in its shard (the journal is append-only
    and synced), is copied to the quarantine once, and is skipped by every start-up and rebuild."""

    shard: str
    offset: int
    length: int
    reason: str
    unreadable: bool = False  # not a JSON event at all, as opposed to an event of the wrong shape
    raw: bytes = field(default=b"", repr=False)

    def record(self, saved_to: str) -> dict:
        return {
            "shard": self.shard,
            "offset": self.offset,
            "length": self.length,
            "reason": self.reason,
            "saved_to": saved_to,
        }


@dataclass
class ShardRead:
    """What `Journal.read_events` found past an offset."""

    events: list[dict]
    origins: list[tuple[int, int]]  # (offset, length) of each event's line
    end: int
    rejected: list[Rejected]


@dataclass
class TornTail:
    shard: str
    offset: int
    length: int
    saved_to: str


class Journal:
    def __init__(self, directory: str, quarantine_dir: str, clone_file: str | None = None) -> None:
        self.dir = directory
        self.quarantine_dir = quarantine_dir
        # Shards are per author *and clone* (`alice@3f9c01aa.jsonl`) so that every shard file has one
        # writer across all machines and a sync merge never meets a file changed on both sides.
        self.clone_file = clone_file
        self.clone: str | None = None
        self.former: list[str] = []  # ids this clone wrote under before (see `clone_identity`)
        self.minted = ""  # why this start took a new id ("copy", "new"), for the start-up log
        self._fds: OrderedDict[str, int] = OrderedDict()  # an LRU of at most MAX_OPEN_SHARDS
        self._sizes: dict[str, int] = {}
        self._last_starts: dict[str, int] = {}
        self._syncers: ThreadPoolExecutor | None = None  # started by the first batch of two shards
        self._closed = False

    # -- start-up --
    def open(self) -> list[TornTail]:
        """Create the directory and set aside any torn final line left by a crash."""
        private_dir(self.dir)
        self._closed = False
        if self.clone_file is not None:
            ident = clone_identity(self.clone_file)
            self.clone, self.former, self.minted = ident.id, ident.former, ident.minted
            self._qualify_legacy_shards()
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
        private_dir(self.quarantine_dir)
        saved = os.path.join(self.quarantine_dir, f"{shard}.{int(time.time() * 1000)}.torn")
        create_private(saved, tail)
        with open(path, "r+b") as fh:
            fh.truncate(tail_start)
            fh.flush()
            os.fsync(fh.fileno())
        return TornTail(shard, tail_start, len(tail), saved)

    def _qualify_legacy_shards(self) -> None:
        """Shards written before sync (`alice.jsonl`) are this clone's: renamed to `alice@<clone>.jsonl`.
        Their stored offsets no longer match a name, so the next catch-up re-reads them from the start;
        applying is idempotent by event id, so that costs one read and changes nothing."""
        for shard in self.shards():
            if CLONE_SEP in shard:
                continue
            target = self.path(f"{shard}{CLONE_SEP}{self.clone}")
            if not os.path.exists(target):
                os.rename(self.path(shard), target)

    def is_ours(self, origin: str) -> bool:
        """`origin` (a registration's or a schedule's clone) is this clone, under its id now or a former
        one, or predates sync."""
        return not origin or origin == self.clone or origin in self.former

    def fires(self, origin: str) -> bool:
        """Whether this clone runs what `origin` created (a schedule's fires, an ask's reminders): under
        its id now only. A former id is shared with the clone this one was copied from, or moved away
        from, which still runs them: never twice."""
        return not origin or origin == self.clone

    def move_clone(self) -> tuple[str, str]:
        """Take a new clone id (another clone writes under this one: sync found its lines in our own
        shards); the old one becomes former. Later lines go to shards of the new name. The caller
        holds the writer's lock, so no batch is between choosing its shards and writing them."""
        if self.clone_file is None or self.clone is None:
            raise RuntimeError("this journal has no clone id")
        old, new = self.clone, _new_clone_id()
        former = [*self.former, old]
        _save_clone(self.clone_file, CloneIdentity(new, former), _place(os.path.dirname(self.clone_file)))
        self.clone, self.former = new, former
        for fd in self._fds.values():
            os.close(fd)  # every open shard is one of the old name
        self._fds.clear()
        self._sizes.clear()
        return old, new

    def shard_for(self, author: str) -> str:
        """The shard this clone appends `author`'s events to."""
        stem = shard_name(author)
        return f"{stem}{CLONE_SEP}{self.clone}" if self.clone else stem

    # -- reading --
    def path(self, shard: str) -> str:
        return os.path.join(self.dir, shard + SUFFIX)

    def shards(self) -> list[str]:
        """Shard names: regular files only. A symlink (which a synced branch could carry) is never read,
        so no file outside the journal is ever parsed, quarantined or appended to."""
        try:
            entries = list(os.scandir(self.dir))
        except FileNotFoundError:
            return []
        return sorted(
            e.name[: -len(SUFFIX)]
            for e in entries
            if e.name.endswith(SUFFIX) and e.is_file(follow_symlinks=False)
        )

    def size(self, shard: str) -> int:
        try:
            return os.path.getsize(self.path(shard))
        except FileNotFoundError:
            return 0

    def read_events(
        self, shard: str, offset: int = 0, check: Callable[[dict, bytes], str | None] | None = None
    ) -> ShardRead:
        """Every complete line after `offset`, parsed, and checked by `check` (the reason an event cannot
        be applied, or None). Unreadable lines and lines `check` refuses are returned as rejected."""
        with open(self.path(shard), "rb") as fh:
            fh.seek(offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a torn tail (no newline) is not ours to apply
        events: list[dict] = []
        origins: list[tuple[int, int]] = []
        rejected: list[Rejected] = []
        pos = offset
        for raw in data[:end].split(b"\n")[:-1] if end else ():
            n = len(raw) + 1
            if n > MAX_LINE_BYTES:
                rejected.append(
                    Rejected(shard, pos, n, f"a line of {n} bytes (over {MAX_LINE_BYTES})", True, raw)
                )
            else:
                ev = parse_event(raw)
                reason = "not a JSON event" if ev is None else check(ev, raw) if check is not None else None
                if reason is COPY:
                    pass
                elif reason is None:
                    events.append(ev)  # type: ignore[arg-type]
                    origins.append((pos, n))
                else:
                    rejected.append(Rejected(shard, pos, n, reason, ev is None, raw))
            pos += n
        return ShardRead(events, origins, offset + end, rejected)

    def read_at(self, shard: str, offset: int, length: int) -> bytes:
        """The line of `length` bytes (newline included) at `offset`, without its newline."""
        with open(self.path(shard), "rb") as fh:
            fh.seek(offset)
            return fh.read(length)[:-1]

    def set_aside(self, rejected: list[Rejected]) -> list[dict]:
        """Copy rejected lines to the quarantine and record them (shard, offset, reason); a line already
        set aside by an earlier start or rebuild is not recorded twice. Returns the new records."""
        if not rejected:
            return []
        private_dir(self.quarantine_dir)
        records = []
        for r in rejected:
            saved = os.path.join(self.quarantine_dir, f"{r.shard}.{r.offset}.rejected")
            if create_private(saved, r.raw + b"\n", exclusive=True):
                records.append(r.record(saved))
        if records:
            index = os.path.join(self.quarantine_dir, REJECTED_INDEX)
            fd = open_append_private(index)
            try:
                write_all(fd, b"".join((json.dumps(rec, sort_keys=True) + "\n").encode() for rec in records))
            finally:
                os.close(fd)
        return records

    def rejected_records(self) -> list[dict]:
        """Every line ever set aside as rejected (see `set_aside`)."""
        try:
            with open(os.path.join(self.quarantine_dir, REJECTED_INDEX), "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return []
        return [ev for ev in map(parse_event_record, data.splitlines()) if ev is not None]

    # -- writing --
    def _fd(self, shard: str) -> int:
        fd = self._fds.get(shard)
        if fd is not None:
            self._fds.move_to_end(shard)
            return fd
        while len(self._fds) >= MAX_OPEN_SHARDS:
            _old, old_fd = self._fds.popitem(last=False)
            os.close(old_fd)  # not one of this write group's shards (see `append`): nothing pending
        path = self.path(shard)
        existed = os.path.exists(path)
        fd = open_append_private(path)  # 0600 (one an older Thrum or git made looser is tightened)
        try:
            st = os.fstat(fd)
            if not existed:
                fsync_dir(self.dir)  # the new file's name must survive a crash too
        except BaseException:
            os.close(fd)
            raise
        self._fds[shard] = fd
        self._sizes[shard] = st.st_size
        return fd

    def append(self, lines_by_shard: dict[str, list[bytes]]) -> dict[str, int]:
        """Write and fsync every shard's lines; return each shard's new end offset.

        Up to MAX_OPEN_SHARDS shards at a time are written, then fsynced together: a batch from more
        authors never holds more fds than that, and a group's fsyncs follow all its writes (a write
        and an fsync per shard in turn took ~15 % longer for 40 shards in a micro-run here: 6.6
        against 5.6 ms). On failure the shards touched are truncated
        back, so a failed batch leaves no half-written line for the next start to quarantine.
        """
        done: dict[str, int] = {}
        self._last_starts = {}
        shards = list(lines_by_shard)
        try:
            for at in range(0, len(shards), MAX_OPEN_SHARDS):
                group = [(shard, self._fd(shard)) for shard in shards[at : at + MAX_OPEN_SHARDS]]
                for shard, fd in group:
                    done[shard] = self._sizes[shard]
                    write_fully(fd, b"".join(lines_by_shard[shard]))
                self._fsync_all([fd for _shard, fd in group])
                for shard, fd in group:
                    self._sizes[shard] = os.fstat(fd).st_size
        except BaseException:  # an OSError from the disk, or anything else: no line is left behind
            self._truncate(done)
            raise
        self._last_starts = done
        return {shard: self._sizes[shard] for shard in lines_by_shard}

    def _fsync_all(self, fds: list[int]) -> None:
        """fsync every fd; raise the first failure only once all have returned (the caller then
        truncates the shards, and none is still being synced). A closed journal, or one whose threads
        cannot take the work (the interpreter exiting, no thread to start), syncs them in turn."""
        pending: list[Future] = []
        rest = fds
        if len(fds) > 1 and not self._closed:
            if self._syncers is None:
                self._syncers = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="thrum-fsync")
            try:
                for fd in fds:
                    pending.append(self._syncers.submit(os.fsync, fd))
            except RuntimeError:  # cannot schedule (shut down, or exiting): the rest on this thread
                pass
            rest = fds[len(pending) :]
        errors: list[BaseException] = []
        for fd in rest:
            try:
                os.fsync(fd)
            except OSError as exc:
                errors.append(exc)
        errors += [exc for exc in (f.exception() for f in pending) if exc is not None]
        if errors:
            raise errors[0]

    def undo_last_append(self) -> None:
        """Take the last `append` back out of the journal (its batch failed after the fsync).

        Safe because one thread writes the journal and nothing reads a batch before it is
        acknowledged. Raises OSError when a shard cannot be truncated back.
        """
        starts, self._last_starts = self._last_starts, {}
        errors = self._truncate(starts)
        if errors:
            raise errors[0]

    def _truncate(self, starts: dict[str, int]) -> list[OSError]:
        """Truncate shards back to `starts` by path (a shard's fd may have been evicted), then fsync."""
        errors = []
        for shard, start in starts.items():
            try:
                os.truncate(self.path(shard), start)
                self._sizes[shard] = start
                fd = self._fds.get(shard)
                if fd is not None:
                    os.fsync(fd)
                else:  # its fd was evicted by a later group of the batch: the cut is synced all the same
                    evicted = os.open(self.path(shard), os.O_WRONLY)
                    try:
                        os.fsync(evicted)
                    finally:
                        os.close(evicted)
            except OSError as exc:
                errors.append(exc)
                self._sizes.pop(shard, None)  # unknown now: the next open re-reads it
                fd = self._fds.pop(shard, None)
                if fd is not None:
                    os.close(fd)
        return errors

    def open_shards(self) -> int:
        """Shard fds open right now (at most MAX_OPEN_SHARDS)."""
        return len(self._fds)

    def close(self) -> None:
        self._closed = True  # a later append (none is expected) syncs on its own thread
        syncers, self._syncers = self._syncers, None
        if syncers is not None:
            syncers.shutdown()
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()

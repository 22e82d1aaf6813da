"""The projection database: one write connection, owned by its own thread (`WriteThread`: the
engine's batches and every local write run on it as callables, datasette's `execute_write_fn`
shape), one reader connection (aiosqlite) for queries, and one more read connection on the event
loop's own thread for the few small, bounded reads on the hot path (`Store.now`), over one WAL file.

The database and its -wal/-shm files are 0600 whatever the umask (SQLite gives
-wal and -shm the main file's mode, so the main file is created first, by us).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any, TypeVar

import aiosqlite

from thrum_engine.errors import SchemaTooNew
from thrum_engine.files import FILE_MODE, private_dir
from thrum_engine.store import apply as projector
from thrum_engine.store.lines import LineRejected, ops_for_lines
from thrum_engine.store.schema import (
    LOCAL,
    PROJECTS_EVERY_EVENT_SINCE,
    REBUILD_DUE,
    RECOUNTS,
    SCHEMA_VERSION,
    migration_sql,
)
from thrum_engine.store.validate import EventCheck

T = TypeVar("T")
log = logging.getLogger("thrum.store")


ROWS_PER_INSERT = 64

# WAL checkpoints (bench/README, sessions 18). SQLite's own runs inside the commit that fills the WAL
# to 1,000 pages and, with synchronous=NORMAL, fsyncs the WAL and the database there: the sends in
# that batch wait for it (a third to a half of a send's projection cost in SQLite alone; the p99 of
# one agent's acks). A `Checkpointer` on its own connection and thread copies the WAL back this
# long after the writer changed something, PASSIVE, so the writer never waits for it; SQLite's own
# stays as a backstop, at this many pages, should it fall behind or fail.
CHECKPOINT_AFTER_SECONDS = 0.1
CHECKPOINT_BACKSTOP_PAGES = 10_000


def _insert_rows(conn: sqlite3.Connection, sql: str, params: list[tuple]) -> None:
    """A long run of one `INSERT OR IGNORE ... VALUES (?, ...)` as multi-row statements: one
    statement step per ROWS_PER_INSERT rows instead of one per row (a rebuild's inserts take ~30%
    less time). Rows are still inserted in order, each conflict ignored on its own."""
    whole = len(params) // ROWS_PER_INSERT * ROWS_PER_INSERT
    if whole:
        head, sep, values = sql.rpartition(" VALUES ")
        multi = head + sep + ",".join([values] * ROWS_PER_INSERT)
        flat = list(chain.from_iterable(params[:whole]))
        width = ROWS_PER_INSERT * len(params[0])
        conn.executemany(multi, (flat[i : i + width] for i in range(0, len(flat), width)))
    conn.executemany(sql, params[whole:])


def _transaction(
    conn: sqlite3.Connection,
    runs: list[tuple[str, list[tuple]]],
    offsets: dict[str, int],
    *,
    multirow: bool = False,
) -> None:
    """The runs and the shard offsets they reach, committed together."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, params in runs:
            if multirow and len(params) >= ROWS_PER_INSERT and sql.startswith("INSERT OR IGNORE INTO "):
                _insert_rows(conn, sql, params)
            else:
                conn.executemany(sql, params)
        conn.executemany(
            "INSERT INTO shard_offsets(shard, offset) VALUES (?, ?)"
            " ON CONFLICT(shard) DO UPDATE SET offset=excluded.offset",
            list(offsets.items()),
        )
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (SQLITE_FULL, SQLITE_IOERR) may already have rolled back: a second error
        # from ROLLBACK must not replace the real one ("cannot rollback - no transaction is active").
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        raise


def _pragmas(bulk: bool) -> list[str]:
    return [
        "PRAGMA journal_mode=" + ("MEMORY" if bulk else "WAL"),
        # The journal is fsynced before we get here; a lost projection commit is replayed from offsets.
        "PRAGMA synchronous=" + ("OFF" if bulk else "NORMAL"),
        "PRAGMA busy_timeout=5000",
        "PRAGMA foreign_keys=OFF",
    ]


async def _connect(path: str, *, bulk: bool = False) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        conn.row_factory = aiosqlite.Row
        for pragma in _pragmas(bulk):
            await conn.execute(pragma)
    except BaseException:
        # aiosqlite's worker thread is not a daemon thread: left running, it keeps the process
        # alive after a failed start (a hung engine per CLI call on an unreadable file).
        await conn.close()
        raise
    return conn


# The loop's own read connection waits this long for a lock (WAL readers only meet one while the
# WAL index is rebuilt, e.g. after a crash): past it, the read goes to the reader thread instead.
NOW_BUSY_MS = 20


def _connect_now(path: str) -> sqlite3.Connection:
    """The read connection used on the event loop's thread: no thread hop per query (a hop and the
    wake-ups around it were most of a small read's latency, and all of its tail on a loaded machine)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={NOW_BUSY_MS}")
        conn.execute("PRAGMA query_only=1")
    except BaseException:
        conn.close()
        raise
    return conn


def _settle(fut: asyncio.Future, result: object, error: BaseException | None) -> None:
    if fut.cancelled():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


class WriteThread:
    """The one write connection and the thread that owns it: `run(fn)` calls `fn(connection)` there,
    in submission order, and resolves with its result or its exception.

    A batch is a dozen statements; awaiting each one as its own hop to a thread cost ~70 us apiece
    and dominated commit time, so whole transactions are one callable. Datasette's shape
    (`Database.execute_write_fn`), over stdlib sqlite3 only. A daemon thread: one left behind by a
    failed start never keeps the process alive; `close` still ends it and closes the connection.
    """

    _CLOSE = object()

    def __init__(self, path: str, *, bulk: bool = False, on_change: Callable[[], None] | None = None) -> None:
        self.path = path
        self.bulk = bulk
        self.on_change = on_change  # called on this thread after a job that changed rows
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def open(self) -> None:
        """Start the thread and open the connection there (its error is raised here)."""
        self._thread = threading.Thread(target=self._serve, name="thrum-sqlite-writer", daemon=True)
        self._thread.start()
        try:
            await self.run(lambda conn: None)
        except BaseException:
            await self.close()
            raise

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue `fn`; the future resolves once it ran (a plain function, not a coroutine: the
        hop is the write path's whole cost, and a coroutine frame less is measurable)."""
        if self._thread is None:
            raise sqlite3.ProgrammingError("the write connection is closed")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._jobs.put((fn, loop, fut))
        return fut

    async def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._jobs.put((self._CLOSE, loop, done))
        await done
        thread.join()  # it has closed the connection and returns at once

    def _serve(self) -> None:
        conn: sqlite3.Connection | None = None
        failed: BaseException | None = None
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.row_factory = sqlite3.Row
            for pragma in _pragmas(self.bulk):
                conn.execute(pragma)
            if self.on_change is not None:
                conn.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_BACKSTOP_PAGES}")
        except sqlite3.Error as exc:
            failed = exc
        changes = conn.total_changes if conn is not None else 0
        while True:
            if self.on_change is not None and conn is not None and conn.total_changes != changes:
                changes = conn.total_changes
                self.on_change()
            fn, loop, fut = self._jobs.get()
            result: object = None
            error: BaseException | None = None
            if fn is self._CLOSE:
                if conn is not None:
                    conn.close()
            elif failed is not None:
                error = failed
            else:
                try:
                    result = fn(conn)
                except BaseException as exc:  # noqa: BLE001 -- handed to the awaiting caller, which raises it
                    error = exc
            try:
                loop.call_soon_threadsafe(_settle, fut, result, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass
            if fn is self._CLOSE:
                return


class Checkpointer:
    """Copies the WAL back into the database file from a connection and thread of its own, a moment
    after the writer changed something (`changed`, from the write thread): PASSIVE, so it never
    waits for a reader or the writer, and neither waits for it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._due = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0  # run so far (read by tests and benches)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="thrum-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def changed(self) -> None:
        self._due.set()

    def stop(self) -> None:
        """Called before the write connection closes, so that one is the last and SQLite removes
        the WAL as it closes."""
        self._stop.set()
        self._due.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _serve(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            log.warning("no checkpoint thread (SQLite's own checkpoints go on): %s", exc)
            return
        try:
            while not self._stop.is_set():
                self._due.wait()
                if self._stop.wait(CHECKPOINT_AFTER_SECONDS):  # what comes in the meantime joins it
                    return
                self._due.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # a busy or full disk: the next one, or the backstop
                    log.debug("checkpoint failed: %s", exc)
                    continue
                self.checkpoints += 1
        finally:
            conn.close()


def make_private_db(path: str) -> None:
    """Create the database file 0600 before SQLite does (its -wal and -shm copy that mode) and
    tighten files an older Thrum left under a looser umask."""
    private_dir(os.path.dirname(path))
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE))
    for suffix in ("", "-wal", "-shm"):
        try:
            if os.stat(path + suffix).st_mode & 0o777 != FILE_MODE:
                os.chmod(path + suffix, FILE_MODE)
        except FileNotFoundError:
            pass


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION; refuse a database from a newer Thrum."""
    conn.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"database schema v{version} is newer than this Thrum (v{SCHEMA_VERSION}); upgrade thrum"
        )
    start = version
    while version < SCHEMA_VERSION:
        conn.executescript("BEGIN;" + migration_sql(conn, version) + ";COMMIT;")
        version += 1
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('schema_version', ?)"
            " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (str(version),),
        )
    if 0 < start < PROJECTS_EVERY_EVENT_SINCE:  # 0: a new store, built from the journal as it opens
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)",
            (REBUILD_DUE, f"events a Thrum of schema v{start} could not project (upgraded to v{version})"),
        )
    return version


def _defer_indexes(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """Drop the indexes and triggers (a bulk load builds them once at the end); returns them."""
    deferred = [
        (r[0], r[1], r[2])
        for r in conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger')"
            " AND sql IS NOT NULL ORDER BY type"
        )
    ]
    for kind, name, _sql in deferred:
        conn.execute(f"DROP {kind.upper()} {name}")
    return deferred


def _purged_before(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'purged_before'").fetchone()
    return None if row is None else row[0]


class Store:
    def __init__(self, path: str) -> None:
        self.path = path
        self.w: WriteThread | None = None
        self.checkpointer: Checkpointer | None = None
        self.r: aiosqlite.Connection | None = None
        self._now: sqlite3.Connection | None = None  # reads on the loop's thread (`now`)
        self._deferred_indexes: list[tuple[str, str, str]] = []
        self._readable = asyncio.Event()
        self._readable.set()
        self._reads = 0
        # Held per batch by the engine's writer and by every local write; a rebuild takes it to pause
        # writes while the database is swapped.
        self.write_lock = asyncio.Lock()
        # The newest purge's cutoff (meta `purged_before`), read at open: a batch that adds a message
        # below it also runs the purge floor, so every path leaves the same rows (store.apply).
        self.purged_before: str | None = None

    async def open(self, *, bulk: bool = False) -> None:
        """`bulk`: a scratch database being filled by a rebuild; no rollback journal or syncs
        until `finish_bulk` (a crash mid-rebuild just leaves a scratch file to delete)."""
        await asyncio.to_thread(make_private_db, self.path)
        self.checkpointer = None if bulk else Checkpointer(self.path)
        changed = self.checkpointer.changed if self.checkpointer is not None else None
        self.w = WriteThread(self.path, bulk=bulk, on_change=changed)
        try:
            await self.w.open()
            if self.checkpointer is not None:
                self.checkpointer.start()
            await self.w.run(migrate)
            self.purged_before = await self.w.run(_purged_before)
            if bulk:
                # Building indexes and the unread counts once at the end beats updating them row
                # by row (the unread triggers alone cost a rebuild a third of its speed).
                self._deferred_indexes = await self.w.run(_defer_indexes)
            self.r = await _connect(self.path, bulk=bulk)
            if not bulk:
                self._now = _connect_now(self.path)
        except BaseException:
            await self.close()
            raise

    async def finish_bulk(self) -> None:
        deferred, self._deferred_indexes = self._deferred_indexes, []

        def finish(conn: sqlite3.Connection) -> None:
            # The counts' GROUP BY and each index build are a sort of the whole table: a second
            # sorter thread and a bigger cache for them (this connection only: it closes after the
            # rebuild) took ~15 % off the index builds.
            conn.execute("PRAGMA threads=2")
            conn.execute("PRAGMA cache_size=-65536")
            conn.executescript("BEGIN;" + RECOUNTS + ";COMMIT;")
            for _kind, _name, sql in deferred:
                conn.execute(sql)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")

        await self.in_writer_thread(finish)

    @property
    def is_open(self) -> bool:
        return self.w is not None

    async def close(self) -> None:
        checkpointer, self.checkpointer = self.checkpointer, None
        if checkpointer is not None:
            await asyncio.to_thread(checkpointer.stop)
        r, w, self.r, self.w = self.r, self.w, None, None
        now, self._now = self._now, None
        if now is not None:
            now.close()
        if r is not None:
            await r.close()
        if w is not None:
            await w.close()

    # -- writing --
    async def in_writer_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(sqlite3_connection)` on the write connection's own thread, in one hop."""
        if self.w is None:
            raise sqlite3.ProgrammingError("the projection is closed")
        return await self.w.run(fn)

    async def apply(
        self,
        events: list[dict],
        offsets: dict[str, int],
        *,
        skip_applied: bool = False,
        before: Callable[[], dict[str, int]] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> int:
        """Apply events and record shard offsets in one transaction. Returns events applied.

        `before` runs first on the same thread (the journal's write + fsync), and
        the offsets it returns are recorded too: one thread hop per batch. When the
        transaction then fails, `undo` runs (on that thread) before the error is raised.
        """
        if skip_applied and events:
            known = await self.applied_among([e["id"] for e in events])
            events = [e for e in events if e["id"] not in known]

        def work(conn: sqlite3.Connection) -> int:
            runs = projector.ops_for(events)
            # A message older than a purge's cutoff (synced in from a clone that had not seen the
            # purge, or a purge in this very batch): a purge made anywhere holds for it too.
            floor, below = projector.purge_floor_after(self.purged_before, events)
            if below:
                runs += projector.PURGE_FLOOR
            all_offsets = dict(offsets)
            if before is not None:
                all_offsets.update(before())
            try:
                _transaction(conn, runs, all_offsets)
            except BaseException:
                if undo is not None:
                    undo()
                raise
            self.purged_before = floor
            return len(events)

        return await self.in_writer_thread(work)

    async def apply_lines(
        self, lines: list[bytes], offsets: dict[str, int], check: EventCheck | None = None
    ) -> tuple[int, list[LineRejected]]:
        """Apply complete journal lines (a rebuild) in one transaction: (events, lines rejected).

        The lines are checked and turned into rows here, on the writer thread: one hop per chunk.
        """

        def work(conn: sqlite3.Connection) -> tuple[int, list[LineRejected]]:
            runs, count, rejected = ops_for_lines(lines, check)
            _transaction(conn, runs, offsets, multirow=True)
            return count, rejected

        return await self.in_writer_thread(work)

    async def apply_purge_floor(self) -> None:
        """Drop what the newest purge's cutoff leaves behind (the end of a rebuild: the live path
        applies the floor batch by batch, and both must leave the same rows)."""

        def work(conn: sqlite3.Connection) -> None:
            floor = _purged_before(conn)
            if floor is not None:
                _transaction(conn, projector.PURGE_FLOOR, {})
            self.purged_before = floor

        await self.in_writer_thread(work)

    async def applied_among(self, ids: list[str]) -> set[str]:
        def among(conn: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                q = f"SELECT id FROM applied_events WHERE id IN ({','.join('?' * len(chunk))})"
                found.update(r[0] for r in conn.execute(q, chunk))
            return found

        return await self.in_writer_thread(among)

    async def write_local(self, sql: str, rows: Iterable[tuple]) -> None:
        """Machine-local rows (presence, monitors, the command queue): never journaled, written
        between the writer's batches."""
        rows = list(rows)
        async with self.write_lock:
            await self.in_writer_thread(lambda conn: conn.executemany(sql, rows))

    # -- reading --
    async def pause_reads(self) -> None:
        """Hold new reads and wait for those in flight (the database is about to be swapped)."""
        self._readable.clear()
        while self._reads:
            await asyncio.sleep(0.001)

    def resume_reads(self) -> None:
        self._readable.set()

    async def all(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        await self._readable.wait()
        self._reads += 1
        try:
            assert self.r is not None
            # One hop to the reader's thread (execute, fetch and close there): a cursor's execute,
            # fetchall and close were three, twice the time of a small query (66 vs 132 us p50).
            rows = await self.r.execute_fetchall(sql, tuple(params))
        finally:
            self._reads -= 1
        return [dict(r) for r in rows]

    def now(self, sql: str, params: Iterable[Any] = ()) -> list[dict] | None:
        """`sql` run at once on the event loop's thread, for small reads bounded by an index and a
        LIMIT (an inbox page, a count): no hop to the reader's thread and back. None when it cannot
        run now (reads paused for a swap, the store closed, a lock held past NOW_BUSY_MS): the
        caller then reads through `all`. A read never blocks the loop for long: nothing here waits
        on a writer (WAL), and callers keep to reads whose cost does not grow with the history."""
        conn = self._now
        if conn is None or not self._readable.is_set():
            return None
        try:
            cur = conn.execute(sql, tuple(params))
            rows = cur.fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return None
            raise
        except sqlite3.ProgrammingError:  # called off the loop's thread: the reader's thread can
            return None
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r)) for r in rows]  # a quarter of dict(sqlite3.Row)'s time

    async def one(self, sql: str, params: Iterable[Any] = ()) -> dict | None:
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = await self.all(sql, params)
        return next(iter(rows[0].values())) if rows else None

    async def offsets(self) -> dict[str, int]:
        return {r["shard"]: r["offset"] for r in await self.all("SELECT shard, offset FROM shard_offsets")}


async def copy_local_tables(src_path: str, dst: Store) -> str | None:
    """Carry machine-local tables into a rebuilt database. An unreadable source (the projection being
    replaced is corrupt) is skipped: returns why, or None when they were copied."""
    if not os.path.exists(src_path):
        return "no old database to copy machine-local tables from"

    def copy(conn: sqlite3.Connection) -> str | None:
        try:
            conn.execute("ATTACH DATABASE ? AS old", (src_path,))
        except sqlite3.Error as exc:
            return f"machine-local tables not copied (old database unreadable: {exc})"
        failed = []
        try:
            for table in LOCAL:
                try:
                    conn.execute(f"INSERT OR REPLACE INTO main.{table} SELECT * FROM old.{table}")
                except sqlite3.Error as exc:
                    failed.append(f"{table}: {exc}")
        finally:
            conn.execute("DETACH DATABASE old")
        return f"machine-local tables not copied ({'; '.join(failed)})" if failed else None

    return await dst.in_writer_thread(copy)

"""The projection database: one writer connection (batches from the engine's
writer) and one reader connection (queries), both aiosqlite over one WAL file.

The database and its -wal/-shm files are 0600 whatever the umask (SQLite gives
-wal and -shm the main file's mode, so the main file is created first, by us).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any, TypeVar

import aiosqlite

from thrum_engine.files import FILE_MODE, private_dir
from thrum_engine.store import apply as projector
from thrum_engine.store.lines import LineRejected, ops_for_lines
from thrum_engine.store.schema import LOCAL, MIGRATIONS, SCHEMA_VERSION, UNREAD_RECOUNT
from thrum_engine.store.validate import EventCheck

T = TypeVar("T")


class SchemaTooNew(Exception):
    pass


ROWS_PER_INSERT = 64


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


async def _connect(path: str, *, bulk: bool = False) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=" + ("MEMORY" if bulk else "WAL"))
        # The journal is fsynced before we get here; a lost projection commit is replayed from offsets.
        await conn.execute("PRAGMA synchronous=" + ("OFF" if bulk else "NORMAL"))
        await conn.execute("PRAGMA busy_timeout=5000")
        await conn.execute("PRAGMA foreign_keys=OFF")
    except BaseException:
        # aiosqlite's worker thread is not a daemon thread: left running, it keeps the process
        # alive after a failed start (a hung engine per CLI call on an unreadable file).
        await conn.close()
        raise
    return conn


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


async def migrate(conn: aiosqlite.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION; refuse a database from a newer Thrum."""
    await conn.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    async with conn.execute("SELECT value FROM meta WHERE key='schema_version'") as cur:
        row = await cur.fetchone()
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"database schema v{version} is newer than this Thrum (v{SCHEMA_VERSION}); upgrade thrum"
        )
    while version < SCHEMA_VERSION:
        await conn.executescript("BEGIN;" + MIGRATIONS[version] + ";COMMIT;")
        version += 1
        await conn.execute(
            "INSERT INTO meta(key, value) VALUES ('schema_version', ?)"
            " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (str(version),),
        )
    return version


class Store:
    def __init__(self, path: str) -> None:
        self.path = path
        self.w: aiosqlite.Connection | None = None
        self.r: aiosqlite.Connection | None = None
        self._deferred_indexes: list[tuple[str, str, str]] = []
        self._readable = asyncio.Event()
        self._readable.set()
        self._reads = 0
        # Held per batch by the engine's writer and by every local write; a rebuild takes it to pause
        # writes while the database is swapped.
        self.write_lock = asyncio.Lock()

    async def open(self, *, bulk: bool = False) -> None:
        """`bulk`: a scratch database being filled by a rebuild; no rollback journal or syncs
        until `finish_bulk` (a crash mid-rebuild just leaves a scratch file to delete)."""
        await asyncio.to_thread(make_private_db, self.path)
        self.w = await _connect(self.path, bulk=bulk)
        try:
            await migrate(self.w)
            if bulk:
                # Building indexes and the unread counts once at the end beats updating them row
                # by row (the unread triggers alone cost a rebuild a third of its speed).
                async with self.w.execute(
                    "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger')"
                    " AND sql IS NOT NULL ORDER BY type"
                ) as cur:
                    self._deferred_indexes = [tuple(r) for r in await cur.fetchall()]
                for kind, name, _sql in self._deferred_indexes:
                    await self.w.execute(f"DROP {kind.upper()} {name}")
            self.r = await _connect(self.path, bulk=bulk)
        except BaseException:
            await self.close()
            raise

    async def finish_bulk(self) -> None:
        assert self.w is not None
        await self.w.executescript("BEGIN;" + UNREAD_RECOUNT + ";COMMIT;")
        for _kind, _name, sql in self._deferred_indexes:
            await self.w.execute(sql)
        self._deferred_indexes = []
        await self.w.execute("PRAGMA journal_mode=WAL")
        await self.w.execute("PRAGMA synchronous=NORMAL")

    async def close(self) -> None:
        for conn in (self.r, self.w):
            if conn is not None:
                await conn.close()
        self.r = self.w = None

    # -- writing --
    async def in_writer_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(sqlite3_connection)` on the writer connection's own thread, in one hop.

        A batch is a dozen statements; awaiting each one through aiosqlite is a
        thread hop apiece (~70 us) and they dominated commit time. aiosqlite has
        no public "run this callable" call, so this uses `Connection._execute`
        (present through the pinned 0.22.1); the connection stays aiosqlite's.
        """
        assert self.w is not None
        return await self.w._execute(fn, self.w._conn)

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
            all_offsets = dict(offsets)
            if before is not None:
                all_offsets.update(before())
            try:
                _transaction(conn, runs, all_offsets)
            except BaseException:
                if undo is not None:
                    undo()
                raise
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

    async def applied_among(self, ids: list[str]) -> set[str]:
        assert self.w is not None
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = f"SELECT id FROM applied_events WHERE id IN ({','.join('?' * len(chunk))})"
            async with self.w.execute(q, chunk) as cur:
                found.update(r[0] for r in await cur.fetchall())
        return found

    async def write_local(self, sql: str, rows: Iterable[tuple]) -> None:
        """Machine-local rows (presence, monitors, the command queue): never journaled, written
        between the writer's batches."""
        rows = list(rows)
        async with self.write_lock:
            assert self.w is not None
            await self.w.executemany(sql, rows)

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
            async with self.r.execute(sql, tuple(params)) as cur:
                rows = await cur.fetchall()
        finally:
            self._reads -= 1
        return [dict(r) for r in rows]

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
    assert dst.w is not None
    if not os.path.exists(src_path):
        return "no old database to copy machine-local tables from"
    try:
        await dst.w.execute("ATTACH DATABASE ? AS old", (src_path,))
    except sqlite3.Error as exc:
        return f"machine-local tables not copied (old database unreadable: {exc})"
    failed = []
    try:
        for table in LOCAL:
            try:
                await dst.w.execute(f"INSERT OR REPLACE INTO main.{table} SELECT * FROM old.{table}")
            except sqlite3.Error as exc:
                failed.append(f"{table}: {exc}")
    finally:
        await dst.w.execute("DETACH DATABASE old")
    return f"machine-local tables not copied ({'; '.join(failed)})" if failed else None

"""The projection database: one writer connection (batches from the engine's
writer) and one reader connection (queries), both aiosqlite over one WAL file."""

from __future__ import annotations

import os
from typing import Any, Iterable

import aiosqlite

from thrum_engine.store import apply as projector
from thrum_engine.store.schema import LOCAL, MIGRATIONS, SCHEMA_VERSION


class SchemaTooNew(Exception):
    pass


async def _connect(path: str) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA journal_mode=WAL")
    # The journal is fsynced before we get here; a lost projection commit is replayed from offsets.
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute("PRAGMA busy_timeout=5000")
    await conn.execute("PRAGMA foreign_keys=OFF")
    return conn


async def migrate(conn: aiosqlite.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION; refuse a database from a newer Thrum."""
    await conn.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    async with conn.execute("SELECT value FROM meta WHERE key='schema_version'") as cur:
        row = await cur.fetchone()
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(f"database schema v{version} is newer than this Thrum (v{SCHEMA_VERSION}); upgrade thrum")
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

    async def open(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.w = await _connect(self.path)
        try:
            await migrate(self.w)
            self.r = await _connect(self.path)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for conn in (self.r, self.w):
            if conn is not None:
                await conn.close()
        self.r = self.w = None

    # -- writing --
    async def apply(self, events: list[dict], offsets: dict[str, int], *, skip_applied: bool = False) -> int:
        """Apply events and record shard offsets in one transaction. Returns events applied."""
        assert self.w is not None
        if skip_applied and events:
            known = await self.applied_among([e["id"] for e in events])
            events = [e for e in events if e["id"] not in known]
        ops = projector.ops_for(events)
        ops.extend(
            ("INSERT INTO shard_offsets(shard, offset) VALUES (?, ?)"
             " ON CONFLICT(shard) DO UPDATE SET offset=excluded.offset", (shard, off))
            for shard, off in offsets.items()
        )
        await self.w.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in projector.runs(ops):
                if len(params) == 1:
                    await self.w.execute(sql, params[0])
                else:
                    await self.w.executemany(sql, params)
            await self.w.execute("COMMIT")
        except BaseException:
            await self.w.execute("ROLLBACK")
            raise
        return len(events)

    async def applied_among(self, ids: list[str]) -> set[str]:
        assert self.w is not None
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = f"SELECT id FROM applied_events WHERE id IN ({','.join('?' * len(chunk))})"
            async with self.w.execute(q, chunk) as cur:
                found.update(r[0] for r in await cur.fetchall())
        return found

    async def write_local(self, sql: str, rows: Iterable[tuple]) -> None:
        assert self.w is not None
        await self.w.executemany(sql, list(rows))

    # -- reading --
    async def all(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        assert self.r is not None
        async with self.r.execute(sql, tuple(params)) as cur:
            rows = await cur.fetchall()
        return [dict(r) for r in rows]

    async def one(self, sql: str, params: Iterable[Any] = ()) -> dict | None:
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        assert self.r is not None
        async with self.r.execute(sql, tuple(params)) as cur:
            row = await cur.fetchone()
        return row[0] if row else None

    async def offsets(self) -> dict[str, int]:
        return {r["shard"]: r["offset"] for r in await self.all("SELECT shard, offset FROM shard_offsets")}


async def copy_local_tables(src_path: str, dst: Store) -> None:
    """Carry machine-local tables into a rebuilt database."""
    assert dst.w is not None
    await dst.w.execute("ATTACH DATABASE ? AS old", (src_path,))
    try:
        for table in LOCAL:
            await dst.w.execute(f"INSERT OR REPLACE INTO main.{table} SELECT * FROM old.{table}")
        await dst.w.commit()
    finally:
        await dst.w.execute("DETACH DATABASE old")

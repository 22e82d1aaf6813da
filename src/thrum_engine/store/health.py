"""Is the projection file usable? Checked at every start, before it is opened: the projection is
disposable (the journal is the truth), so a broken one is moved aside and rebuilt, not repaired.

Blocking (plain sqlite3 and file IO): run it off the event loop.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time

from thrum_engine.store.schema import MIGRATIONS, SCHEMA_VERSION

SQLITE_HEADER = b"SQLite format 3\x00"
SCRATCH_SUFFIX = ".rebuild"
SIDE_FILES = ("", "-wal", "-shm", "-journal")


@functools.lru_cache(maxsize=1)
def expected_tables() -> dict[str, tuple[str, ...]]:
    """Each table of the current schema and its columns, from the migrations themselves."""
    conn = sqlite3.connect(":memory:")
    try:
        for script in MIGRATIONS:
            conn.executescript(script)
        return _tables(conn)
    finally:
        conn.close()


def _tables(conn: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {n: tuple(r[1] for r in conn.execute(f"PRAGMA table_info('{n}')")) for n in names}


def diagnose(path: str) -> str | None:
    """Why the database at `path` cannot serve as the projection, or None (also when there is none yet,
    or when it is a newer Thrum's: the store refuses those with a clear error instead)."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    if not header:
        return None  # an empty file is an empty database: the migrations create the schema
    if header != SQLITE_HEADER:
        return "not an SQLite database (bad header)"
    try:
        conn = sqlite3.connect(path, timeout=5)
    except sqlite3.Error as exc:
        return f"cannot be opened: {exc}"
    try:
        check = [r[0] for r in conn.execute("PRAGMA quick_check(3)")]
        if check != ["ok"]:
            return "sqlite quick_check: " + "; ".join(check)
        tables = _tables(conn)
        if "meta" not in tables:
            return "wrong schema: no meta table"
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            version = int(row[0]) if row else 0
        except (TypeError, ValueError):
            return f"wrong schema: schema_version {row[0]!r}"
        if version != SCHEMA_VERSION:
            return None if version else "wrong schema: no schema version"  # older: migrated; newer: refused
        for table, columns in expected_tables().items():
            if table not in tables:
                return f"wrong schema: table {table} is missing"
            if tables[table] != columns:
                return f"wrong schema: table {table} has columns {', '.join(tables[table])}"
    except sqlite3.Error as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    return None


def move_aside(path: str) -> str:
    """Rename the database and its side files to `<path>.corrupt-<UTC time>` (kept for inspection)."""
    moved = f"{path}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    n = 1
    while os.path.exists(moved if n == 1 else f"{moved}.{n}"):
        n += 1
    moved = moved if n == 1 else f"{moved}.{n}"
    for suffix in SIDE_FILES:
        if os.path.exists(path + suffix):
            os.replace(path + suffix, moved + suffix)
    return moved


def remove_scratch(path: str) -> list[str]:
    """Delete what a killed rebuild left (`<path>.rebuild` and its side files); returns what was removed."""
    removed = []
    for suffix in SIDE_FILES:
        scratch = path + SCRATCH_SUFFIX + suffix
        try:
            os.remove(scratch)
        except FileNotFoundError:
            continue
        removed.append(scratch)
    return removed

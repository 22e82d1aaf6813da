"""Is the projection file usable? Checked at every start, before it is opened: the projection is
disposable (the journal is the truth), so a broken one is moved aside and rebuilt, not repaired.

Blocking (plain sqlite3 and file IO): run it off the event loop.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time

from thrum_engine.files import FILE_MODE
from thrum_engine.store.schema import MIGRATIONS, SCHEMA_VERSION, migration_sql

SQLITE_HEADER = b"SQLite format 3\x00"
SCRATCH_SUFFIX = ".rebuild"
SIDE_FILES = ("", "-wal", "-shm", "-journal")


@functools.lru_cache(maxsize=1)
def expected_tables() -> dict[str, tuple[str, ...]]:
    """Each table of the current schema and its columns, from the migrations themselves."""
    conn = sqlite3.connect(":memory:")
    try:
        for version in range(len(MIGRATIONS)):
            conn.executescript(migration_sql(conn, version))
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


CLEAN_SUFFIX = ".clean"


def _fingerprint(path: str) -> list[int]:
    st = os.stat(path)
    try:
        wal = os.stat(path + "-wal").st_size
    except FileNotFoundError:
        wal = -1
    return [st.st_ino, st.st_size, st.st_mtime_ns, wal]


def mark_clean(path: str) -> None:
    """After a clean stop (every connection closed): the file as it was left, so the next start can skip
    the whole-file check when nothing touched it since."""
    try:
        fp = _fingerprint(path)
    except OSError:
        return
    tmp = path + CLEAN_SUFFIX + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    with os.fdopen(fd, "w") as fh:
        fh.write(" ".join(map(str, fp)))
    os.replace(tmp, path + CLEAN_SUFFIX)


def take_clean(path: str) -> bool:
    """Whether the projection was left by a clean stop and is unchanged since. The mark is removed
    either way (a crash while running leaves none, so the start after it checks the whole file)."""
    try:
        with open(path + CLEAN_SUFFIX) as fh:
            recorded = fh.read().split()
    except OSError:
        return False
    try:
        os.remove(path + CLEAN_SUFFIX)
    except OSError:
        pass
    try:
        return recorded == [str(x) for x in _fingerprint(path)]
    except OSError:
        return False


def diagnose(path: str, *, whole_file: bool = True) -> str | None:
    """Why the database at `path` cannot serve as the projection, or None (also when there is none yet,
    or when it is a newer Thrum's: the store refuses those with a clear error instead).

    `whole_file` False skips `quick_check`, which reads every page (~1 ms per 1,000 messages: the
    start-up's only cost that grows with the store): for a file a clean stop left unchanged."""
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
        if whole_file:
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

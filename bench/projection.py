"""What the projection costs a send, in SQLite alone (issue #17: where the ack path's time goes).

A store of `--messages` between 50 agents is loaded through the engine's real commit path, then
copies of its database take batches of `--batch` sends, each as the writer applies one (the
message row, one delivery, the applied event, the shard offset, one transaction), under variants:
as it is, without the triggers, without the secondary indexes of `messages` and `deliveries`,
with `messages_thread` partial (only threaded messages); and (session 18) SQLite's own knobs:
no automatic WAL checkpoints or fewer of them, synchronous=OFF, a 64 MB cache, mmap, and the
file rebuilt at 1, 4 and 8 KB pages (`--variants` picks some). Printed: the median of `--reps` runs of
`--batches` batches, in microseconds a message, and each variant's ratio to the first.

    .venv/bin/python bench/projection.py [--messages 100000] [--batch 12] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import loaded_engine  # bench/engine.py

from thrum_engine.store.apply import ops_for

_SECONDARY = ("messages_created", "messages_author", "messages_thread")
_SECONDARY += ("deliveries_inbox", "deliveries_unread", "deliveries_message")


def _vary(conn: sqlite3.Connection, variant: str) -> None:
    if variant == "no triggers":
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
    elif variant == "no secondary indexes":
        for name in _SECONDARY:
            conn.execute(f"DROP INDEX {name}")
    elif variant == "partial thread index":
        conn.execute("DROP INDEX messages_thread")
        conn.execute("CREATE INDEX messages_thread ON messages(thread_id) WHERE thread_id IS NOT NULL")
    elif variant == "cache 64 MB":
        conn.execute("PRAGMA cache_size=-65536")
    elif variant == "no checkpoints":
        conn.execute("PRAGMA wal_autocheckpoint=0")
    elif variant.startswith("checkpoint "):
        conn.execute(f"PRAGMA wal_autocheckpoint={int(variant.split()[1])}")
    elif variant == "synchronous OFF":
        conn.execute("PRAGMA synchronous=OFF")
    elif variant == "mmap 1 GB":
        conn.execute("PRAGMA mmap_size=1073741824")
    elif variant.startswith("page "):
        # A WAL file keeps its page size: back to a rollback journal, VACUUM at the new size, WAL again.
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute(f"PRAGMA page_size={int(variant.split()[1])}")
        conn.execute("VACUUM")
        conn.execute("PRAGMA journal_mode=WAL")


def _send(n: int) -> dict:
    """A plain send as the writer applies it (`store.apply.ops_for`)."""
    ts = f"2027-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1_000_000:06d}Z"
    return {
        "v": 1,
        "id": f"evt_01ZZ{n:022d}",
        "type": "message.create",
        "author": "agent_00",
        "ts": ts,
        "data": {
            "message_id": f"msg_01ZZ{n:022d}",
            "content": f"m{n}",
            "format": "markdown",
            "recipients": [f"agent_{1 + n % 49:02d}"],
        },
    }


def _run(db: Path, work: Path, variant: str, batches: int, batch: int) -> float:
    copy = work / "copy.db"
    shutil.copy(db, copy)
    conn = sqlite3.connect(copy, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        _vary(conn, variant)
        sends = [[_send(b * batch + i) for i in range(batch)] for b in range(batches)]
        t0 = time.perf_counter()
        for b, events in enumerate(sends):
            conn.execute("BEGIN IMMEDIATE")
            for sql, params in ops_for(events):
                conn.executemany(sql, params)
            conn.execute(
                "INSERT INTO shard_offsets(shard, offset) VALUES (?, ?)"
                " ON CONFLICT(shard) DO UPDATE SET offset=excluded.offset",
                ("agent_00@bench", (b + 1) * batch * 300),
            )
            conn.execute("COMMIT")
        return (time.perf_counter() - t0) / (batches * batch) * 1e6
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(copy) + suffix).unlink(missing_ok=True)


async def _store(tmp: Path, messages: int) -> Path:
    engine, _names, _load_s, _rng = await loaded_engine(tmp, messages, 50)
    path = Path(engine.layout.db_path)
    await engine.stop()
    conn = sqlite3.connect(path)
    try:  # every row in the main file, which is what each variant copies
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        stored = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    finally:
        conn.close()
    if stored < messages:
        raise SystemExit(f"the store holds {stored:,} messages, not {messages:,}")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=12, help="sends a transaction (16 blocking clients: ~12)")
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--variants", help="comma-separated subset, e.g. 'as it is,cache 64 MB'")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    variants = ["as it is", "no triggers", "no secondary indexes", "partial thread index"]
    variants += [
        "no checkpoints",
        "checkpoint 4000",
        "checkpoint 10000",
        "synchronous OFF",
        "cache 64 MB",
        "mmap 1 GB",
        "page 4096",
        "page 1024",
        "page 8192",
    ]
    if a.variants:
        variants = [v for v in variants if v in a.variants.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-projection-"))
    try:
        db = asyncio.run(_store(tmp, a.messages))
        runs: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(a.reps):  # interleaved: the machine's drift falls on every variant alike
            for v in variants:
                runs[v].append(_run(db, tmp, v, a.batches, a.batch))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {v: round(statistics.median(r), 1) for v, r in runs.items()}
    if a.json:
        print(json.dumps({"messages": a.messages, "batch": a.batch, "us_per_message": out}))
        return 0
    print(f"== a send's projection in SQLite, {a.messages:,} messages stored, batches of {a.batch}")
    first = out[variants[0]]
    for v in variants:
        print(f"  {v:24s} {out[v]:6.1f} us/message   {out[v] / first:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

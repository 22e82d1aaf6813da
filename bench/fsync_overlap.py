"""Whether a batch's journal fsync and its SQLite transaction can overlap on this disk.

The writer fsyncs the journal, then commits the projection (DESIGN.md: fsynced, then applied, then
acknowledged). Staging the transaction while the fsync runs on another thread, and committing it
once the fsync returns, would keep that order and hide one behind the other, if the disk lets them
run at once. Here, a 3 KB append + fsync of one file and a WAL transaction of 16 rows with three
secondary indexes (the shape of a batch of 8 sends) in another file of the same folder: each
alone, one after the other, and at once (the fsync on a thread), interleaved.

    .venv/bin/python bench/fsync_overlap.py [--rounds 600] [--dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Disk:
    def __init__(self, folder: str) -> None:
        self.folder = tempfile.mkdtemp(prefix="thrum-bench-overlap-", dir=folder)
        self.fd = os.open(
            os.path.join(self.folder, "journal.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        self.db = sqlite3.connect(
            os.path.join(self.folder, "db"), isolation_level=None, check_same_thread=False
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # as the projection: the journal is the durable copy
        self.db.execute("CREATE TABLE m(id TEXT PRIMARY KEY, a TEXT, b TEXT, c TEXT, t TEXT)")
        for col in "abc":
            self.db.execute(f"CREATE INDEX m_{col} ON m({col}, t)")
        self.n = 0

    def fsync(self) -> None:
        os.write(self.fd, b"x" * 3000 + b"\n")
        os.fsync(self.fd)

    def transaction(self) -> None:
        rows = []
        for _ in range(16):
            self.n += 1
            k = self.n
            rows.append((f"id{k:09d}", f"a{k % 50}", f"b{k % 37}", f"c{k % 11}", f"t{k:012d}"))
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany("INSERT INTO m VALUES (?, ?, ?, ?, ?)", rows)
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()
        os.close(self.fd)
        shutil.rmtree(self.folder, ignore_errors=True)


def measure(rounds: int, folder: str) -> dict:
    disk = Disk(folder)
    pool = ThreadPoolExecutor(1)
    pool.submit(lambda: None).result()  # the thread is started before the clock
    ms: dict[str, list[float]] = {"fsync": [], "transaction": [], "one after the other": [], "at once": []}
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            disk.fsync()
            t1 = time.perf_counter()
            disk.transaction()
            t2 = time.perf_counter()
            disk.fsync()
            disk.transaction()
            t3 = time.perf_counter()
            synced = pool.submit(disk.fsync)
            disk.transaction()
            synced.result()
            t4 = time.perf_counter()
            for key, (a, b) in zip(ms, ((t0, t1), (t1, t2), (t2, t3), (t3, t4))):
                ms[key].append((b - a) * 1e3)
    finally:
        pool.shutdown()
        disk.close()
    return {
        k: {"p50_ms": round(statistics.median(v), 3), "mean_ms": round(statistics.mean(v), 3)}
        for k, v in ms.items()
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=600)
    ap.add_argument("--dir", default=str(ROOT / ".git"), help="a folder on the disk the journal lives on")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = measure(a.rounds, a.dir)
    if a.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"== a journal fsync and a projection transaction, {a.rounds} rounds each, interleaved ==")
    for k, v in r.items():
        print(f"  {k:22s} p50 {v['p50_ms']:7.3f} ms   mean {v['mean_ms']:7.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

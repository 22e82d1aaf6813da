"""Where a rebuild's time goes, per event: reading and sorting the journal, parsing lines into rows,
inserting them, then the counts and the index builds; and engine start-up on the built store.

    .venv/bin/python bench/rebuild.py [--messages 100000] [--reps 3] [--src OTHER/src ...] [--json]

A generated journal (50 agents, plain one-recipient messages as the engine writes them) is rebuilt
with each `--src`'s store code (this checkout's first), the checkouts interleaved `--reps` times so
load on the shared cores hits them alike; each phase is the median of its reps. Each checkout runs
in its own interpreter (`python -c`, its `src` first on the path). `start_ms`: an in-process engine
start on the rebuilt store (nothing to replay), the median of three starts, with `diagnose` (the
projection's start-up check) timed on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "src"

# Runs in a child interpreter with one checkout's src on sys.path: the phases, then the starts.
CHILD = r"""
import asyncio, json, os, sqlite3, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
root = sys.argv[2]
from thrum_engine.journal import Journal
from thrum_engine.store import db as dbm
from thrum_engine.store.lines import ops_for_lines
from thrum_engine.store.rebuild import sorted_journal_lines
from thrum_engine.store.schema import RECOUNTS
from thrum_engine.store.validate import EventCheck
j = Journal(os.path.join(root, "journal"), os.path.join(root, "q"))
path = os.path.join(root, "scratch.sqlite")
for s in ("", "-wal", "-shm", "-journal"):
    if os.path.exists(path + s):
        os.remove(path + s)
T = {}
t0 = time.perf_counter()
src = sorted_journal_lines(j)
T["read_sort"] = time.perf_counter() - t0
conn = sqlite3.connect(path, isolation_level=None)
for p in dbm._pragmas(True):
    conn.execute(p)
dbm.migrate(conn)
deferred = dbm._defer_indexes(conn)
check, lines, parse, insert = EventCheck(), src.lines, 0.0, 0.0
for i in range(0, len(lines), 5000):
    a = time.perf_counter()
    runs, n, bad = ops_for_lines(lines[i : i + 5000], check)
    b = time.perf_counter()
    dbm._transaction(conn, runs, {}, multirow=True)
    parse += b - a
    insert += time.perf_counter() - b
T["parse"], T["insert"] = parse, insert
conn.close()
# the end of a rebuild as the store does it (the counts, the indexes, back to WAL)
store = dbm.Store(path)
async def finish():
    store._deferred_indexes = deferred
    store.w = dbm.WriteThread(path, bulk=True)
    await store.w.open()
    a = time.perf_counter()
    await store.finish_bulk()
    T["counts_indexes"] = time.perf_counter() - a
    await store.w.close()
asyncio.run(finish())
T["total"] = sum(T.values())
events = len(lines)
# start-up on the built store
from thrum_engine.engine.assemble import build
from thrum_engine.layout import Layout
from thrum_engine.settings import ThrumSettings
from thrum_engine.store import health
repo = os.path.join(root, "r")
if not os.path.exists(repo):
    subprocess.run(["git", "init", "-q", repo], check=True)
lay = Layout(repo)
os.makedirs(os.path.dirname(lay.db_path), exist_ok=True)
os.makedirs(lay.journal_dir, exist_ok=True)
os.replace(path, lay.db_path)
for f in os.listdir(os.path.join(root, "journal")):
    dst = os.path.join(lay.journal_dir, f)
    if not os.path.exists(dst):
        os.link(os.path.join(root, "journal", f), dst)
conn = sqlite3.connect(lay.db_path)  # the offsets the rebuild would record: nothing to replay
conn.executemany("INSERT OR REPLACE INTO shard_offsets(shard, offset) VALUES (?, ?)", list(src.offsets.items()))
conn.commit()
conn.close()
os.environ["THRUM_TMUX__SOCKET_NAME"] = f"thrum-rbbench-{os.getpid()}"
starts, diag = [], []
async def start():
    e = build(lay, ThrumSettings())
    a = time.perf_counter()
    await e.start()
    starts.append(time.perf_counter() - a)
    await e.stop()
for _ in range(3):
    asyncio.run(start())
    a = time.perf_counter()
    health.diagnose(lay.db_path)
    diag.append(time.perf_counter() - a)
print(json.dumps({"events": events, **{k: v / events * 1e6 for k, v in T.items()},
                  "events_per_s": events / T["total"], "start_ms": sorted(starts)[1] * 1000,
                  "diagnose_ms": sorted(diag)[1] * 1000}))
"""


def write_journal(root: Path, messages: int, agents: int = 50) -> None:
    sys.path.insert(0, str(HERE))
    from thrum_engine.engine.writer import encode
    from thrum_engine.ids import ulid

    jd = root / "journal"
    jd.mkdir(parents=True)
    rng = random.Random(7)
    names = [f"agent_{i:02d}" for i in range(agents)]
    out = {n: open(jd / f"{n}@abcd1234.jsonl", "ab") for n in names}  # noqa: SIM115 -- closed below
    try:
        for n in names:
            ev = {"name": n, "role": "worker", "worktree": "/w"}
            out[n].write(
                encode(
                    {"v": 1, "id": "evt_" + ulid(), "type": "agent.register", "author": n,
                     "ts": "2026-12-01T00:00:00.000000Z", "data": ev}
                )
            )  # fmt: skip
        for i in range(messages):
            a, r = rng.sample(names, 2)
            u = ulid()
            ts = f"2026-12-01T{i // 3_600_000 % 24:02d}:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:06d}Z"
            data = {"content": f"message {i} " + "x" * 80, "format": "markdown", "message_id": "msg_" + u,
                    "recipients": [r]}  # fmt: skip
            out[a].write(
                encode(
                    {"v": 1, "id": "evt_" + u, "type": "message.create", "author": a, "ts": ts, "data": data}
                )
            )
    finally:
        for fh in out.values():
            fh.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--src", action="append", default=[], help="another checkout's src (a baseline)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    srcs = {"this": str(HERE), **{Path(s).resolve().parent.name: str(Path(s).resolve()) for s in a.src}}
    tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-rebuild-"))
    runs: dict[str, list[dict]] = {n: [] for n in srcs}
    loads = [os.getloadavg()[0]]
    try:
        write_journal(tmp, a.messages)
        for _ in range(a.reps):
            for name, src in srcs.items():
                work = tmp / name
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir()
                os.symlink(tmp / "journal", work / "journal")
                r = subprocess.run(
                    [sys.executable, "-c", CHILD, src, str(work)], capture_output=True, text=True, check=True
                )
                runs[name].append(json.loads(r.stdout.strip().splitlines()[-1]))
            loads.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {
        "messages": a.messages,
        "reps": a.reps,
        "load_avg": [round(x, 2) for x in loads],
        "targets": {
            n: {k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0]} for n, rs in runs.items()
        },
    }
    if a.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    keys = ["read_sort", "parse", "insert", "counts_indexes", "total"]
    print(f"== rebuild of {a.messages:,} messages, us per event (medians of {a.reps} interleaved reps; "
          f"load {out['load_avg']})")  # fmt: skip
    print(f"  {'':12s}" + "".join(f"{k:>16s}" for k in [*keys, "events/s", "start ms", "diagnose ms"]))
    for n, t in out["targets"].items():
        cells = [f"{t[k]:16.2f}" for k in keys]
        cells += [f"{t['events_per_s']:16,.0f}", f"{t['start_ms']:16.1f}", f"{t['diagnose_ms']:16.1f}"]
        print(f"  {n:12s}" + "".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

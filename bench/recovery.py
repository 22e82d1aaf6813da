"""Projection recovery and journal validation, on a scratch repo with a generated journal.

Prints (or, with --json, emits) three figures:
  * recovery: a real daemon started on a corrupt `thrum.db` (bad header) until it answers
    `engine.info`, beside the same start on an intact projection (the baseline, same run);
  * rebuild: events/s of a whole-journal rebuild with the per-line event checks on and off
    (off is the pre-validation behaviour; same journal, same run, alternated);
  * the same for a journal where a third of the lines take the `json.loads` path (escapes,
    replies, reads), where the checks actually run.

Usage: python bench/recovery.py [--messages 100000] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from thrum_engine.engine.writer import encode
from thrum_engine.journal import Journal
from thrum_engine.layout import Layout
from thrum_engine.store.rebuild import build_projection

AGENTS = 50


def _id(prefix: str, n: int) -> str:
    return f"{prefix}_01M8{n:022d}"


def write_journal(layout: Layout, messages: int, mixed: bool, seed: int = 7) -> int:
    """`messages` message.create events over AGENTS authors (+ reads and replies when `mixed`)."""
    rng = random.Random(seed)
    names = [f"agent_{i:02d}" for i in range(AGENTS)]
    shards: dict[str, list[bytes]] = {n: [] for n in names}
    n = 0
    for name in names:
        n += 1
        shards[name].append(
            encode(
                {
                    "v": 1,
                    "id": _id("evt", n),
                    "type": "agent.register",
                    "author": name,
                    "ts": "2026-01-01T00:00:00.000000Z",
                    "data": {"name": name, "role": "worker", "registered_at": "2026-01-01T00:00:00Z"},
                }
            )
        )
    for i in range(messages):
        n += 1
        a, r = rng.sample(names, 2)
        ts = f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000000:06d}Z"
        data: dict = {
            "message_id": _id("msg", n),
            "content": f"message {i} " + "x" * 80,
            "format": "markdown",
            "recipients": [r],
        }
        roll = rng.random() if mixed else 1.0
        if roll < 0.1:
            data["content"] = f'line one\nline "two" {i}'
        elif roll < 0.2 and i:
            data["reply_to"] = data["thread_id"] = data["thread_root"] = _id("msg", n - 1)
        shards[a].append(
            encode(
                {"v": 1, "id": _id("evt", n), "type": "message.create", "author": a, "ts": ts, "data": data}
            )
        )
        if roll < 0.33 and 0.2 <= roll:
            n += 1
            shards[r].append(
                encode(
                    {
                        "v": 1,
                        "id": _id("evt", n),
                        "type": "message.read",
                        "author": r,
                        "ts": ts,
                        "data": {"message_ids": [data["message_id"]], "at": ts},
                    }
                )
            )
    os.makedirs(layout.journal_dir, exist_ok=True)
    for name, lines in shards.items():
        with open(os.path.join(layout.journal_dir, name + ".jsonl"), "wb") as fh:
            fh.write(b"".join(lines))
    return n


def scratch_repo(base: Path, name: str) -> Layout:
    path = base / name
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    return Layout(str(path))


def time_rebuild(layout: Layout, validate: bool) -> tuple[int, float]:
    async def run() -> tuple[int, float]:
        journal = Journal(layout.journal_dir, layout.quarantine_dir)
        t0 = time.perf_counter()
        built = await build_projection(journal, layout.db_path, local_from=None, validate=validate)
        elapsed = time.perf_counter() - t0
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(built.scratch + suffix):
                os.remove(built.scratch + suffix)
        return built.events, elapsed

    return asyncio.run(run())


def bench_rebuild(layout: Layout, runs: int) -> dict:
    figures: dict[str, list[float]] = {"validated": [], "unvalidated": []}
    events = 0
    for _ in range(runs):
        for mode in ("unvalidated", "validated"):
            events, secs = time_rebuild(layout, mode == "validated")
            figures[mode].append(events / secs)
    out: dict = {"events": events}
    for mode, rates in figures.items():
        out[mode + "_events_per_s"] = round(statistics.median(rates))
    out["cost_pct"] = round(100 * (1 - out["validated_events_per_s"] / out["unvalidated_events_per_s"]), 1)
    return out


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THRUM_", "TMUX", "GIT_"))}
    env.update({"HOME": str(home), "THRUM_TMUX__SOCKET_NAME": f"thrum-bench-recovery-{os.getpid()}"})
    return env


def time_daemon_start(layout: Layout, env: dict) -> float:
    """Spawn the daemon, poll `engine.info` until it answers; stop it. Seconds from spawn to answer."""
    from thrum_engine.rpc.client import Client, EngineUnavailable

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "thrum_engine.daemon", "--repo", layout.repo],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited ({proc.returncode}): see {layout.log_path}")
            try:
                c = Client(layout.socket_path, timeout=30).connect()
                try:
                    c.call("engine.info", {})
                finally:
                    c.close()
                break
            except (OSError, EngineUnavailable):
                time.sleep(0.01)
        return time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def bench_recovery(layout: Layout, base: Path) -> dict:
    home = base / "home"
    home.mkdir(exist_ok=True)
    env = _env(home)
    try:
        first = time_daemon_start(layout, env)  # builds the projection (catch-up from an empty database)
        intact = time_daemon_start(layout, env)
        with open(layout.db_path, "r+b") as fh:
            fh.write(b"GARBAGEGARBAGEGARBAGE")
        corrupt = time_daemon_start(layout, env)
        log = Path(layout.log_path).read_text()
        recovered = "rebuilding it from the journal" in log
        again = time_daemon_start(layout, env)
    finally:
        subprocess.run(
            ["tmux", "-L", env["THRUM_TMUX__SOCKET_NAME"], "kill-server"], capture_output=True, check=False
        )
    return {
        "first_start_s": round(first, 3),
        "intact_start_s": round(intact, 3),
        "corrupt_start_s": round(corrupt, 3),
        "recovered": recovered,
        "next_start_s": round(again, 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="thrum-bench-recovery-"))
    out: dict = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "messages": a.messages,
    }
    try:
        plain = scratch_repo(base, "plain")
        out["journal_events"] = write_journal(plain, a.messages, mixed=False)
        out["recovery"] = bench_recovery(plain, base)
        out["rebuild_plain"] = bench_rebuild(plain, a.runs)
        mixed = scratch_repo(base, "mixed")
        write_journal(mixed, a.messages, mixed=True)
        out["rebuild_mixed"] = bench_rebuild(mixed, a.runs)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if a.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    r = out["recovery"]
    print(f"== daemon start to first answer, {a.messages:,} messages ({out['journal_events']:,} events)")
    print(f"  intact projection   {r['intact_start_s']:6.2f} s   (baseline)")
    print(f"  corrupt projection  {r['corrupt_start_s']:6.2f} s   (moved aside + rebuilt: {r['recovered']})")
    print(f"  empty projection    {r['first_start_s']:6.2f} s   (first start: catch-up)")
    for key, what in (("rebuild_plain", "plain lines"), ("rebuild_mixed", "a third on the json path")):
        b = out[key]
        print(
            f"== rebuild, {what}: {b['events']:,} events: checks on {b['validated_events_per_s']:,}/s,"
            f" off {b['unvalidated_events_per_s']:,}/s ({b['cost_pct']} % cost)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Issue 16's cost on the send path: the round trip of a plain `message.send` (one client, one
connection, one message at a time: what a CLI send or an MCP tool waits for), on this checkout and on
a baseline's `src` (`--baseline-src`, e.g. the commit before the asks/ledger/guard work), interleaved
in one run so load on the shared cores hits both alike. Also this checkout's `--ask` send, and the
`sent` listing that now carries the ledger.

    python bench/asks.py --baseline-src /tmp/base/src [--sends 2000] [--reps 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import Target, pct  # bench/engine.py: a daemon on this checkout's code or a baseline's


def round_trips(t: Target, n: int, params: dict, method: str = "message.send") -> list[float]:
    from thrum_engine.rpc.client import Client

    os.chdir(t.cwd)  # the engine knows a caller by its cwd
    c = Client(t.sock, 60).connect()
    try:
        for _ in range(50):  # warm up
            c.call(method, params)
        lat = []
        for _ in range(n):
            t0 = time.perf_counter()
            c.call(method, params)
            lat.append((time.perf_counter() - t0) * 1e6)
        return lat
    finally:
        c.close()


def summary(lat: list[float]) -> dict:
    return {
        "p50_us": round(statistics.median(lat), 1),
        "p90_us": round(pct(lat, 90), 1),
        "p99_us": round(pct(lat, 99), 1),
        "mean_us": round(statistics.fmean(lat), 1),
    }


PLAIN = {"caller": "alice", "body": "benchmark message", "to": ["@bob"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline-src", default=None, help="the src folder of the code to compare with")
    ap.add_argument("--sends", type=int, default=2000, help="sends per rep and target")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    names = ["thrum"] + (["baseline"] if a.baseline_src else [])
    targets = [Target("thrum")] + (
        [Target("baseline", str(Path(a.baseline_src).resolve()))] if a.baseline_src else []
    )
    runs: dict[str, dict[str, list[float]]] = {n: {"plain": [], "ask": [], "sent": []} for n in names}
    try:
        for rep in range(a.reps):
            order = targets if rep % 2 == 0 else targets[::-1]  # neither always goes first
            for t in order:
                runs[t.name]["plain"] += round_trips(t, a.sends, PLAIN)
            runs["thrum"]["ask"] += round_trips(targets[0], a.sends // 4, {**PLAIN, "ask": True})
            for t in order:
                runs[t.name]["sent"] += round_trips(t, 100, {"caller": "alice", "limit": 50}, "message.sent")
    finally:
        for t in targets:
            t.close()
    out: dict = {"sends_per_rep": a.sends, "reps": a.reps, "machine": {"cpus": os.cpu_count()}}
    for n in names:
        out[n] = {k: summary(v) for k, v in runs[n].items() if v}
    if a.baseline_src:
        out["plain_p50_ratio"] = round(
            out["thrum"]["plain"]["p50_us"] / out["baseline"]["plain"]["p50_us"], 3
        )
        out["plain_p99_ratio"] = round(
            out["thrum"]["plain"]["p99_us"] / out["baseline"]["plain"]["p99_us"], 3
        )
    if a.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    print(f"== send round trip, one client, {a.sends} x {a.reps} interleaved (us)")
    for n in names:
        for k, s in out[n].items():
            print(
                f"  {n:9s} {k:6s} p50 {s['p50_us']:8.1f}  p90 {s['p90_us']:8.1f}  p99 {s['p99_us']:8.1f}  mean {s['mean_us']:8.1f}"
            )
    if a.baseline_src:
        print(
            f"  plain send vs baseline: p50 {out['plain_p50_ratio']:.3f}x  p99 {out['plain_p99_ratio']:.3f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Schedules (issue 16): 10,000 pending schedules cost the engine nothing while they wait, and fire
on time.

* idle: the headless daemon's CPU over `--window` seconds with no schedule, then the same window
  with `--pending` (10,000) schedules waiting (due in 30+ days), as % of one core.
* lateness: with those still pending, `--fires` (300) more due over the next ~10 s; lateness of
  each = its message's created_at minus the time it was due (both written by the engine), p50/p99.

Targets: idle CPU <= 1 % of a core with 10,000 pending; lateness p99 <= 1 s.

    .venv/bin/python bench/schedules.py [--pending 10000] [--fires 300] [--window 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import time

from issue16 import Scratch, pct

from thrum_engine.durations import parse_iso


def idle(s: Scratch, window: float) -> float:
    c0, t0 = s.cpu(), time.monotonic()
    time.sleep(window)
    return 100 * (s.cpu() - c0) / (time.monotonic() - t0)


def run(a: argparse.Namespace) -> dict:
    s = Scratch("schedules")
    try:
        time.sleep(2)  # let start-up settle (tmux discovery, first flushes)
        out: dict = {"pending": a.pending, "fires": a.fires, "window_s": a.window}
        out["idle_cpu_pct_no_schedules"] = round(idle(s, a.window), 2)
        out["rss_mb_no_schedules"] = round(s.rss_mb(), 1)
        t0 = time.perf_counter()
        for i in range(a.pending):
            s.call(
                "schedule.create",
                {"to": ["@bob"], "body": f"reminder {i}", "in_seconds": 30 * 86400 + i * 7.0},
            )
        out["create_per_s"] = round(a.pending / (time.perf_counter() - t0))
        time.sleep(1)
        out["idle_cpu_pct_with_pending"] = round(idle(s, a.window), 2)
        out["rss_mb_with_pending"] = round(s.rss_mb(), 1)
        rng = random.Random(16)
        for i in range(a.fires):
            s.call("schedule.create", {"to": ["@bob"], "body": f"fire {i}", "in_seconds": rng.uniform(2, 12)})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = s.call("schedule.list", {"everyone": True, "limit": 1})["pending"]  # the count: cheap
            if left is not None and left <= a.pending:
                break
            time.sleep(0.5)
        msgs = s.call("message.inbox", {"page_size": 1000, "peek": True}, who="bob")["messages"]
        late = [
            parse_iso(m["created_at"]) - parse_iso(m["meta"]["scheduled"]["due"])
            for m in msgs
            if (m.get("meta") or {}).get("scheduled")
        ]
        out["fired"] = len(late)
        out["lateness_ms"] = {
            "p50": round(pct(late, 50) * 1000, 2),
            "p99": round(pct(late, 99) * 1000, 2),
            "max": round(max(late) * 1000, 2),
        } if late else None  # fmt: skip
        return out
    finally:
        s.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pending", type=int, default=10_000)
    ap.add_argument("--fires", type=int, default=300)
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = run(a)
    if a.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"== headless engine, idle CPU over {r['window_s']:g} s (target <= 1 % of a core with 10k pending)")
    print(f"  no schedules          {r['idle_cpu_pct_no_schedules']:5.2f} %   RSS {r['rss_mb_no_schedules']} MB")
    print(
        f"  {r['pending']:,} pending     {r['idle_cpu_pct_with_pending']:5.2f} %   RSS {r['rss_mb_with_pending']} MB"
        f"   (created at {r['create_per_s']}/s over the socket)"
    )
    lat = r["lateness_ms"]
    print(f"== {r['fired']}/{r['fires']} fires due over ~10 s, with {r['pending']:,} pending (target p99 <= 1 s)")
    if lat:
        print(f"  lateness p50 {lat['p50']:.1f} ms   p99 {lat['p99']:.1f} ms   max {lat['max']:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

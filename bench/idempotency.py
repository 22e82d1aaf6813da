"""Idempotent sends (issue 16): `message.send` with an idempotency key next to the same send without
one, in the same run, over one socket connection to a headless daemon. Blocks of sends alternate
(keyed, unkeyed, unkeyed, keyed, ...) so drift on a shared machine lands on both. Each keyed send
has a fresh key (what the CLI does: one per invocation).

Target: a keyed send costs <= 5 % more than an unkeyed one (round trip and engine CPU).

    .venv/bin/python bench/idempotency.py [--rounds 8] [--block 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from issue16 import Scratch, pct

_NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")


def key(n: int) -> str:
    """A key shaped like the CLI's (`cli-` and 24 letters; a zero-padded number would hold a run of
    20 digits, which sends the whole request to the slow JSON parser)."""
    return "cli-" + f"{n:024x}".translate(_NO_DIGITS)


def run(a: argparse.Namespace) -> dict:
    s = Scratch("idem")
    try:
        for i in range(300):  # warm up: caches, the page cache, the allocator
            s.call("message.send", {"to": ["@bob"], "body": f"warm {i}", "idempotency_key": f"w{i}"})
        times: dict[str, list[float]] = {"unkeyed": [], "keyed": []}
        cpu: dict[str, float] = {"unkeyed": 0.0, "keyed": 0.0}
        n = 0
        for r in range(a.rounds):
            order = ("keyed", "unkeyed") if r % 2 == 0 else ("unkeyed", "keyed")
            for mode in order:
                c0 = s.cpu()
                for _ in range(a.block):
                    n += 1
                    params = {"to": ["@bob"], "body": f"status update {n}: build green, 3 tests added"}
                    if mode == "keyed":
                        params["idempotency_key"] = key(n)
                    t = time.perf_counter()
                    s.call("message.send", params)
                    times[mode].append(time.perf_counter() - t)
                cpu[mode] += s.cpu() - c0
        # a repeated key: what a retry costs (answered from the first message, nothing stored)
        dup = []
        for i in range(a.block):
            t = time.perf_counter()
            s.call("message.send", {"to": ["@bob"], "body": "x", "idempotency_key": key(i + 1)})
            dup.append(time.perf_counter() - t)
        sends = a.rounds * a.block
        out: dict = {"sends_per_mode": sends}
        for mode, ts in times.items():
            out[mode] = {
                "mean_us": round(statistics.fmean(ts) * 1e6, 1),
                "p50_us": round(pct(ts, 50) * 1e6, 1),
                "p99_us": round(pct(ts, 99) * 1e6, 1),
                "engine_cpu_us_per_send": round(cpu[mode] / sends * 1e6, 1),
            }
        out["duplicate_key"] = {
            "mean_us": round(statistics.fmean(dup) * 1e6, 1),
            "p50_us": round(pct(dup, 50) * 1e6, 1),
        }
        k, u = out["keyed"], out["unkeyed"]
        out["overhead_pct"] = {
            "mean_round_trip": round(100 * (k["mean_us"] / u["mean_us"] - 1), 1),
            "p50_round_trip": round(100 * (k["p50_us"] / u["p50_us"] - 1), 1),
            "engine_cpu": round(100 * (k["engine_cpu_us_per_send"] / u["engine_cpu_us_per_send"] - 1), 1),
        }
        return out
    finally:
        s.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--block", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = run(a)
    if a.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"== message.send over one socket, {r['sends_per_mode']} sends each, alternating blocks")
    for mode in ("unkeyed", "keyed"):
        m = r[mode]
        print(
            f"  {mode:8}  mean {m['mean_us']:7.1f} us  p50 {m['p50_us']:7.1f} us  p99 {m['p99_us']:7.1f} us"
            f"  engine CPU {m['engine_cpu_us_per_send']:6.1f} us/send"
        )
    d = r["duplicate_key"]
    print(f"  repeated key (a retry, nothing stored)  mean {d['mean_us']:.1f} us  p50 {d['p50_us']:.1f} us")
    o = r["overhead_pct"]
    print(
        f"  keyed vs unkeyed: mean round trip {o['mean_round_trip']:+.1f} %, p50 {o['p50_round_trip']:+.1f} %,"
        f" engine CPU {o['engine_cpu']:+.1f} %   (target <= +5 %)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

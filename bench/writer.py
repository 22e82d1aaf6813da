"""The projection's write path in isolation: one hop to the write connection's thread (a no-op
callable, sequential and 64 at a time) and a local write (`Store.write_local`, one row per call).

Run it with two checkouts' interpreters back to back to compare writer implementations:
    A/.venv/bin/python A/bench/writer.py --json; B/.venv/bin/python B/bench/writer.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path


async def measure(calls: int, rounds: int) -> dict:
    from thrum_engine.store import Store

    with tempfile.TemporaryDirectory(prefix="thrum-bench-writer-") as tmp:
        store = Store(str(Path(tmp) / "thrum.db"))
        await store.open()
        try:
            hop, hop_cpu, burst, local = [], [], [], []
            for _ in range(rounds):
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(calls):
                    await store.in_writer_thread(lambda conn: None)
                hop.append((time.perf_counter() - t0) / calls * 1e6)
                hop_cpu.append((time.process_time() - c0) / calls * 1e6)  # both threads: load-proof
                t0 = time.perf_counter()
                for _ in range(calls // 64):
                    await asyncio.gather(*(store.in_writer_thread(lambda conn: None) for _ in range(64)))
                burst.append((time.perf_counter() - t0) / (calls // 64 * 64) * 1e6)
                t0 = time.perf_counter()
                for i in range(calls // 4):
                    await store.write_local(
                        "INSERT OR REPLACE INTO presence(agent, last_seen) VALUES (?, ?)",
                        [(f"a{i % 50}", "x")],
                    )
                local.append((time.perf_counter() - t0) / (calls // 4) * 1e6)
        finally:
            await store.close()
    return {
        "calls": calls,
        "rounds": rounds,
        "hop_us_median": round(statistics.median(hop), 2),
        "hop_us_min": round(min(hop), 2),
        "hop_cpu_us_median": round(statistics.median(hop_cpu), 2),
        "burst64_us_per_call_median": round(statistics.median(burst), 2),
        "write_local_us_median": round(statistics.median(local), 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    out = asyncio.run(measure(a.calls, a.rounds))
    if a.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        print(
            f"== writer hop: {out['hop_us_median']} us median (min {out['hop_us_min']};"
            f" {out['hop_cpu_us_median']} us of CPU),"
            f" {out['burst64_us_per_call_median']} us/call in bursts of 64;"
            f" write_local {out['write_local_us_median']} us"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

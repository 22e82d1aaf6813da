"""What one connection costs the engine as the team's worktrees grow (issue #17: an agent-facing
command's cost must not grow with the team).

The engine asks, for every connection, which worktree of the repo the peer runs in (its cwd, then
git's list of worktrees). Here: a repo with `--worktrees` linked worktrees besides bob's, and for each
checkout (this one, each `--src`), interleaved: a new connection plus one `message.inbox` from bob's
worktree (the answer parsed by the stdlib's C scanner, so the figure is the engine's side), and the
whole `thrum inbox` next to `python -c pass` in the same rounds.

    .venv/bin/python bench/connections.py [--worktrees 0,50] [--runs 200] [--src OTHER/src ...] [--json]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import Bench, baseline_parser, checkouts, pct, timed  # bench/engine.py

PROBE = r"""
import json, sys, time
import thrum_engine.rpc.client as C
C.loads = json.loads  # the engine's side, not the CLI's pure-Python parse
path, runs = sys.argv[1], int(sys.argv[2])
lat = []
for _ in range(runs):
    t = time.perf_counter()
    c = C.Client(path).connect()
    c.call("message.inbox", {"caller": "bob", "page_size": 5})
    lat.append((time.perf_counter() - t) * 1000)
    c.close()
print(json.dumps(lat))
"""


def setup(src: str | None, worktrees: int) -> Bench:
    b = Bench(src)
    for i in range(worktrees):
        b.git("worktree", "add", "-q", "-b", f"team/{i}", str(b.tmp / "team" / f"w{i}"))
    b.thrum(["send", "hello bob", "--to", "@bob"], b.repo)
    return b


def main() -> None:
    ap = baseline_parser(__doc__)
    ap.add_argument("--worktrees", default="0,50", help="linked worktrees besides bob's, comma-separated")
    ap.add_argument("--runs", type=int, default=200, help="connections per checkout and size")
    ap.add_argument("--cli-runs", type=int, default=30, help="whole `thrum inbox` runs per checkout and size")
    a = ap.parse_args()
    srcs = checkouts(a.src)
    sizes = [int(n) for n in a.worktrees.split(",")]
    from thrum_engine.layout import Layout

    results: dict = {}
    for n in sizes:
        benches = {name: setup(src, n) for name, src in srcs.items()}
        try:
            conn: dict[str, list[float]] = {name: [] for name in benches}
            cli: dict[str, list[float]] = {name: [] for name in benches}
            floor: list[float] = []
            rounds = 5
            for _ in range(rounds):  # interleaved: a drift in the machine moves every checkout alike
                for name, b in benches.items():
                    sock = Layout(str(b.repo)).socket_path
                    r = subprocess.run(
                        [sys.executable, "-c", PROBE, sock, str(a.runs // rounds)],
                        cwd=b.wt,
                        env=b.env,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    conn[name] += json.loads(r.stdout)
                    cli[name] += timed([*b.cmd, "inbox"], b.wt, b.env, max(1, a.cli_runs // rounds))
                    floor += timed([sys.executable, "-c", "pass"], b.wt, b.env, max(1, a.cli_runs // rounds))
            f = statistics.median(floor)
            results[n] = {
                name: {
                    "connect_inbox_p50_ms": round(statistics.median(conn[name]), 3),
                    "connect_inbox_p90_ms": round(pct(conn[name], 90), 3),
                    "cli_inbox_ms": round(statistics.median(cli[name]), 2),
                    "cli_x_floor": round(statistics.median(cli[name]) / f, 3),
                }
                for name in benches
            }
            results[n]["floor_ms"] = round(f, 2)
        finally:
            for b in benches.values():
                b.close()
    if a.json:
        print(json.dumps({"load": os.getloadavg()[0], "worktrees": results}, indent=2, sort_keys=True))
        return
    print(f"load {os.getloadavg()[0]:.2f}")
    print(
        f"{'worktrees':>9}  {'checkout':<12} {'connect+inbox p50':>18} {'p90':>8} {'thrum inbox':>12} {'x floor':>8}"
    )
    for n, row in results.items():
        for name in srcs:
            r = row[name]
            print(
                f"{n:>9}  {name:<12} {r['connect_inbox_p50_ms']:>15.3f} ms {r['connect_inbox_p90_ms']:>8.3f}"
                f" {r['cli_inbox_ms']:>9.2f} ms {r['cli_x_floor']:>8.3f}"
            )
        print(f"{'':>9}  floor {row['floor_ms']:.2f} ms")


if __name__ == "__main__":
    main()

"""How the agent-facing CLI's cost grows with the team (issue #17's growth rule, for the team's size
rather than the store's): N agents, each registered in a worktree of its own with a changed file,
then every agent-facing command run as a real subprocess by one of them, and `who-has` asked by
`--crowd` agents at once (all started together; the time until the last answer).

Printed per size and checkout: the median of each command and its ratio to the smallest size.
With `--src`, every checkout runs as `python -m thrum_engine` with its src on PYTHONPATH (the same
launcher for all), interleaved command by command.

    .venv/bin/python bench/team.py [--agents 2,50] [--runs 7] [--crowd 20] [--src OTHER/src ...] [--json]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import Bench, baseline_parser, checkouts, timed  # bench/engine.py

COMMANDS = [
    ["inbox"],
    ["team"],
    ["status"],
    ["prime"],
    ["overview"],
    ["whoami"],
    ["sent"],
    ["agent", "list"],
    ["who-has", "README.md"],
]


def setup(src: str | None, agents: int) -> tuple[Bench, Path]:
    b = Bench(src)
    for i in range(agents):
        wt = b.tmp / "team" / f"w{i}"
        b.git("worktree", "add", "-q", "-b", f"team/{i}", str(wt))
        b.thrum(["quickstart", "--name", f"agent_{i:02d}", "--role", "worker", "--intent", "work"], wt)
        (wt / f"f{i}.txt").write_text("changed\n")
    return b, (b.tmp / "team" / "w0") if agents else b.wt


def crowd(b: Bench, cwd: Path, n: int) -> float:
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen([*b.cmd, "who-has", "README.md"], cwd=cwd, env=b.env, stdout=subprocess.DEVNULL)
        for _ in range(n)
    ]
    for p in procs:
        p.wait()
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = baseline_parser(__doc__)
    ap.add_argument("--agents", default="2,50", help="team sizes, comma-separated (each in its own worktree)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--crowd", type=int, default=20, help="agents asking who-has at once")
    a = ap.parse_args()
    srcs = checkouts(a.src)
    sizes = [int(n) for n in a.agents.split(",")]
    rows: dict = {}  # size -> checkout -> command -> median ms
    for n in sizes:
        setups = {name: setup(src, n) for name, src in srcs.items()}
        try:
            times: dict[str, dict[str, list[float]]] = {name: {} for name in setups}
            for cmd in COMMANDS:
                key = " ".join(cmd)
                for name, (b, cwd) in setups.items():
                    timed([*b.cmd, *cmd], cwd, b.env, 1)  # warm
                for _ in range(a.runs):
                    for name, (b, cwd) in setups.items():
                        times[name].setdefault(key, []).extend(timed([*b.cmd, *cmd], cwd, b.env, 1))
            for _ in range(3):
                for name, (b, cwd) in setups.items():
                    times[name].setdefault(f"{a.crowd} x who-has at once", []).append(crowd(b, cwd, a.crowd))
            rows[n] = {
                name: {k: round(statistics.median(v), 2) for k, v in t.items()} for name, t in times.items()
            }
        finally:
            for b, _ in setups.values():
                b.close()
    if a.json:
        print(json.dumps({"load": os.getloadavg()[0], "agents": rows}, indent=2, sort_keys=True))
        return
    print(f"load {os.getloadavg()[0]:.2f}; medians in ms (x: against {sizes[0]} agents, same checkout)")
    keys = list(rows[sizes[0]]["this"])
    head = "".join(f"{f'{n} {name}':>26}" for n in sizes for name in srcs)
    print(f"{'command':<24}{head}")
    for k in keys:
        cells = ""
        for n in sizes:
            for name in srcs:
                v, v0 = rows[n][name][k], rows[sizes[0]][name][k]
                cells += f"{v:>17.1f} ({v / v0:4.1f}x)"
        print(f"{k:<24}{cells}")


if __name__ == "__main__":
    main()

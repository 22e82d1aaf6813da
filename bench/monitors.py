"""Monitor benchmark: 100 monitors on one busy log (1,000 lines/s): match -> message in the
target's inbox latency, and engine CPU.

Targets (issue #4): match -> inbox p50 <= 100 ms; engine <= 25 % of one core.

    .venv/bin/python bench/monitors.py [--monitors 100] [--rate 1000] [--seconds 10]
                                       [--source file|command] [--json]

`--section redos` (issue #9, F1): `message.send` latency from other clients over the socket while
catastrophic-backtracking monitors (`^(a|a)+$` fed `aaa…a!`) keep the match pool busy, next to the
same figure with no monitor running (the baseline, same run). Target: p99 <= 50 ms.

    .venv/bin/python bench/monitors.py --section redos [--sends 300] [--clients 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import _cpu, env_for, pct

BIN = Path(sys.executable).parent


def redos(a: argparse.Namespace) -> dict:
    """Sends timed with no monitor, then while catastrophic rules match. The budget is raised to
    `--budget` so the rules stay busy for the whole measurement, and there is one rule per match
    worker plus one waiting (the worst case the pool allows); the rules must still be running when
    the measurement ends, or the figure would not be "while it runs"."""
    from thrum_engine.layout import Layout
    from thrum_engine.patterns import MATCH_WORKERS
    from thrum_engine.rpc.client import Client

    tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-redos-"))
    (tmp / "home").mkdir()
    env = env_for(tmp / "home")
    env["THRUM_TMUX__SOCKET_NAME"] = f"thrum-bench-{os.getpid()}"
    env["THRUM_MONITORS__MATCH_BUDGET_SECONDS"] = str(a.budget)
    repo = tmp / "repo"
    repo.mkdir()
    thrum = [str(BIN / "thrum")] if (BIN / "thrum").exists() else [sys.executable, "-m", "thrum_engine"]

    def run(*args: str, name: str = "boss") -> str:
        p = subprocess.run(
            thrum + list(args),
            cwd=repo,
            env=dict(env, THRUM_NAME=name),
            capture_output=True,
            text=True,
            check=False,
        )
        if p.returncode != 0:
            raise SystemExit(f"thrum {' '.join(args)}: {p.stderr}")
        return p.stdout

    def timed_sends(n: int, clients: int) -> list[float]:
        sock = Layout(str(repo)).socket_path
        lat: list[float] = []

        def one(k: int) -> None:
            c = Client(sock, timeout=60).connect()
            for i in range(k, n, clients):
                t0 = time.perf_counter()
                c.call("message.send", {"caller": "bob", "body": f"ping {i}", "to": ["@boss"]})
                lat.append((time.perf_counter() - t0) * 1000)
            c.close()

        threads = [threading.Thread(target=one, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return lat

    def figures(lat: list[float]) -> dict:
        return {
            "n": len(lat),
            "p50": round(pct(lat, 50), 2),
            "p99": round(pct(lat, 99), 2),
            "max": round(max(lat), 2),
        }

    out: dict = {"section": "redos", "budget_s": a.budget, "clients": a.clients, "sends": a.sends}
    try:
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, env=env, check=True)
        run("quickstart", "--name", "boss", "--role", "lead")
        run("quickstart", "--name", "bob", "--role", "dev", name="bob")
        os.chdir(repo)
        timed_sends(50, a.clients)  # warm-up
        out["baseline_ms"] = figures(timed_sends(a.sends, a.clients))
        names = [f"redos{i}" for i in range(MATCH_WORKERS + 1)]
        for name in names:
            run(
                "monitor",
                "start",
                "--name",
                name,
                "--match",
                "^(a|a)+$",
                "--to",
                "@boss",
                "--debounce",
                "0",
                "--",
                "yes",
                "a" * 40 + "!",
            )  # a flood, held back by the rule's full inbox
        time.sleep(1.0)  # the rules are stuck in the pool and their inboxes full: the steady state
        t0 = time.perf_counter()
        out["during_ms"] = figures(timed_sends(a.sends, a.clients))
        out["during_seconds"] = round(time.perf_counter() - t0, 2)
        states = {
            m["name"]: m["status"] for m in json.loads(run("monitor", "list", "--all", "--json"))["monitors"]
        }
        out["rules_still_running_at_end"] = sum(states[n] == "running" for n in names)
        out["target_p99_ms"] = 50
        out["ok"] = out["during_ms"]["p99"] <= 50
    finally:
        subprocess.run(thrum + ["daemon", "stop"], cwd=repo, env=env, capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--section", choices=("throughput", "redos"), default="throughput")
    ap.add_argument("--sends", type=int, default=300, help="redos: sends timed in each phase")
    ap.add_argument("--clients", type=int, default=4, help="redos: concurrent socket clients")
    ap.add_argument("--budget", type=float, default=30, help="redos: the match budget (s) during the bench")
    ap.add_argument("--monitors", type=int, default=100)
    ap.add_argument("--rate", type=int, default=1000, help="log lines per second")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--source", choices=("file", "command"), default="file")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.section == "redos":
        r = redos(a)
        if a.json:
            print(json.dumps(r, indent=2, sort_keys=True))
        else:
            b, d = r["baseline_ms"], r["during_ms"]
            print(f"== message.send from {r['clients']} other clients, {r['sends']} sends each phase")
            print(f"  no monitor:             p50 {b['p50']} ms, p99 {b['p99']} ms, max {b['max']} ms")
            print(
                f"  catastrophic monitors:  p50 {d['p50']} ms, p99 {d['p99']} ms, max {d['max']} ms"
                f"  ({r['rules_still_running_at_end']} rules still matching at the end; target p99 <= 50 ms)"
            )
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-mon-"))
    (tmp / "home").mkdir()
    env = env_for(tmp / "home")
    env["THRUM_TMUX__SOCKET_NAME"] = f"thrum-bench-{os.getpid()}"
    repo = tmp / "repo"
    repo.mkdir()
    logf = repo / "busy.log"
    logf.write_text("")
    thrum = [str(BIN / "thrum")] if (BIN / "thrum").exists() else [sys.executable, "-m", "thrum_engine"]
    boss_env = dict(env, THRUM_NAME="boss")

    def run(*args: str, e: dict = boss_env) -> str:
        p = subprocess.run(thrum + list(args), cwd=repo, env=e, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"thrum {' '.join(args)}: {p.stderr}")
        return p.stdout

    out: dict = {"monitors": a.monitors, "lines_per_s": a.rate, "source": a.source}
    stop = threading.Event()
    try:
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, env=env, check=True)
        run("quickstart", "--name", "boss", "--role", "lead")
        run("quickstart", "--name", "watcher", "--role", "ops", e=dict(env, THRUM_NAME="watcher"))
        for i in range(a.monitors):
            common = [
                "--name",
                f"m{i:03d}",
                "--match",
                f"ALERT-{i:03d}\\b",
                "--to",
                "@watcher",
                "--debounce",
                "0",
            ]
            if a.source == "file":
                run("monitor", "watch-file", *common, "--path", str(logf))
            else:
                run("monitor", "start", *common, "--", "tail", "-n0", "-F", str(logf))
        time.sleep(1)
        pid = json.loads((repo / ".thrum/var/thrum.pid").read_text())["pid"]
        sent: dict[str, float] = {}

        def writer() -> None:
            n = 0
            batch = max(a.rate // 100, 1)
            with open(logf, "a", buffering=1) as fh:
                next_t = time.perf_counter()
                while not stop.is_set():
                    lines = [f"noise line {n + j} nothing to see\n" for j in range(batch)]
                    n += batch
                    if n % (a.rate // 2 or 1) < batch:  # two alerts a second
                        k = random.randrange(a.monitors)
                        tag = f"ALERT-{k:03d} #{n}"
                        lines.append(tag + "\n")
                        sent[f"#{n}"] = time.perf_counter()
                    fh.write("".join(lines))
                    next_t += 0.01
                    time.sleep(max(0.0, next_t - time.perf_counter()))

        # The target blocks in `wait` on its own connection; each wake-up is timed against the write.
        from thrum_engine.layout import Layout
        from thrum_engine.rpc.client import Client

        os.chdir(repo)
        client = Client(Layout(str(repo)).socket_path, timeout=30).connect()
        lat: list[float] = []
        t = threading.Thread(target=writer, daemon=True)
        c0, w0 = _cpu(pid), time.perf_counter()
        t.start()
        deadline = time.perf_counter() + a.seconds
        while time.perf_counter() < deadline:
            r = client.call("message.wait", {"caller": "watcher", "timeout": 5})
            now = time.perf_counter()
            for m in r.get("messages", []):
                tag = m["body"]["content"].rsplit(" ", 1)[-1]
                if tag in sent:
                    lat.append((now - sent.pop(tag)) * 1000)
        stop.set()
        t.join()
        out["engine_cpu_pct"] = round(100 * (_cpu(pid) - c0) / (time.perf_counter() - w0), 1)
        out["latency_ms"] = (
            {"n": len(lat), "p50": round(pct(lat, 50), 1), "p95": round(pct(lat, 95), 1)} if lat else None
        )
        client.close()
    finally:
        stop.set()
        subprocess.run(thrum + ["daemon", "stop"], cwd=repo, env=env, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        lat = out["latency_ms"]
        print(f"== {a.monitors} {a.source} monitors on one log at {a.rate} lines/s")
        print(f"  engine CPU {out['engine_cpu_pct']} % of one core")
        if lat:
            print(f"  match -> inbox: p50 {lat['p50']} ms, p95 {lat['p95']} ms ({lat['n']} matches)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Monitor benchmark: 100 monitors on one busy log (1,000 lines/s): match -> message in the
target's inbox latency, and engine CPU.

Targets (issue #4): match -> inbox p50 <= 100 ms; engine <= 25 % of one core.

    .venv/bin/python bench/monitors.py [--monitors 100] [--rate 1000] [--seconds 10]
                                       [--source file|command] [--json]
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
from engine import _cpu, env_for, pct  # noqa: E402

BIN = Path(sys.executable).parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--monitors", type=int, default=100)
    ap.add_argument("--rate", type=int, default=1000, help="log lines per second")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--source", choices=("file", "command"), default="file")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

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
            common = ["--name", f"m{i:03d}", "--match", f"ALERT-{i:03d}\\b", "--to", "@watcher", "--debounce", "0"]
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
        out["latency_ms"] = {"n": len(lat), "p50": round(pct(lat, 50), 1), "p95": round(pct(lat, 95), 1)} \
            if lat else None
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

"""tmux benchmarks: engine CPU with 50 idle fake-agent panes and with 50 panes printing
10 lines/s, and the time from a message's ack to its nudge being visible in an idle pane.

Targets (issue #3): 50 idle panes <= 2 % of one core; 50 chatty panes <= 15 %;
message -> nudge typed into an idle pane p50 <= 250 ms.

    .venv/bin/python bench/tmux.py [--panes 50] [--seconds 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import _cpu, env_for, pct

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "fake_agent.py"
BIN = Path(sys.executable).parent


def scratch(name: str, **settings: str) -> tuple[Path, str, dict, Path, list[str]]:
    """A temp dir, a private tmux server name, the environment pointing at both (`settings` are
    more THRUM_* variables), an empty repo dir and the thrum command to run."""
    tmp = Path(tempfile.mkdtemp(prefix=f"thrum-bench-{name}-"))
    sock = f"thrum-bench-{uuid.uuid4().hex[:8]}"
    env = env_for(tmp / "home")
    (tmp / "home").mkdir()
    env.update(THRUM_TMUX__SOCKET_NAME=sock, THRUM_TMUX__SHELL="bash --norc --noprofile", **settings)
    repo = tmp / "repo"
    repo.mkdir()
    thrum = [str(BIN / "thrum")] if (BIN / "thrum").exists() else [sys.executable, "-m", "thrum_engine"]
    return tmp, sock, env, repo, thrum


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--panes", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    tmp, sock, env, repo, thrum = scratch("tmux", THRUM_TMUX__SILENCE_SECONDS="0.5")

    def run(*args: str, check: bool = True) -> str:
        p = subprocess.run(thrum + list(args), cwd=repo, env=env, capture_output=True, text=True)
        if check and p.returncode != 0:
            raise SystemExit(f"thrum {' '.join(args)}: {p.stderr}")
        return p.stdout

    out: dict = {"panes": a.panes}
    try:
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, env=env, check=True)
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=repo, env=env, check=True)
        run("init")
        presets = {
            "fake": {"extends": "claude", "command": [sys.executable, str(FAKE), "--log", str(tmp / "log")]}
        }
        (repo / ".thrum" / "runtimes.json").write_text(json.dumps({"presets": presets}))
        run("daemon", "restart")
        env_boss = dict(env, THRUM_NAME="boss")
        subprocess.run(
            thrum + ["quickstart", "--name", "boss", "--role", "lead"],
            cwd=repo,
            env=env_boss,
            check=True,
            capture_output=True,
        )
        names = [f"a{i:02d}" for i in range(a.panes)]
        t0 = time.perf_counter()
        for n in names:
            run("tmux", "create", n, "--cwd", str(repo), "--name", n, "--role", "worker", "--runtime", "fake")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: run("tmux", "launch", n), names))
        out["setup_seconds"] = round(time.perf_counter() - t0, 1)
        time.sleep(2)
        pid = json.loads((repo / ".thrum/var/thrum.pid").read_text())["pid"]

        c0, w0 = _cpu(pid), time.perf_counter()
        time.sleep(a.seconds)
        out["idle_cpu_pct"] = round(100 * (_cpu(pid) - c0) / (time.perf_counter() - w0), 2)

        # Nudge latency: ack of a send -> the nudge line visible in the (idle) pane.
        from thrum_engine.layout import Layout
        from thrum_engine.rpc.client import Client

        os.chdir(repo)
        client = Client(Layout(str(repo)).socket_path).connect()
        lat = []
        for i in range(a.rounds):
            target = names[i % len(names)]
            client.call("message.send", {"caller": "boss", "body": f"round {i}", "to": ["@" + target]})
            acked = time.perf_counter()
            deadline = acked + 10
            while time.perf_counter() < deadline:
                screen = subprocess.run(
                    ["tmux", "-L", sock, "capture-pane", "-p", "-t", f"={target}:"],
                    capture_output=True,
                    text=True,
                ).stdout
                if "New message from @boss" in screen:
                    lat.append((time.perf_counter() - acked) * 1000)
                    break
                time.sleep(0.005)
            time.sleep(0.1)  # let the pane settle back to idle
        client.close()
        out["nudge_ms"] = (
            {
                "rounds": len(lat),
                "p50": round(pct(lat, 50), 1),
                "p95": round(pct(lat, 95), 1),
                "mean": round(statistics.mean(lat), 1),
            }
            if lat
            else None
        )

        # Chatty: the fake agent exits and the pane's shell prints 10 lines a second.
        for n in names:
            subprocess.run(
                ["tmux", "-L", sock, "send-keys", "-t", f"={n}:", "-l", "exit"], capture_output=True
            )
            subprocess.run(["tmux", "-L", sock, "send-keys", "-t", f"={n}:", "Enter"], capture_output=True)
        time.sleep(1)
        for n in names:
            subprocess.run(
                [
                    "tmux",
                    "-L",
                    sock,
                    "send-keys",
                    "-t",
                    f"={n}:",
                    "-l",
                    "while :; do echo chatty line $RANDOM; sleep 0.1; done",
                ],
                capture_output=True,
            )
            subprocess.run(["tmux", "-L", sock, "send-keys", "-t", f"={n}:", "Enter"], capture_output=True)
        time.sleep(2)
        c0, w0 = _cpu(pid), time.perf_counter()
        time.sleep(a.seconds)
        out["chatty_cpu_pct"] = round(100 * (_cpu(pid) - c0) / (time.perf_counter() - w0), 2)
        out["chatty_lines_per_s"] = a.panes * 10
    finally:
        try:
            run("daemon", "stop", check=False)
        finally:
            subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        print(f"== {a.panes} panes (set up in {out['setup_seconds']} s)")
        print(f"  idle panes:   engine CPU {out['idle_cpu_pct']} % of one core")
        print(
            f"  chatty panes: engine CPU {out['chatty_cpu_pct']} % of one core ({out['chatty_lines_per_s']} lines/s)"
        )
        n = out["nudge_ms"]
        if n:
            print(f"  message -> nudge visible: p50 {n['p50']} ms, p95 {n['p95']} ms ({n['rounds']} rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

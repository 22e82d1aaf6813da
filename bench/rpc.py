"""Socket hardening benchmarks (issue #9): an agent's `thrum send` with 1,000 idle connections held
by one process, next to the same without them; a stopped (SIGSTOP) engine: time until the client's
error; the cost of the CLI's JSON reader (`_json`, as used) next to importing `json`.

Targets: with 1,000 idle connections held, a `thrum send` still succeeds; a hung engine is
reported by the client within 15 s.

    .venv/bin/python bench/rpc.py [--json] [--only idle,hung,json] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine import env_for  # bench/engine.py: the same scratch environment

BIN = Path(sys.executable).parent
# With PYTHONPATH set (to time another checkout's src/, e.g. the baseline), run that code, not the installed one.
THRUM = (
    [str(BIN / "thrum")]
    if (BIN / "thrum").exists() and not os.environ.get("PYTHONPATH")
    else [sys.executable, "-m", "thrum_engine"]
)


class Repo:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-rpc-"))
        (self.tmp / "home").mkdir()
        self.env = env_for(self.tmp / "home")
        self.path = self.tmp / "repo"
        self.path.mkdir()
        for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]):
            subprocess.run(["git", *args], cwd=self.path, env=self.env, check=True, capture_output=True)
        self.env["THRUM_NAME"] = "alice"
        self.thrum("quickstart", "--name", "alice", "--role", "impl")
        self.thrum("quickstart", "--name", "bob", "--role", "rev", THRUM_NAME="bob")
        from thrum_engine.layout import Layout

        self.socket = Layout(str(self.path)).socket_path

    def thrum(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        r = subprocess.run(
            THRUM + list(args),
            cwd=self.path,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and r.returncode != 0:
            raise SystemExit(f"thrum {' '.join(args)} failed: {r.stderr}")
        return r

    def pid(self) -> int:
        return json.loads((self.path / ".thrum" / "var" / "thrum.pid").read_text())["pid"]

    def close(self) -> None:
        self.thrum("daemon", "stop", check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def send_times(repo: Repo, runs: int) -> tuple[list[float], int]:
    times, failures = [], 0
    for i in range(runs):
        t = time.perf_counter()
        r = repo.thrum("send", f"bench {i}", "--to", "@bob", check=False)
        times.append((time.perf_counter() - t) * 1000)
        failures += r.returncode != 0
    return times, failures


def summary(times: list[float]) -> dict:
    s = sorted(times)
    return {"median_ms": round(statistics.median(s), 1), "max_ms": round(s[-1], 1), "runs": len(s)}


def hold(path: str, n: int) -> tuple[list[socket.socket], int]:
    held, eagain = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX)
        while True:
            try:
                s.connect(path)
                break
            except BlockingIOError:
                eagain += 1
                time.sleep(0.001)
        held.append(s)
    return held, eagain


def still_open(held: list[socket.socket]) -> int:
    """How many held connections the engine still keeps: the others it answered (engine busy) or closed."""
    n = 0
    for s in held:
        s.setblocking(False)
        try:
            s.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            n += 1  # nothing to read and not closed: still served
        except OSError:
            pass
    return n


def bench_idle(repo: Repo, runs: int) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 4096, hard))
    base, base_fail = send_times(repo, runs)
    held, eagain = hold(repo.socket, 1000)
    time.sleep(0.5)
    try:
        loaded, loaded_fail = send_times(repo, runs)
        kept = still_open(held)
    finally:
        for s in held:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return {
        "without": {**summary(base), "failures": base_fail},
        "with_1000_idle": {**summary(loaded), "failures": loaded_fail},
        "connects_retried_on_eagain": eagain,
        "idle_connections_the_engine_kept": kept,
    }


def bench_hung(repo: Repo) -> dict:
    pid = repo.pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        t = time.perf_counter()
        r = repo.thrum("send", "while stopped", "--to", "@bob", check=False)
        took = time.perf_counter() - t
    finally:
        os.kill(pid, signal.SIGCONT)
    return {"seconds_to_error": round(took, 2), "exit": r.returncode, "error": r.stderr.strip()}


def bench_json(runs: int) -> dict:
    def wall(code: str) -> float:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append((time.perf_counter() - t) * 1000)
        return round(statistics.median(times), 2)

    def self_us(module: str) -> int:
        """Cumulative import time of `module` (µs, -X importtime), the median of runs."""
        values = []
        for _ in range(runs):
            err = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", f"import {module}"],
                capture_output=True,
                text=True,
                check=True,
            ).stderr
            rows = [ln.split("|") for ln in err.splitlines() if ln.startswith("import time:")]
            values.append(next(int(r[1]) for r in reversed(rows) if r[2].strip() == module))
        return int(statistics.median(values))

    return {
        "python_-c_pass_ms": wall("pass"),
        "import__json_ms": wall("import _json"),
        "import_json_ms": wall("import json"),
        "import_rpc_client_ms": wall("import thrum_engine.rpc.client"),
        "importtime__json_us": self_us("_json"),
        "importtime_json_us": self_us("json"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", default="idle,hung,json")
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    only = set(a.only.split(","))
    out: dict = {}
    repo = Repo() if only & {"idle", "hung"} else None
    try:
        if "idle" in only:
            out["idle"] = bench_idle(repo, a.runs)
        if "hung" in only:
            out["hung"] = bench_hung(repo)
        if "json" in only:
            out["json"] = bench_json(a.runs)
    finally:
        if repo is not None:
            repo.close()
    if a.json:
        print(json.dumps(out, indent=2))
        return 0
    if "idle" in out:
        i = out["idle"]
        print(
            f"send, no idle connections:   median {i['without']['median_ms']} ms, max {i['without']['max_ms']} ms,"
            f" {i['without']['failures']} failed of {i['without']['runs']}"
        )
        print(
            f"send, 1,000 idle held:       median {i['with_1000_idle']['median_ms']} ms,"
            f" max {i['with_1000_idle']['max_ms']} ms, {i['with_1000_idle']['failures']} failed"
            f" (engine kept {i['idle_connections_the_engine_kept']}; {i['connects_retried_on_eagain']} EAGAIN retries)"
        )
    if "hung" in out:
        h = out["hung"]
        print(
            f"stopped engine: client error after {h['seconds_to_error']} s (exit {h['exit']}): {h['error']}"
        )
    if "json" in out:
        j = out["json"]
        print(
            f"interpreter start {j['python_-c_pass_ms']} ms; +import _json {j['import__json_ms']} ms;"
            f" +import json {j['import_json_ms']} ms; +import rpc.client {j['import_rpc_client_ms']} ms"
        )
        print(
            f"-X importtime (cumulative): _json {j['importtime__json_us']} us, json {j['importtime_json_us']} us"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

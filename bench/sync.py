"""Sync between two clones of one bare remote, each with its own headless engine.

Figures (the sync issue's targets):
  * transfer: N messages (default 10,000) sent on clone A reach clone B's inbox after one
    `sync force --wait` on A and one on B: seconds for the two cycles, commits they added to the
    remote branch (target <= 10 s, <= 10 commits);
  * idle: commits and pushes made by both engines over a quiet period with a short timer;
  * send latency: `message.send` p50/p99 over one connection with no sync running (the baseline,
    same run) and while sync cycles run back to back on the same engine (target p99 <= 1.5x).

Usage: python bench/sync.py [--messages 10000] [--idle 10] [--sends 400] [--json]
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
import threading
import time
import uuid
from pathlib import Path

BIN = Path(sys.executable).parent
THRUM = [str(BIN / "thrum")] if (BIN / "thrum").exists() else [sys.executable, "-m", "thrum_engine"]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


class Clone:
    def __init__(self, base: Path, bare: Path, name: str, extra: dict[str, str]) -> None:
        self.path = base / name
        home = base / f"home-{name}"
        home.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("THRUM_", "TMUX", "GIT_"))}
        self.env.update(
            HOME=str(home),
            GIT_AUTHOR_NAME="Bench",
            GIT_AUTHOR_EMAIL="bench@example.com",
            GIT_COMMITTER_NAME="Bench",
            GIT_COMMITTER_EMAIL="bench@example.com",
            GIT_CONFIG_NOSYSTEM="1",
            THRUM_TMUX__SOCKET_NAME=f"thrum-bench-{uuid.uuid4().hex[:8]}",
            THRUM_SYNC__INTERVAL_SECONDS="3600",
            THRUM_SYNC__SETTLE_SECONDS="3600",
            **extra,
        )
        subprocess.run(["git", "clone", "-q", str(bare), str(self.path)], env=self.env, check=True)

    def thrum(self, *args: str) -> dict:
        p = subprocess.run(THRUM + list(args), cwd=self.path, env=self.env, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"thrum {' '.join(args)}: {p.stderr.strip()}")
        return json.loads(p.stdout) if "--json" in args else {}

    def client(self):
        from thrum_engine.layout import Layout
        from thrum_engine.rpc.client import Client

        os.chdir(self.path)  # the engine checks the caller's cwd: the main checkout is the operator's
        return Client(Layout(str(self.path)).socket_path).connect()

    def stop(self) -> None:
        subprocess.run(THRUM + ["daemon", "stop"], cwd=self.path, env=self.env, capture_output=True)
        subprocess.run(
            ["tmux", "-L", self.env["THRUM_TMUX__SOCKET_NAME"], "kill-server"], capture_output=True
        )


def remote_commits(bare: Path) -> int:
    p = subprocess.run(["git", "rev-list", "--count", "a-sync"], cwd=bare, capture_output=True, text=True)
    return int(p.stdout) if p.returncode == 0 else 0


def setup(base: Path) -> Path:
    bare = base / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    seed = base / "seed"
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="b",
        GIT_AUTHOR_EMAIL="b@x",
        GIT_COMMITTER_NAME="b",
        GIT_COMMITTER_EMAIL="b@x",
    )
    subprocess.run(["git", "clone", "-q", str(bare), str(seed)], check=True, env=env)
    (seed / "README.md").write_text("x\n")
    for args in (["add", "README.md"], ["commit", "-q", "-m", "init"], ["push", "-q", "origin", "main"]):
        subprocess.run(["git", *args], cwd=seed, check=True, env=env, capture_output=True)
    return bare


def bench_transfer(a: Clone, b: Clone, bare: Path, n: int) -> dict:
    c = a.client()
    t0 = time.perf_counter()
    for i in range(n):
        c.call(
            "message.send", {"caller": "alice", "to": ["@bob"], "body": f"message {i}: please rebase on main"}
        )
    send_s = time.perf_counter() - t0
    c.close()
    before = remote_commits(bare)
    t0 = time.perf_counter()
    ca = a.thrum("sync", "force", "--wait", "--json")["cycle"]
    cb = b.thrum("sync", "force", "--wait", "--json")["cycle"]
    total = time.perf_counter() - t0
    unread = b.thrum("inbox", "--unread", "--json", "--page-size", "1")
    return {
        "messages": n,
        "send_seconds": round(send_s, 2),
        "two_cycles_seconds": round(total, 2),
        "cycle_a_seconds": ca["seconds"],
        "cycle_b_seconds": cb["seconds"],
        "applied_on_b": cb["applied_events"],
        "remote_commits_added": remote_commits(bare) - before,
        "bob_unread": unread.get("unread"),
    }


def bench_idle(a: Clone, b: Clone, bare: Path, seconds: float) -> dict:
    for cl in (a, b):
        cl.stop()
        cl.env.update(THRUM_SYNC__INTERVAL_SECONDS="0.5", THRUM_SYNC__SETTLE_SECONDS="0.2")
        cl.thrum("sync", "force", "--wait", "--json")
    # what the restarts themselves wrote (sessions, the operator) settles and syncs first
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(
        cl.thrum("sync", "status", "--json")["pending_writes"] for cl in (a, b)
    ):
        time.sleep(0.2)
    for cl in (a, b, a, b):
        cl.thrum("sync", "force", "--wait", "--json")
    local = [
        int(
            subprocess.run(
                ["git", "rev-list", "--count", "a-sync"], cwd=cl.path, capture_output=True, text=True
            ).stdout
        )
        for cl in (a, b)
    ]
    pushed = remote_commits(bare)
    cycles0 = [len(cl.thrum("sync", "status", "--json")["recent"]) for cl in (a, b)]
    time.sleep(seconds)
    cycles1 = [len(cl.thrum("sync", "status", "--json")["recent"]) for cl in (a, b)]
    local1 = [
        int(
            subprocess.run(
                ["git", "rev-list", "--count", "a-sync"], cwd=cl.path, capture_output=True, text=True
            ).stdout
        )
        for cl in (a, b)
    ]
    return {
        "seconds": seconds,
        "timer_cycles": sum(cycles1) - sum(cycles0),
        "local_commits": sum(local1) - sum(local),
        "pushes_to_remote": remote_commits(bare) - pushed,
    }


def bench_send_latency(a: Clone, sends: int) -> dict:
    c = a.client()

    def run(k: int) -> list[float]:
        lat = []
        for i in range(k):
            t0 = time.perf_counter()
            c.call("message.send", {"caller": "alice", "to": ["@bob"], "body": f"latency {i}"})
            lat.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.005)
        return lat

    base = run(sends)
    stop = threading.Event()
    cycles = [0]

    def syncing() -> None:
        while not stop.is_set():
            a.thrum("sync", "force", "--wait", "--json")
            cycles[0] += 1

    t = threading.Thread(target=syncing)
    t.start()
    during = run(sends)
    stop.set()
    t.join()
    c.close()
    return {
        "sends": sends,
        "baseline_p50_ms": round(pct(base, 50), 2),
        "baseline_p99_ms": round(pct(base, 99), 2),
        "during_sync_p50_ms": round(pct(during, 50), 2),
        "during_sync_p99_ms": round(pct(during, 99), 2),
        "p99_ratio": round(pct(during, 99) / pct(base, 99), 2),
        "sync_cycles_meanwhile": cycles[0],
        "baseline_mean_ms": round(statistics.mean(base), 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of quiet watched for commits")
    ap.add_argument("--sends", type=int, default=400)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="thrum-bench-sync-"))
    clones: list[Clone] = []
    try:
        bare = setup(base)
        a, b = Clone(base, bare, "a", {}), Clone(base, bare, "b", {})
        clones += [a, b]
        a.thrum("quickstart", "--name", "alice", "--role", "implementer")
        b.thrum("quickstart", "--name", "bob", "--role", "reviewer")
        for cl in (a, b, a, b):
            cl.thrum("sync", "force", "--wait", "--json")
        out = {
            "transfer": bench_transfer(a, b, bare, args.messages),
            "send_latency": bench_send_latency(a, args.sends),
            "idle": bench_idle(a, b, bare, args.idle),
        }
    finally:
        for cl in clones:
            cl.stop()
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    t, s, i = out["transfer"], out["send_latency"], out["idle"]
    print(f"== transfer: {t['messages']:,} messages A -> B (targets: <= 10 s, <= 10 commits)")
    print(
        f"  two cycles {t['two_cycles_seconds']} s (A {t['cycle_a_seconds']} s, B {t['cycle_b_seconds']} s),"
        f" {t['remote_commits_added']} commit(s) on the remote, {t['applied_on_b']} events applied on B,"
        f" bob unread {t['bob_unread']}  (sending them took {t['send_seconds']} s)"
    )
    print(f"== send latency, one connection ({s['sends']} sends each; target p99 during <= 1.5x)")
    print(f"  no sync: p50 {s['baseline_p50_ms']} ms  p99 {s['baseline_p99_ms']} ms")
    print(
        f"  syncing: p50 {s['during_sync_p50_ms']} ms  p99 {s['during_sync_p99_ms']} ms"
        f"  ({s['p99_ratio']}x; {s['sync_cycles_meanwhile']} cycles meanwhile)"
    )
    print(
        f"== idle {i['seconds']} s with a 0.5 s timer: {i['timer_cycles']} cycles,"
        f" {i['local_commits']} commits, {i['pushes_to_remote']} pushes (target 0 commits)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

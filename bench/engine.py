"""Engine benchmarks: CLI start-up, durable throughput, wait wake-up, inbox latency, rebuild, RSS.

Targets (issue #2): CLI median <= 2.5x the bare interpreter; >= 5,000 durable msgs/s with 16
clients; wait wake-up p50 <= 5 ms; inbox p99 <= 10 ms at 100k messages; rebuild >= 50,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # bench/scale.py: CLI cost by store size, `--only scale`

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
THRUM = str(BIN / "thrum") if (BIN / "thrum").exists() else None


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def env_for(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THRUM_", "TMUX"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # time what users get: cached bytecode
    env.update(
        HOME=str(home),
        GIT_AUTHOR_NAME="b",
        GIT_AUTHOR_EMAIL="b@x",
        GIT_COMMITTER_NAME="b",
        GIT_COMMITTER_EMAIL="b@x",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


class Bench:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-"))
        self.home = self.tmp / "home"
        self.home.mkdir()
        self.env = env_for(self.home)
        self.repo = self.tmp / "repo"
        self.repo.mkdir()
        self.git("init", "-q", "-b", "main")
        (self.repo / "README.md").write_text("x\n")
        self.git("add", "README.md")
        self.git("commit", "-q", "-m", "init")
        self.wt = self.tmp / "wt-bob"
        self.git("worktree", "add", "-q", "-b", "feature/bob", str(self.wt))
        self.thrum(["quickstart", "--name", "alice", "--role", "impl"], self.repo)
        self.thrum(["quickstart", "--name", "bob", "--role", "reviewer"], self.wt)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], capture_output=True)

    def git(self, *args: str) -> None:
        subprocess.run(["git", *args], cwd=self.repo, env=self.env, check=True, capture_output=True)

    def thrum(self, args: list[str], cwd: Path) -> str:
        cmd = [THRUM] if THRUM else [sys.executable, "-m", "thrum_engine"]
        p = subprocess.run(cmd + args, cwd=cwd, env=self.env, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"thrum {' '.join(args)} failed: {p.stderr}")
        return p.stdout

    def daemon_pid(self) -> int:
        return json.loads((self.repo / ".thrum/var/thrum.pid").read_text())["pid"]

    def close(self) -> None:
        try:
            self.thrum(["daemon", "stop"], self.repo)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def timed(cmd: list[str], cwd: Path, env: dict, runs: int) -> list[float]:
    """Wall time of whole processes; blocks on wait() (no polling), a kill timer bounds a hang."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        timer = threading.Timer(30, p.kill)
        timer.start()
        p.wait()
        timer.cancel()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def bench_cli(b: Bench, runs: int = 50) -> dict:
    cmd = [THRUM] if THRUM else [sys.executable, "-m", "thrum_engine"]
    res = {}
    for _ in range(3):  # warm caches
        timed([sys.executable, "-c", "pass"], b.repo, b.env, 5)
        timed(cmd + ["inbox"], b.repo, b.env, 2)
    floor = timed([sys.executable, "-c", "pass"], b.repo, b.env, runs)
    send = timed(cmd + ["send", "benchmark message", "--to", "@bob"], b.repo, b.env, runs)
    inbox = timed(cmd + ["inbox"], b.wt, b.env, runs)
    f = statistics.median(floor)
    for name, vals in (("python -c pass", floor), ("thrum send", send), ("thrum inbox", inbox)):
        res[name] = {
            "median_ms": round(statistics.median(vals), 2),
            "p95_ms": round(pct(vals, 95), 2),
            "x_floor": round(statistics.median(vals) / f, 2),
        }
    return res


CLIENT = r"""
import sys, time
from thrum_engine.rpc.client import Client
path, caller, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = Client(path).connect()
c.call("engine.info", {})
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
t0 = time.perf_counter()
for i in range(n):
    c.call("message.send", {"caller": caller, "body": f"m{i}", "to": ["@bob"]})
print(time.perf_counter() - t0)
"""


def bench_throughput(b: Bench, clients: int, per_client: int) -> dict:
    from thrum_engine.layout import Layout

    sock = Layout(str(b.repo)).socket_path
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, sock, "alice", str(per_client)],
            cwd=b.repo,
            env=b.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(clients)
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    cpu0 = _cpu(b.daemon_pid())
    t0 = time.perf_counter()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        p.wait()
    wall = time.perf_counter() - t0
    cpu = _cpu(b.daemon_pid()) - cpu0
    total = clients * per_client
    return {
        "clients": clients,
        "messages": total,
        "seconds": round(wall, 3),
        "msgs_per_s": round(total / wall),
        "engine_cpu_pct": round(100 * cpu / wall, 1),
    }


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_wait(b: Bench, rounds: int = 200) -> dict:
    """bob blocks in message.wait; alice sends; latency = bob's wake-up minus alice's ack."""
    from thrum_engine.layout import Layout
    from thrum_engine.rpc.client import Client

    sock = Layout(str(b.repo)).socket_path
    os.chdir(b.repo)
    sender = Client(sock).connect()
    # The waiter must run from bob's worktree for the peer-credential check: a child process.
    waiter_src = r"""
import sys, time
from thrum_engine.rpc.client import Client
c = Client(sys.argv[1]).connect()
for _ in range(int(sys.argv[2])):
    sys.stdout.write("waiting\n"); sys.stdout.flush()
    r = c.call("message.wait", {"caller": "bob", "timeout": 10})
    sys.stdout.write(f"{time.perf_counter()!r} {r['status']}\n"); sys.stdout.flush()
"""
    p = subprocess.Popen(
        [sys.executable, "-c", waiter_src, sock, str(rounds)],
        cwd=b.wt,
        env=b.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    lat = []
    for _ in range(rounds):
        assert p.stdout.readline().strip() == "waiting"
        time.sleep(0.002)  # let the wait register
        sender.call("message.send", {"caller": "alice", "body": "wake", "to": ["@bob"]})
        acked = time.perf_counter()
        woke, status = p.stdout.readline().split()
        assert status == "received"
        lat.append((float(woke) - acked) * 1000)
    p.wait()
    sender.close()
    return {
        "rounds": rounds,
        "p50_ms": round(pct(lat, 50), 3),
        "p95_ms": round(pct(lat, 95), 3),
        "p99_ms": round(pct(lat, 99), 3),
    }


async def _inbox_and_rebuild(messages: int, agents: int, queries: int) -> dict:
    """In-process engine on a scratch repo: load messages through the real commit path, then measure."""
    from thrum_engine.doctor import rebuild_projection
    from thrum_engine.engine.assemble import build
    from thrum_engine.engine.caller import Caller
    from thrum_engine.layout import Layout
    from thrum_engine.messaging import create_message
    from thrum_engine.settings import ThrumSettings

    tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-inbox-"))
    try:
        env = env_for(tmp)
        await asyncio.to_thread(
            subprocess.run, ["git", "init", "-q", "-b", "main", str(tmp / "r")], check=True, env=env
        )
        os.makedirs(tmp / "r/.git/thrum-sync/a-sync/journal")
        layout = Layout(str(tmp / "r"))
        engine = build(layout, ThrumSettings())
        await engine.start()
        names = [f"agent_{i:02d}" for i in range(agents)]
        for n in names:
            await engine.call("agent.register", {"name": n, "role": "worker"}, Caller.trusted())
        rng = random.Random(7)
        t0 = time.perf_counter()
        batch = 500
        for start in range(0, messages, batch):
            tasks = []
            for i in range(start, min(start + batch, messages)):
                a, r = rng.sample(names, 2)
                tasks.append(create_message(engine, a, f"message {i} " + "x" * 80, to=["@" + r]))
            await asyncio.gather(*tasks)
        load_s = time.perf_counter() - t0
        lat = []
        for _ in range(queries):
            me = rng.choice(names)
            q0 = time.perf_counter()
            await engine.call("message.inbox", {"page_size": 20}, Caller.trusted(me))
            lat.append((time.perf_counter() - q0) * 1000)
        peek = []
        for _ in range(queries):
            me = rng.choice(names)
            q0 = time.perf_counter()
            await engine.call("message.inbox", {"unread": True, "page_size": 20}, Caller.trusted(me))
            peek.append((time.perf_counter() - q0) * 1000)
        rb = await rebuild_projection(engine)
        await engine.stop()
        return {
            "inbox": {
                "messages": messages,
                "agents": agents,
                "load_msgs_per_s": round(messages / load_s),
                "queries": queries,
                "p50_ms": round(pct(lat, 50), 3),
                "p99_ms": round(pct(lat, 99), 3),
                "unread_peek_p99_ms": round(pct(peek, 99), 3),
            },
            "rebuild": {
                "events": rb["events"],
                "seconds": rb["seconds"],
                "events_per_s": rb["events_per_second"],
                "identical": rb["identical"],
            },
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", default="cli,throughput,wait,inbox,rss")
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=50)
    a = ap.parse_args()
    only = set(a.only.split(","))
    out: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    b = Bench()
    try:
        if "cli" in only:
            out["cli"] = bench_cli(b, a.runs)
        if "throughput" in only:
            out["throughput"] = [bench_throughput(b, 1, 2000), bench_throughput(b, 16, 1000)]
        if "wait" in only:
            out["wait"] = bench_wait(b)
        if "rss" in only:
            out["daemon_rss_mb"] = round(rss_kb(b.daemon_pid()) / 1024, 1)
    finally:
        b.close()
    if "inbox" in only or "rebuild" in only:
        out.update(asyncio.run(_inbox_and_rebuild(a.messages, 50, 500)))
    if "scale" in only:  # not in the default: builds (or reuses) stores of up to 1M messages
        out["scale"] = scale.bench_scale(list(scale.SIZES), 15)
    if a.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    print("== CLI wall time (50 runs each) ==")
    for k, v in out.get("cli", {}).items():
        print(
            f"  {k:16s} median {v['median_ms']:7.2f} ms   p95 {v['p95_ms']:7.2f} ms   {v['x_floor']:.2f}x floor"
        )
    for t in out.get("throughput", []):
        print(
            f"== durable sends, {t['clients']:2d} clients: {t['msgs_per_s']:>7,} msgs/s "
            f"({t['messages']} in {t['seconds']} s, engine CPU {t['engine_cpu_pct']} %)"
        )
    if "wait" in out:
        w = out["wait"]
        print(f"== wait wake-up after ack: p50 {w['p50_ms']} ms, p95 {w['p95_ms']} ms, p99 {w['p99_ms']} ms")
    if "inbox" in out:
        i = out["inbox"]
        print(
            f"== inbox at {i['messages']:,} msgs / {i['agents']} agents: p50 {i['p50_ms']} ms, p99 {i['p99_ms']} ms"
            f" (unread peek p99 {i['unread_peek_p99_ms']} ms; loaded at {i['load_msgs_per_s']:,} msgs/s)"
        )
    if "rebuild" in out:
        r = out["rebuild"]
        print(
            f"== rebuild: {r['events']:,} events in {r['seconds']} s = {r['events_per_s']:,} events/s"
            f" (identical: {r['identical']})"
        )
    if "daemon_rss_mb" in out:
        print(f"== daemon RSS: {out['daemon_rss_mb']} MB")
    if "scale" in out:
        scale.print_scale(out["scale"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

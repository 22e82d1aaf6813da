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
    # The caller's tmux session (TMUX, TMUX_PANE) is dropped, never TMUX_TMPDIR: without it the
    # engine and the bench would talk to tmux servers in different folders.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("THRUM_") and k not in ("TMUX", "TMUX_PANE")
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # time what users get: cached bytecode
    env.update(
        HOME=str(home),
        GIT_AUTHOR_NAME="b",
        GIT_AUTHOR_EMAIL="b@x",
        GIT_COMMITTER_NAME="b",
        GIT_COMMITTER_EMAIL="b@x",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # The loads here are random agents messaging each other hundreds of times a minute: the loop
        # guard (issue 16) would hold most of it, and the figures are of delivering it.
        THRUM_GUARDS__ENABLED="false",
    )
    return env


class Bench:
    def __init__(self, src: str | None = None) -> None:
        """`src`: run the Thrum under that `src` folder (another checkout: a baseline), not this one."""
        self.tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-"))
        self.home = self.tmp / "home"
        self.home.mkdir()
        self.env = env_for(self.home)
        self.cmd = [THRUM] if THRUM and not src else [sys.executable, "-m", "thrum_engine"]
        if src:
            self.env["PYTHONPATH"] = src
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
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", src or str(ROOT / "src")], capture_output=True
        )

    def git(self, *args: str) -> None:
        subprocess.run(["git", *args], cwd=self.repo, env=self.env, check=True, capture_output=True)

    def thrum(self, args: list[str], cwd: Path) -> str:
        p = subprocess.run(self.cmd + args, cwd=cwd, env=self.env, capture_output=True, text=True)
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


def baseline_parser(doc: str | None) -> argparse.ArgumentParser:
    """A comparing bench's parser: its docstring as help, `--json`, and `--src OTHER/src`
    (repeatable), the baselines that `checkouts` names."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", default=[], help="another checkout's src (a baseline)")
    ap.add_argument("--json", action="store_true")
    return ap


def checkouts(baselines: list[str]) -> dict[str, str | None]:
    """This checkout and each baseline's `src`, by name (its parent folder). With a baseline, every
    checkout runs as `python -m thrum_engine` with its src on PYTHONPATH, so the launcher is not
    what a comparison measures."""
    here = str(ROOT / "src") if baselines else None
    return {"this": here, **{Path(s).resolve().parent.name: str(Path(s).resolve()) for s in baselines}}


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
    """Floor, send and inbox interleaved run by run: a drift in the machine's state (a frequency
    step, another process waking) then moves all three alike instead of biasing the ratio."""
    cmd = [THRUM] if THRUM else [sys.executable, "-m", "thrum_engine"]
    cases = {
        "python -c pass": ([sys.executable, "-c", "pass"], b.repo),
        "thrum send": (cmd + ["send", "benchmark message", "--to", "@bob"], b.repo),
        "thrum inbox": (cmd + ["inbox"], b.wt),
    }
    for _ in range(3):  # warm caches
        for argv, cwd in cases.values():
            timed(argv, cwd, b.env, 2)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, (argv, cwd) in cases.items():
            times[name] += timed(argv, cwd, b.env, 1)
    f = statistics.median(times["python -c pass"])
    return {
        name: {
            "median_ms": round(statistics.median(vals), 2),
            "p95_ms": round(pct(vals, 95), 2),
            "x_floor": round(statistics.median(vals) / f, 2),
        }
        for name, vals in times.items()
    }


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


async def loaded_engine(tmp: Path, messages: int, agents: int):
    """An in-process engine on a scratch repo under `tmp`, `agents` registered and `messages` loaded
    between random pairs through the real commit path: (engine, agent names, load seconds, rng)."""
    from thrum_engine.engine.assemble import build
    from thrum_engine.engine.caller import Caller
    from thrum_engine.layout import Layout
    from thrum_engine.messaging import create_message
    from thrum_engine.settings import ThrumSettings

    env = env_for(tmp)
    await asyncio.to_thread(
        subprocess.run, ["git", "init", "-q", "-b", "main", str(tmp / "r")], check=True, env=env
    )
    os.makedirs(tmp / "r/.git/thrum-sync/a-sync/journal")
    engine = build(Layout(str(tmp / "r")), ThrumSettings(guards={"enabled": False}))  # see env_for
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
    return engine, names, time.perf_counter() - t0, rng


async def _inbox_and_rebuild(messages: int, agents: int, queries: int) -> dict:
    """In-process engine on a scratch repo: load messages through the real commit path, then measure."""
    from thrum_engine.doctor import rebuild_projection
    from thrum_engine.engine.caller import Caller

    tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-inbox-"))
    try:
        engine, names, load_s, rng = await loaded_engine(tmp, messages, agents)
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


# -- the ceiling: a minimal durable json+socket server, measured in the same run (issue 17) --

CEILING = r'''
"""The ceiling: what a Python engine on this machine can do with the least work that is still
durable. A Unix socket, newline-delimited JSON-RPC frames (the same client talks to it), sends
group-committed by one writer thread (one append + fsync per batch to one file), replies written
when the batch is durable (one write per connection per batch), an in-memory index per
recipient; `doctor.rebuild` loads its journal into a two-table SQLite file."""
import asyncio, json, os, sqlite3, sys, threading, time
try:
    import orjson
    loads, dumps = orjson.loads, orjson.dumps
except ImportError:
    loads = json.loads
    def dumps(o): return json.dumps(o, separators=(",", ":"), ensure_ascii=False).encode()
sock_path, journal_path = sys.argv[1], sys.argv[2]
fd = os.open(journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
boxes, unread, read, waiters = {}, {}, {}, {}
pending, cond, seq = [], threading.Condition(), [0]
loop = None

def frame(rid, result):
    return b'{"jsonrpc":"2.0","id":' + dumps(rid) + b',"result":' + dumps(result) + b"}\n"

def writer():
    global pending
    while True:
        with cond:
            while not pending:
                cond.wait()
            batch, pending = pending, []
        os.write(fd, b"".join(b[3] for b in batch))
        os.fsync(fd)
        loop.call_soon_threadsafe(durable, batch)

def durable(batch):
    out = {}
    for conn, rid, msg, _ in batch:
        for r in msg["to"]:
            boxes.setdefault(r, []).append(msg)
            unread[r] = unread.get(r, 0) + 1
            for wconn, wrid, timer in waiters.pop(r, ()):
                timer.cancel()
                out.setdefault(wconn, []).append(frame(wrid, {"status": "received", "messages": [msg]}))
        out.setdefault(conn, []).append(
            frame(rid, {"message_id": msg["id"], "recipients": msg["to"], "created_at": msg["ts"]}))
    for conn, frames in out.items():
        if not conn.transport.is_closing():
            conn.transport.write(b"".join(frames))

def inbox(me, size):
    box = boxes.get(me, [])
    page = box[-size:][::-1]
    seen = read.setdefault(me, set())
    views = []
    for m in page:
        views.append({**m, "is_read": m["id"] in seen})
        if m["id"] not in seen:
            seen.add(m["id"])
            unread[me] -= 1
    return {"messages": views, "total": len(box), "unread": unread.get(me, 0)}

def timed_out(me, conn, rid):
    left = [w for w in waiters.get(me, ()) if w[1] != rid or w[0] is not conn]
    waiters[me] = left
    conn.transport.write(frame(rid, {"status": "timeout", "messages": []}))

def rebuild():
    t0 = time.perf_counter()
    scratch = journal_path + ".db"
    if os.path.exists(scratch):
        os.remove(scratch)
    db = sqlite3.connect(scratch, isolation_level=None)
    db.execute("PRAGMA journal_mode=MEMORY"); db.execute("PRAGMA synchronous=OFF")
    db.execute("CREATE TABLE messages(id TEXT PRIMARY KEY, author TEXT, ts TEXT, body TEXT) WITHOUT ROWID")
    db.execute("CREATE TABLE deliveries(recipient TEXT, message_id TEXT, PRIMARY KEY(recipient, message_id))"
               " WITHOUT ROWID")
    with open(journal_path, "rb") as fh:
        lines = fh.read().split(b"\n")[:-1]
    db.execute("BEGIN")
    for i in range(0, len(lines), 5000):
        evs = [loads(l) for l in lines[i:i + 5000]]
        db.executemany("INSERT INTO messages VALUES (?,?,?,?)", [(e["id"], e["author"], e["ts"], e["body"]) for e in evs])
        db.executemany("INSERT INTO deliveries VALUES (?,?)", [(r, e["id"]) for e in evs for r in e["to"]])
    db.execute("COMMIT")
    db.close()
    s = time.perf_counter() - t0
    return {"events": len(lines), "seconds": round(s, 3), "events_per_second": round(len(lines) / s)}

class Conn(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buf = transport, b""

    def data_received(self, data):
        *lines, self.buf = (self.buf + data).split(b"\n")
        out, queued = [], []
        for line in lines:
            if not line.strip():
                continue
            req = loads(line)
            rid, method, p = req.get("id"), req.get("method"), req.get("params") or {}
            if method == "message.send":
                seq[0] += 1
                ts = time.time()
                msg = {"id": f"msg_{time.time_ns():x}{seq[0]:06d}", "author": p["caller"], "body": p["body"],
                       "to": [a.lstrip("@") for a in p["to"]], "ts": f"{ts:.6f}"}
                queued.append((self, rid, msg, dumps(msg) + b"\n"))
            elif method == "message.inbox":
                out.append(frame(rid, inbox(p["caller"], p.get("page_size") or 20)))
            elif method == "message.wait":
                me = p["caller"]
                timer = loop.call_later(p.get("timeout", 30), timed_out, me, self, rid)
                waiters.setdefault(me, []).append((self, rid, timer))
            elif method == "delivery.paths":
                out.append(frame(rid, {"agents": [{"waiting": bool(waiters.get(p["agent"]))}]}))
            elif method == "doctor.rebuild":
                out.append(frame(rid, rebuild()))
            else:  # engine.info, agent.register
                out.append(frame(rid, {"running": True, "pid": os.getpid()}))
        if out:
            self.transport.write(b"".join(out))
        if queued:
            with cond:
                pending.extend(queued)
                cond.notify()

async def main():
    global loop
    loop = asyncio.get_running_loop()
    threading.Thread(target=writer, daemon=True).start()
    server = await loop.create_unix_server(Conn, sock_path)
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes our stdin
    server.close()

asyncio.run(main())
'''

# `n` sends from one connection, `window` frames in flight (the engine allows 64 per connection);
# authors and recipients drawn from `names` (or alice -> @bob). Prints its wall time.
PIPELINED = r"""
import json, random, socket, sys, time
path, n, window, seed, names = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
rng = random.Random(seed)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
f = s.makefile("rb")
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
t0 = time.perf_counter()
sent = done = 0
def frame(i):
    a, r = rng.sample(names, 2) if names else ("alice", "bob")
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": "message.send", "params": {
        "caller": a, "body": f"message {seed}-{i} " + "x" * 80, "to": ["@" + r]}}) + "\n"
while done < n:
    burst = []
    while sent < n and sent - done < window:
        burst.append(frame(sent)); sent += 1
    if burst:
        s.sendall("".join(burst).encode())
    resp = json.loads(f.readline())
    if "error" in resp:
        sys.exit(f"send failed: {resp['error']}")
    done += 1
print(time.perf_counter() - t0)
"""

WAITER = r"""
import sys, time
from thrum_engine.rpc.client import Client
c = Client(sys.argv[1]).connect()
for _ in range(int(sys.argv[2])):
    sys.stdout.write("waiting\n"); sys.stdout.flush()
    r = c.call("message.wait", {"caller": "bob", "timeout": 10})
    sys.stdout.write(f"{time.perf_counter()!r} {r['status']}\n"); sys.stdout.flush()
"""


class Target:
    """One server under the same workloads: the ceiling, or a Thrum daemon (this checkout's code, or
    the code under `src` when given: a baseline in the same run)."""

    def __init__(self, name: str, src: str | None = None) -> None:
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.bench: Bench | None = None
        self.agents: list[str] = []
        if name == "ceiling":
            self.tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-ceiling-"))
            self.sock = str(self.tmp / "s.sock")
            self.env = env_for(self.tmp)
            self.proc = subprocess.Popen(
                [sys.executable, "-c", CEILING, self.sock, str(self.tmp / "journal.jsonl")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=self.env,
            )
            assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
            self.cwd, self.waiter_cwd, self.pid = self.tmp, self.tmp, self.proc.pid
        else:
            self.bench = Bench(src)
            from thrum_engine.layout import Layout

            self.sock = Layout(str(self.bench.repo)).socket_path
            self.env, self.cwd, self.waiter_cwd = self.bench.env, self.bench.repo, self.bench.wt
            self.pid = self.bench.daemon_pid()

    def call(self, method: str, params: dict, timeout: float = 600) -> dict:
        from thrum_engine.rpc.client import Client

        os.chdir(self.cwd)  # the engine checks the caller's worktree by the peer's cwd
        c = Client(self.sock, timeout).connect()
        try:
            return c.call(method, params)
        finally:
            c.close()

    def register(self, names: list[str]) -> None:
        for n in names:
            self.call("agent.register", {"caller": n, "name": n, "role": "worker"})
        self.agents = names

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(10)
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.bench is not None:
            self.bench.close()


def _clients(t: Target, argv_list: list[list[str]]) -> tuple[float, float]:
    """Start client processes, release them together; (wall seconds, server CPU seconds)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", *argv],
            cwd=t.cwd,
            env=t.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for argv in argv_list
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    cpu0, t0 = _cpu(t.pid), time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a client of {t.name} failed")
    return time.perf_counter() - t0, _cpu(t.pid) - cpu0


TEAM = 50  # the compare's agents: the loaded store's recipients, and team16's senders (the first 16)


def team(t: Target) -> list[str]:
    """`t`'s TEAM agents, registered on first use."""
    if not t.agents:
        t.register([f"agent_{i:02d}" for i in range(TEAM)])
    return t.agents


def cmp_blocking(t: Target, clients: int, per_client: int, *, authors: int = 1) -> dict:
    """`authors` > 1: the clients send as that many agents in turn (a team: a batch then spans as
    many journal shards, one per author, where the ceiling keeps one file)."""
    senders = team(t)[:authors] if authors > 1 else ["alice"]
    who = [senders[i % len(senders)] for i in range(clients)]
    wall, cpu = _clients(t, [[CLIENT, t.sock, who[i], str(per_client)] for i in range(clients)])
    n = clients * per_client
    return {"msgs_per_s": n / wall, "cpu_us_per_msg": cpu / n * 1e6}


def cmp_pipelined(t: Target, conns: int, per_conn: int, window: int = 64) -> dict:
    wall, cpu = _clients(
        t, [[PIPELINED, t.sock, str(per_conn), str(window), str(i), "[]"] for i in range(conns)]
    )
    n = conns * per_conn
    return {"msgs_per_s": n / wall, "cpu_us_per_msg": cpu / n * 1e6}


def cmp_wait(t: Target, rounds: int) -> dict:
    from thrum_engine.rpc.client import Client

    p = subprocess.Popen(
        [sys.executable, "-c", WAITER, t.sock, str(rounds)],
        cwd=t.waiter_cwd,
        env=t.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    os.chdir(t.cwd)  # the engine checks the caller's worktree by the peer's cwd
    sender = Client(t.sock).connect()
    lat = []
    for _ in range(rounds):
        assert p.stdout.readline().strip() == "waiting"
        # Send only once the wait is registered (a fixed pause lost the race on a loaded machine).
        while not sender.call("delivery.paths", {"agent": "bob"})["agents"][0]["waiting"]:
            time.sleep(0.0005)
        sender.call("message.send", {"caller": "alice", "body": "wake", "to": ["@bob"]})
        acked = time.perf_counter()
        woke, status = p.stdout.readline().split()
        assert status == "received", status
        lat.append((float(woke) - acked) * 1000)
    p.wait()
    sender.close()
    return {"lat": lat}


def cmp_load(t: Target, messages: int, conns: int = 4) -> float:
    per = messages // conns
    names = json.dumps(team(t))
    wall, _ = _clients(t, [[PIPELINED, t.sock, str(per), "48", str(100 + i), names] for i in range(conns)])
    return per * conns / wall


class JsonClient:
    """A blocking JSON-RPC client that parses answers with the stdlib's C scanner. The CLI's client
    (`rpc.client`, pure-Python `lightjson` below 64 KiB) took ~0.63 ms to parse one 20-message inbox
    page (8.6 KB) here: most of what the inbox row measured, and more for the bigger answer."""

    def __init__(self, path: str) -> None:
        import socket

        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.next = 0

    def call(self, method: str, params: dict) -> dict:
        self.next += 1
        self.sock.sendall(
            json.dumps({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params}).encode()
            + b"\n"
        )
        resp = json.loads(self.file.readline())
        if "error" in resp:
            raise SystemExit(f"{method} failed: {resp['error']}")
        return resp["result"]

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def cmp_paced(t: Target, sends: int, seed: int, interval: float = 0.004) -> dict:
    """One agent sending to the team at a steady ~200 a second with the loaded store: the latency
    of each acknowledged send. Its tail is where a batch that pays for more than itself shows (a
    WAL checkpoint inside a commit, bench/README session 18)."""
    rng = random.Random(seed)
    os.chdir(t.cwd)
    c = JsonClient(t.sock)
    lat = []
    for i in range(sends):
        params = {"caller": "alice", "body": f"paced {i}", "to": ["@" + rng.choice(t.agents)]}
        q0 = time.perf_counter()
        c.call("message.send", params)
        lat.append((time.perf_counter() - q0) * 1000)
        time.sleep(interval)
    c.close()
    return {"lat": lat}


def cmp_inbox(t: Target, queries: int, seed: int, *, light: bool = False) -> dict:
    """`light`: through the CLI's client (its parse of each answer included), as before."""
    from thrum_engine.rpc.client import Client

    rng = random.Random(seed)
    os.chdir(t.cwd)
    c = Client(t.sock).connect() if light else JsonClient(t.sock)
    lat = []
    for _ in range(queries):
        me = rng.choice(t.agents)
        q0 = time.perf_counter()
        c.call("message.inbox", {"caller": me, "page_size": 20})
        lat.append((time.perf_counter() - q0) * 1000)
    c.close()
    return {"lat": lat}


def cmp_rebuild(t: Target) -> dict:
    r = t.call("doctor.rebuild", {})
    return {"events": r["events"], "events_per_s": r["events_per_second"]}


def _median_of(runs: list[dict]) -> dict:
    """Rates: the median of the reps. Latencies: percentiles of every rep's samples pooled (a
    median of per-rep p99s would hide the slow first views)."""
    if "lat" in runs[0]:
        lat = [x for r in runs for x in r["lat"]]
        return {
            "p50_ms": round(pct(lat, 50), 3),
            "p99_ms": round(pct(lat, 99), 3),
            "p999_ms": round(pct(lat, 99.9), 3),
            "samples": len(lat),
        }
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}


def bench_compare(a: argparse.Namespace) -> dict:
    """Every workload on every target, interleaved (ceiling, thrum, [baseline]) `--reps` times: load
    on the shared cores hits them alike; each figure is the median of its reps."""
    srcs = {Path(src).parent.name: src for src in a.baseline_src}
    names = ["ceiling", "thrum", *srcs]
    targets = [Target(n, srcs.get(n)) for n in names]
    runs: dict[str, dict[str, list[dict]]] = {n: {} for n in names}

    def each(section: str, fn) -> None:
        for t in targets:
            runs[t.name].setdefault(section, []).append(fn(t))

    sections = set(a.sections.split(","))
    try:
        for _ in range(a.reps):
            if "blocking16" in sections:
                each("blocking16", lambda t: cmp_blocking(t, 16, a.per_client))
            if "team16" in sections:
                each("team16", lambda t: cmp_blocking(t, 16, a.per_client, authors=16))
            if "pipelined" in sections:
                each("pipelined", lambda t: cmp_pipelined(t, 4, a.per_conn))
            if "wait" in sections:
                each("wait", lambda t: cmp_wait(t, a.wait_rounds))
        for t in targets:
            runs[t.name]["load"] = [{"msgs_per_s": cmp_load(t, a.messages)}]
        for rep in range(a.reps):
            if "inbox" in sections:
                each("inbox", lambda t, rep=rep: cmp_inbox(t, a.queries, rep))
                each("inbox_cli", lambda t, rep=rep: cmp_inbox(t, a.queries, 100 + rep, light=True))
            if "paced" in sections:
                each("paced", lambda t, rep=rep: cmp_paced(t, a.paced, 200 + rep))
        for _ in range(a.reps):
            if "rebuild" in sections:
                each("rebuild", cmp_rebuild)
    finally:
        for t in targets:
            t.close()
    out: dict = {"messages": a.messages, "agents": TEAM, "reps": a.reps, "targets": names}
    for n in names:
        out[n] = {section: _median_of(r) for section, r in runs[n].items()}
    ceil = out["ceiling"]
    for n in names[1:]:
        me = out[n]
        ratio_of = {
            "blocking16": ("blocking16", "msgs_per_s"),
            "team16": ("team16", "msgs_per_s"),
            "pipelined": ("pipelined", "msgs_per_s"),
            "wait_p99": ("wait", "p99_ms"),
            "inbox_p99": ("inbox", "p99_ms"),
            "rebuild": ("rebuild", "events_per_s"),
        }
        out[n]["ratios"] = {
            name: round(me[section][key] / ceil[section][key], 2)
            for name, (section, key) in ratio_of.items()
            if section in me
        }
    return out


def print_compare(c: dict) -> None:
    names = c["targets"]
    print(f"== against the ceiling (same run, medians of {c['reps']} interleaved reps)")
    head = "".join(f"{n:>22s}" for n in names)
    print(f"  {'':34s}{head}")

    def row(label: str, section: str, key: str, fmt: str, ratio: str | None, target: str) -> None:
        if section not in c[names[0]]:
            return
        cells = []
        for n in names:
            v = c[n][section][key]
            cell = format(v, fmt)
            if n != "ceiling" and ratio:
                cell += f" ({c[n]['ratios'][ratio]:.2f}x)"
            cells.append(f"{cell:>22s}")
        print(f"  {label:34s}{''.join(cells)}   {target}")

    row("16 blocking clients, msgs/s", "blocking16", "msgs_per_s", ",.0f", "blocking16", ">= 0.9x")
    row("  server CPU per message, us", "blocking16", "cpu_us_per_msg", ".1f", None, "")
    row("16 clients as 16 agents, msgs/s", "team16", "msgs_per_s", ",.0f", "team16", "")
    row("  server CPU per message, us", "team16", "cpu_us_per_msg", ".1f", None, "")
    row("pipelined (4 x 64 in flight), msgs/s", "pipelined", "msgs_per_s", ",.0f", "pipelined", ">= 0.7x")
    row("  server CPU per message, us", "pipelined", "cpu_us_per_msg", ".1f", None, "")
    row("wait wake-up p50, ms", "wait", "p50_ms", ".3f", None, "")
    row("wait wake-up p99, ms", "wait", "p99_ms", ".3f", "wait_p99", "<= 1 ms")
    row(f"inbox p50 at {c['messages']:,} msgs, ms", "inbox", "p50_ms", ".3f", None, "")
    row(f"inbox p99 at {c['messages']:,} msgs, ms", "inbox", "p99_ms", ".3f", "inbox_p99", "<= 1 ms")
    row("  p99 through the CLI's client, ms", "inbox_cli", "p99_ms", ".3f", None, "(its parse included)")
    row("  (loaded at, msgs/s)", "load", "msgs_per_s", ",.0f", None, "")
    row("one sender at ~200/s: ack p50, ms", "paced", "p50_ms", ".3f", None, "")
    row("  p99, ms", "paced", "p99_ms", ".3f", None, "")
    row("  p99.9, ms", "paced", "p999_ms", ".3f", None, "")
    row("rebuild, events/s", "rebuild", "events_per_s", ",.0f", "rebuild", ">= 0.8x")


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
    ap.add_argument("--compare", action="store_true", help="only the same-run comparison with the ceiling")
    ap.add_argument(
        "--baseline-src",
        action="append",
        default=[],
        help="compare: also run the Thrum under this src folder (a baseline; repeatable, named by its parent)",
    )
    ap.add_argument("--reps", type=int, default=3, help="compare: interleaved repetitions")
    ap.add_argument(
        "--sections",
        default="blocking16,pipelined,wait,inbox,paced,rebuild",
        help="compare: the workloads to run (the messages are loaded whatever is chosen)",
    )
    ap.add_argument("--per-client", type=int, default=500, help="compare: sends per blocking client (16)")
    ap.add_argument("--per-conn", type=int, default=2500, help="compare: sends per pipelined connection (4)")
    ap.add_argument("--wait-rounds", type=int, default=200)
    ap.add_argument("--queries", type=int, default=500, help="compare: inbox queries per rep")
    ap.add_argument("--paced", type=int, default=2000, help="compare: paced sends per rep")
    a = ap.parse_args()
    out: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    if a.compare:
        a.baseline_src = [str(Path(src).resolve()) for src in a.baseline_src]
        out["compare"] = bench_compare(a)
        if a.json:
            print(json.dumps(out, indent=2, sort_keys=True))
        else:
            print_compare(out["compare"])
        return 0
    only = set(a.only.split(","))
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
    print(f"== CLI wall time ({a.runs} runs each, interleaved) ==")
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

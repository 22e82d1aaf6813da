"""Socket hardening benchmarks (issue #9): an agent's `thrum send` with 1,000 idle connections held
by one process, next to the same without them; a stopped (SIGSTOP) engine: time until the client's
error; the cost of the CLI's JSON reader (`_json`, as used) next to importing `json`; `floor`: one
request's round trip through the engine's own socket server (a method that does nothing, so the
figure is the server's) next to a bare asyncio protocol and a streams-and-a-task-per-request server
in the same run, each answered in a client process of its own.

Targets: with 1,000 idle connections held, a `thrum send` still succeeds; a hung engine is
reported by the client within 15 s.

    .venv/bin/python bench/rpc.py [--json] [--only idle,hung,json,floor] [--runs N]
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

from engine import env_for, pct  # bench/engine.py: the same scratch environment, percentiles

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


ROUND_TRIPS = r"""
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rb")
lat = []
for i in range(int(sys.argv[2])):
    t = time.perf_counter()
    s.sendall(json.dumps({"jsonrpc": "2.0", "id": i, "method": "bench.noop", "params": {}}).encode() + b"\n")
    json.loads(f.readline())
    lat.append((time.perf_counter() - t) * 1e6)
print(json.dumps(lat))
"""


def _bare_protocol():
    import asyncio

    class Bare(asyncio.Protocol):
        def connection_made(self, transport) -> None:
            self.t, self.buf = transport, b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                rid = json.loads(line)["id"]
                self.t.write(json.dumps({"jsonrpc": "2.0", "id": rid, "result": {}}).encode() + b"\n")

    return Bare


async def _streams_task(reader, writer) -> None:
    import asyncio

    async def one(line: bytes) -> None:
        rid = json.loads(line)["id"]
        writer.write(json.dumps({"jsonrpc": "2.0", "id": rid, "result": {}}).encode() + b"\n")

    try:
        while True:
            asyncio.create_task(one(await reader.readuntil(b"\n")))
    except asyncio.IncompleteReadError:
        writer.close()


def bench_floor(runs: int) -> dict:
    """Round trips of a no-op request: the engine's server, then the two bare ones, interleaved."""
    import asyncio

    from thrum_engine.engine.assemble import build
    from thrum_engine.engine.caller import Caller
    from thrum_engine.engine.registry import METHODS, method
    from thrum_engine.layout import Layout
    from thrum_engine.model import Params
    from thrum_engine.rpc.server import RpcServer
    from thrum_engine.settings import ThrumSettings

    @method("bench.noop", Params)
    async def noop(engine, caller: Caller, p: Params) -> dict:
        return {}

    tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-floor-"))
    env = env_for(tmp)
    subprocess.run(["git", "init", "-q", str(tmp / "r")], check=True, env=env)
    (tmp / "r/.git/thrum-sync/a-sync/journal").mkdir(parents=True)

    async def go() -> dict:
        os.environ["THRUM_TMUX__SOCKET_NAME"] = f"thrum-bench-floor-{os.getpid()}"
        engine = build(Layout(str(tmp / "r")), ThrumSettings())
        await engine.start()
        loop = asyncio.get_running_loop()
        servers = {
            "thrum": RpcServer(engine, str(tmp / "thrum.sock")),
            "protocol": await loop.create_unix_server(_bare_protocol(), str(tmp / "protocol.sock")),
            "streams+task": await asyncio.start_unix_server(_streams_task, str(tmp / "streams.sock")),
        }
        await servers["thrum"].start()
        socks = {"thrum": "thrum.sock", "protocol": "protocol.sock", "streams+task": "streams.sock"}
        lat: dict[str, list[float]] = {k: [] for k in servers}
        try:
            for _ in range(5):
                for name, sock in socks.items():
                    p = await asyncio.create_subprocess_exec(
                        sys.executable, "-c", ROUND_TRIPS, str(tmp / sock), str(runs * 100),
                        cwd=str(tmp / "r"), env=env, stdout=asyncio.subprocess.PIPE,
                    )  # fmt: skip
                    out, _ = await p.communicate()
                    lat[name] += json.loads(out)
        finally:
            await servers["thrum"].close()
            for name in ("protocol", "streams+task"):
                servers[name].close()
            await engine.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        return {
            name: {"p50_us": round(statistics.median(v), 1), "p99_us": round(pct(v, 99), 1)}
            for name, v in lat.items()
        }

    try:
        return asyncio.run(go())
    finally:
        METHODS.pop("bench.noop", None)


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
        if "floor" in only:
            out["floor"] = bench_floor(a.runs)
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
    if "floor" in out:
        for name, f in out["floor"].items():
            print(
                f"no-op round trip, {name + ' server:':<22} p50 {f['p50_us']:6.1f} us   p99 {f['p99_us']:6.1f} us"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

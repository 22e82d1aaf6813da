"""Console benchmarks: first paint and RSS of `thrum tui` over a full store, keystroke-to-render under load.

Targets (the console issue): first paint <= 1 s and RSS <= 200 MB with 50 agents and 100k messages;
keystroke-to-render p95 <= 50 ms while 100 messages/s arrive.

* `paint`: a scratch repo is filled through a headless daemon's socket (50 agents, 100k messages,
  a tenth of them to the operator), the daemon is stopped, then the real `thrum tui` starts in a
  private tmux server (160x45) and `capture-pane` is polled: first paint = spawn -> the header
  ("thrum ·") is on screen; populated = spawn -> the team table lists agents. RSS (VmRSS) of the
  console process (which hosts the engine) after a settle. Several runs: median / p95.
* `keys`: the console (`ThrumApp` hosting the engine in-process, as `thrum tui` does) runs under
  Textual's test harness in this process while a separate process sends 100 msgs/s as registered
  agents (to the operator and between agents). Each key goes in the way a terminal's would
  (`driver.send_message(Key)`), latency = until the first frame whose compositor update already
  holds the new compose-bar value (the headless driver skips the terminal write; the frame's
  segments are still rendered here so that cost counts). Pilot's own `press()` is not used as the
  clock: it waits for the *process* to go idle, which the engine thread never lets it do.
* `tmux-keys`: the same load against the real `thrum tui` in tmux: `send-keys` one character and
  poll `capture-pane` until it is on screen (includes two tmux forks per poll, ~2-4 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import _cpu, env_for, pct, rss_kb

BIN = Path(sys.executable).parent
THRUM = str(BIN / "thrum") if (BIN / "thrum").exists() else None
OPERATOR_GIT_NAME = "Bench Operator"
OPERATOR = "bench_operator"
SIZE = (160, 45)
ROLES = ("implementer", "reviewer", "planner", "tester", "docs")

REGISTER = r"""
import json, sys
from thrum_engine.rpc.client import Client
path, operator, names = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
c = Client(path).connect()
c.call("agent.register", {"caller": operator, "name": operator, "role": "operator", "kind": "user"})
for n, role in names:
    c.call("agent.register", {"caller": n, "name": n, "role": role})
"""

# Pipelined raw JSON-RPC (the engine allows 64 requests in flight per connection).
FILL = r"""
import json, random, socket, sys
path, n, seed, operator, names, to_op = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], \
    json.loads(sys.argv[5]), float(sys.argv[6])
rng = random.Random(seed)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
f = s.makefile("rb")
window, sent, rid = 48, 0, 0
while sent < n:
    frames = []
    for _ in range(min(window, n - sent)):
        a, r = rng.sample(names, 2)
        if rng.random() < to_op:
            r = operator
        rid += 1
        frames.append(json.dumps({"jsonrpc": "2.0", "id": rid, "method": "message.send", "params": {
            "caller": a, "body": f"message {seed}-{sent + len(frames)} " + "x" * 80, "to": ["@" + r]}}))
    s.sendall(("\n".join(frames) + "\n").encode())
    for _ in frames:
        resp = json.loads(f.readline())
        if "error" in resp:
            sys.exit(f"send failed: {resp['error']}")
    sent += len(frames)
"""

# The background load: `rate` msgs/s from random agents, `to_op` of them to the operator, until stdin closes.
SENDER = r"""
import json, random, sys, threading, time
from thrum_engine.rpc.client import Client
path, operator, names, rate, to_op = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), float(sys.argv[4]), \
    float(sys.argv[5])
rng = random.Random(11)
c = Client(path).connect()
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
sys.stdout.write("ready\n"); sys.stdout.flush()
t0 = time.perf_counter()
sent, worst = 0, 0.0
while not stop.is_set():
    due = t0 + sent / rate
    now = time.perf_counter()
    if due > now:
        time.sleep(due - now)
    a, r = rng.sample(names, 2)
    if rng.random() < to_op:
        r = operator
    q0 = time.perf_counter()
    c.call("message.send", {"caller": a, "body": f"live {sent} from {a}: please rebase on main", "to": ["@" + r]})
    worst = max(worst, time.perf_counter() - q0)
    sent += 1
elapsed = time.perf_counter() - t0
print(json.dumps({"sent": sent, "seconds": elapsed, "rate": sent / elapsed, "worst_send_ms": worst * 1000}))
"""


class Store:
    """A scratch repo with `agents` agents and `messages` messages, filled through a headless daemon."""

    def __init__(self, agents: int, messages: int, to_operator: float, fillers: int = 4) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-console-"))
        self.home = self.tmp / "home"
        self.home.mkdir()
        self.repo = self.tmp / "repo"
        self.repo.mkdir()
        # Agents' panes would live on this tmux server: never the user's default one.
        self.tmux_socket = f"thrum-bench-{uuid.uuid4().hex[:8]}"
        self.env = env_for(self.home)
        self.env["THRUM_TMUX__SOCKET_NAME"] = self.tmux_socket
        self.env.setdefault("TERM", "xterm-256color")
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", OPERATOR_GIT_NAME)
        (self.repo / "README.md").write_text("x\n")
        self.git("add", "README.md")
        self.git("commit", "-q", "-m", "init")
        self.thrum("init", "--no-daemon")
        from thrum_engine.layout import Layout

        self.socket = Layout(str(self.repo)).socket_path
        self.names = [f"agent_{i:02d}" for i in range(agents)]
        self.agents = [(n, ROLES[i % len(ROLES)]) for i, n in enumerate(self.names)]
        t0 = time.perf_counter()
        self.thrum("daemon", "start")
        try:
            self.py(REGISTER, self.socket, OPERATOR, json.dumps(self.agents))
            per = [messages // fillers + (1 if i < messages % fillers else 0) for i in range(fillers)]
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        FILL,
                        self.socket,
                        str(n),
                        str(i),
                        OPERATOR,
                        json.dumps(self.names),
                        str(to_operator),
                    ],
                    cwd=self.repo,
                    env=self.env,
                )
                for i, n in enumerate(per)
                if n
            ]
            if any(p.wait() for p in procs):
                raise SystemExit("filling the store failed")
        finally:
            self.thrum("daemon", "stop")
        self.fill_seconds = time.perf_counter() - t0
        self.messages = messages

    def git(self, *args: str) -> None:
        subprocess.run(["git", *args], cwd=self.repo, env=self.env, check=True, capture_output=True)

    def thrum(self, *args: str) -> str:
        cmd = [THRUM] if THRUM else [sys.executable, "-m", "thrum_engine"]
        p = subprocess.run(cmd + list(args), cwd=self.repo, env=self.env, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"thrum {' '.join(args)} failed: {p.stderr}")
        return p.stdout

    def py(self, src: str, *args: str) -> None:
        subprocess.run([sys.executable, "-c", src, *args], cwd=self.repo, env=self.env, check=True)

    def sender(self, rate: float, to_operator: float) -> subprocess.Popen:
        p = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SENDER,
                self.socket,
                OPERATOR,
                json.dumps(self.names),
                str(rate),
                str(to_operator),
            ],
            cwd=self.repo,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert p.stdout.readline().strip() == "ready"
        return p

    @staticmethod
    def sender_result(p: subprocess.Popen) -> dict:
        p.stdin.close()
        out = p.stdout.read()
        p.wait()
        return json.loads(out)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.tmux_socket, "kill-server"], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- the real console in a private tmux server --


class Tmux:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.name = f"thrum-bench-tui-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str, check: bool = True) -> str:
        p = subprocess.run(
            ["tmux", "-L", self.name, "-f", "/dev/null", *args],
            env=self.store.env,
            capture_output=True,
            text=True,
        )
        if check and p.returncode != 0:
            raise RuntimeError(f"tmux {args[0]}: {p.stderr.strip()}")
        return p.stdout

    def spawn(self, cmd: str | None = None) -> float:
        cmd = (
            cmd
            or f"cd {self.store.repo} && exec {THRUM or sys.executable + ' -m thrum_engine'} tui --stop-engine"
        )
        t0 = time.perf_counter()
        self.run("new-session", "-d", "-s", "tui", "-x", str(SIZE[0]), "-y", str(SIZE[1]), cmd)
        return t0

    def capture(self) -> str:
        return self.run("capture-pane", "-p", "-t", "tui", check=False)

    def pid(self) -> int:
        pane = int(self.run("list-panes", "-t", "tui", "-F", "#{pane_pid}").split()[0])
        # `thrum tui` execs the console, so the pane's process is the console; else its child.
        try:
            cmdline = Path(f"/proc/{pane}/cmdline").read_bytes()
        except OSError:
            return pane
        if b"thrum_tui" in cmdline:
            return pane
        for child in Path(f"/proc/{pane}/task/{pane}/children").read_text().split():
            return int(child)
        return pane

    def wait_for(self, cond, timeout: float = 30.0, interval: float = 0.002) -> tuple[float, str]:
        deadline = time.perf_counter() + timeout
        while True:
            screen = self.capture()
            if cond(screen):
                return time.perf_counter(), screen
            if time.perf_counter() > deadline:
                raise TimeoutError(f"console screen never matched; last screen:\n{screen}")
            time.sleep(interval)

    def quit(self) -> None:
        try:
            pid = self.pid()
            self.run("send-keys", "-t", "tui", "q", check=False)
            deadline = time.time() + 15
            while Path(f"/proc/{pid}").exists() and time.time() < deadline:
                time.sleep(0.05)
        except (RuntimeError, ValueError, IndexError, OSError):
            pass
        finally:
            self.run("kill-server", check=False)
            # The folder of the server tmux ran with this environment (not the bench's own).
            sock = Path(self.store.env.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / self.name
            sock.unlink(missing_ok=True)
            # Whatever the console left (a hand-over daemon) goes too.
            cmd = [THRUM] if THRUM else [sys.executable, "-m", "thrum_engine"]
            subprocess.run(
                cmd + ["daemon", "stop"], cwd=self.store.repo, env=self.store.env, capture_output=True
            )


def compose_text(screen: str) -> str | None:
    """The first word in the compose bar (the bottom `▊ ... ▎` box); toasts may cover its right part."""
    for line in reversed(screen.splitlines()):
        if line.startswith("▊") and not line.startswith(("▊▔", "▊▁")):
            words = line[1:].split()
            return words[0] if words else ""
    return None


def team_rows(screen: str) -> int:
    """Agent rows visible in the team table (left column)."""
    return sum(1 for line in screen.splitlines() if "agent_" in line[:40])


# The floor: the smallest Textual app, started the same way (interpreter + textual import + first frame).
FLOOR_APP = (
    "from textual.app import App\n"
    "from textual.widgets import Static\n"
    "class A(App):\n"
    "    def compose(self):\n"
    "        yield Static('thrum · floor')\n"
    "A().run()\n"
)


# The keystroke floor: a bare Textual Input drawn like the compose bar, typed into the same way
# while the same message load runs (against a headless daemon): what tmux, the terminal
# round trip and capture-pane polling cost on this machine, with none of the console's work.
FLOOR_INPUT_APP = (
    "from textual.app import App\n"
    "from textual.widgets import Input, Static\n"
    "class A(App):\n"
    "    CSS = 'Input { dock: bottom; border: tall $primary; }'\n"
    "    def compose(self):\n"
    "        yield Static('thrum · floor')\n"
    "        yield Input()\n"
    "A().run()\n"
)


def _ms(values: list[float]) -> dict:
    return {
        "median": round(statistics.median(values)),
        "p95": round(pct(values, 95)),
        "all": [round(x) for x in values],
    }


def bench_paint(store: Store, runs: int, settle: float) -> dict:
    paint, populated, rss, idle_cpu, floor = [], [], [], [], []
    want = min(5, len(store.names))
    screen = ""
    for _ in range(runs):
        t = Tmux(store)
        try:
            t0 = t.spawn(f"exec {sys.executable} -c {shlex.quote(FLOOR_APP)}")
            t1, _ = t.wait_for(lambda s: "thrum · floor" in s)
            floor.append((t1 - t0) * 1000)
        finally:
            t.quit()
        t = Tmux(store)
        try:
            t0 = t.spawn()
            t1, _ = t.wait_for(lambda s: "thrum ·" in s)
            t2, screen = t.wait_for(lambda s: "thrum ·" in s and team_rows(s) >= want and f"@{OPERATOR}" in s)
            paint.append((t1 - t0) * 1000)
            populated.append((t2 - t0) * 1000)
            pid = t.pid()
            time.sleep(settle / 2)
            c0, w0 = _cpu(pid), time.perf_counter()
            time.sleep(settle / 2)
            idle_cpu.append(100 * (_cpu(pid) - c0) / (time.perf_counter() - w0))
            rss.append(rss_kb(pid) / 1024)
        finally:
            t.quit()
    return {
        "runs": runs,
        "agents": len(store.names),
        "messages": store.messages,
        "floor_paint_ms": _ms(floor),
        "first_paint_ms": _ms(paint),
        "populated_ms": _ms(populated),
        "rss_mb": {"median": round(statistics.median(rss), 1), "max": round(max(rss), 1)},
        "idle_cpu_pct": round(statistics.median(idle_cpu), 1),
        "in_process": "engine: in-process" in screen,
        "last_screen": screen,
    }


def bench_tmux_keys(store: Store, keys: int, rate: float, to_operator: float, *, floor: bool = False) -> dict:
    t = Tmux(store)
    lat = []
    sender = None
    try:
        if floor:
            store.thrum("daemon", "start")  # the sender's messages need an engine; the app is bare
            t.spawn(f"exec {sys.executable} -c {shlex.quote(FLOOR_INPUT_APP)}")
            t.wait_for(lambda s: "thrum · floor" in s, interval=0.05)
        else:
            t.spawn()
            t.wait_for(lambda s: team_rows(s) >= min(5, len(store.names)), interval=0.05)
        time.sleep(1.0)
        for attempt in range(5):  # focus the compose bar (a lone Escape first would make it alt+i)
            if not floor:
                t.run("send-keys", "-t", "tui", "i")
                time.sleep(0.5)
            t.run("send-keys", "-t", "tui", "C-u")
            t.run("send-keys", "-t", "tui", "-l", "x")
            try:
                t.wait_for(lambda s: compose_text(s) == "x", timeout=3, interval=0.01)  # the bar has the keys
                break
            except TimeoutError:
                if attempt == 4:
                    raise
        t.run("send-keys", "-t", "tui", "C-u")
        sender = store.sender(rate, to_operator)
        time.sleep(1.0)
        rng = random.Random(3)
        typed = ""
        for i in range(keys):
            if len(typed) >= 40:
                t.run("send-keys", "-t", "tui", "C-u")
                t.wait_for(lambda s: compose_text(s) != typed, timeout=10, interval=0.01)
                typed = ""
            ch = rng.choice("abcdefghijklmnoprstuvwxyz")
            typed += ch
            t0 = time.perf_counter()
            t.run("send-keys", "-t", "tui", "-l", ch)
            t1, _ = t.wait_for(lambda s, w=typed: compose_text(s) == w, timeout=10, interval=0.0)
            lat.append((t1 - t0) * 1000)
            time.sleep(rng.uniform(0.02, 0.06))
        sent = store.sender_result(sender)
    finally:
        t.quit()
        if sender is not None and sender.poll() is None:
            sender.kill()
            sender.wait()
    return _lat(lat) | {"achieved_msgs_per_s": round(sent["rate"], 1), "sent": sent["sent"]}


def _lat(lat: list[float]) -> dict:
    return {
        "keys": len(lat),
        "p50_ms": round(pct(lat, 50), 1),
        "p95_ms": round(pct(lat, 95), 1),
        "p99_ms": round(pct(lat, 99), 1),
        "max_ms": round(max(lat), 1),
    }


# -- in-process: ThrumApp under Textual's test harness --


async def _keys_in_process(store: Store, keys: int, rate: float, to_operator: float) -> dict:
    for k, v in store.env.items():  # the engine this process hosts must see the store's environment
        if k.startswith("THRUM_") or k == "HOME":
            os.environ[k] = v
    os.chdir(store.repo)
    from textual import events
    from textual._compositor import CompositorUpdate

    from thrum_engine.layout import Layout
    from thrum_engine.settings import load_settings
    from thrum_tui.app import ThrumApp
    from thrum_tui.engine_handle import open_engine
    from thrum_tui.widgets.compose_bar import ComposeBar
    from thrum_tui.widgets.team_table import TeamTable

    class BenchApp(ThrumApp):
        CSS_PATH = str(Path(sys.modules[ThrumApp.__module__].__file__).parent / ThrumApp.CSS_PATH)
        expect: str | None = None
        hit_at = 0.0
        frames = 0
        refreshes: list[float] = []

        def _display(self, screen, renderable) -> None:
            if renderable is not None:
                self.frames += 1
                if isinstance(renderable, CompositorUpdate):
                    renderable.render_segments(self.console)  # the terminal write a real driver does
                if self.expect is not None and self.query_one(ComposeBar).value == self.expect:
                    self.expect = None
                    self.hit_at = time.perf_counter()
            super()._display(screen, renderable)

        async def _refresh_once(self, *args) -> None:
            t0 = time.perf_counter()
            await super()._refresh_once(*args)
            self.refreshes.append((time.perf_counter() - t0) * 1000)

    layout = Layout.discover(str(store.repo))
    settings = load_settings(layout.config_file)
    lat: list[float] = []
    async with open_engine(layout, settings, OPERATOR) as engine:
        app = BenchApp(engine, settings=settings, freeze_heap=True)  # as `thrum tui` runs it
        async with app.run_test(size=SIZE) as pilot:
            deadline = time.monotonic() + 30
            while len(app.query_one(TeamTable).names) < len(store.names):
                assert time.monotonic() < deadline, "team table never filled"
                await pilot.pause(0.05)
            bar = app.query_one(ComposeBar)
            bar.focus()
            await pilot.pause(0.2)
            sender = await asyncio.to_thread(store.sender, rate, to_operator)
            await asyncio.sleep(1.0)
            app.refreshes.clear()
            frames0 = app.frames
            t_start = time.perf_counter()
            rng = random.Random(3)
            driver = app._driver
            for i in range(keys):
                if i % 40 == 0:
                    bar.value = ""
                    await asyncio.sleep(0.05)
                ch = rng.choice("abcdefghijklmnoprstuvwxyz")
                app.hit_at = 0.0
                app.expect = bar.value + ch
                t0 = time.perf_counter()
                driver.send_message(events.Key(ch, ch))
                while not app.hit_at:
                    if time.perf_counter() - t0 > 10:
                        raise TimeoutError(f"key {ch!r} never rendered (value {bar.value!r})")
                    await asyncio.sleep(0.0005)
                lat.append((app.hit_at - t0) * 1000)
                await asyncio.sleep(rng.uniform(0.02, 0.06))  # a fast typist: ~25 keys/s
            wall = time.perf_counter() - t_start
            sent = await asyncio.to_thread(store.sender_result, sender)
            refreshes = list(app.refreshes)
            fps = (app.frames - frames0) / wall
            unread = app.query_one(TeamTable).member(OPERATOR) or {}
    return _lat(lat) | {
        "achieved_msgs_per_s": round(sent["rate"], 1),
        "sent": sent["sent"],
        "worst_send_ms": round(sent["worst_send_ms"], 1),
        "frames_per_s": round(fps, 1),
        "refreshes": len(refreshes),
        "refresh_p50_ms": round(pct(refreshes, 50), 1) if refreshes else None,
        "refresh_max_ms": round(max(refreshes), 1) if refreshes else None,
        "operator_unread_after": unread.get("unread"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--only",
        default="paint,keys,tmux-keys,tmux-floor",
        help="comma list of paint, keys, tmux-keys, tmux-floor",
    )
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument(
        "--to-operator",
        type=float,
        default=0.1,
        help="share of the stored messages and of the live load addressed to the operator",
    )
    ap.add_argument("--runs", type=int, default=5, help="first-paint runs")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds after populated before reading RSS")
    ap.add_argument("--keys", type=int, default=250, help="keystrokes in the in-process run")
    ap.add_argument("--tmux-keys", type=int, default=200, help="keystrokes in the real-terminal run")
    ap.add_argument(
        "--rate", type=float, default=100.0, help="background messages/s during the keystroke runs"
    )
    a = ap.parse_args()
    only = set(a.only.split(","))
    if not shutil.which("tmux"):
        only -= {"paint", "tmux-keys", "tmux-floor"}
    out: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    store = Store(a.agents, a.messages, a.to_operator)
    out["store"] = {
        "agents": a.agents,
        "messages": a.messages,
        "fill_seconds": round(store.fill_seconds, 1),
        "to_operator": a.to_operator,
    }
    sections = {
        "paint": ("paint", lambda: bench_paint(store, a.runs, a.settle)),
        "keys": ("keys", lambda: asyncio.run(_keys_in_process(store, a.keys, a.rate, a.to_operator))),
        "tmux-keys": ("tmux_keys", lambda: bench_tmux_keys(store, a.tmux_keys, a.rate, a.to_operator)),
        "tmux-floor": (
            "tmux_floor",
            lambda: bench_tmux_keys(store, a.tmux_keys, a.rate, a.to_operator, floor=True),
        ),
    }
    try:
        for name, (key, run) in sections.items():
            if name in only:
                try:
                    out[key] = run()
                except Exception as exc:  # one section failing must not lose the others' figures
                    out[key] = {"error": f"{type(exc).__name__}: {str(exc)[:2000]}"}
    finally:
        store.close()
    screen = out.get("paint", {}).pop("last_screen", None)
    if a.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    s = out["store"]
    print(
        f"== store: {s['agents']} agents, {s['messages']:,} messages (filled through the socket in "
        f"{s['fill_seconds']} s)"
    )
    for key in ("paint", "keys", "tmux_keys", "tmux_floor"):
        if "error" in out.get(key, {}):
            print(f"== {key} FAILED: {out.pop(key)['error']}")
    if "paint" in out:
        p = out["paint"]
        print(
            f"== thrum tui in tmux {SIZE[0]}x{SIZE[1]}, {p['runs']} runs (targets: paint <= 1000 ms, RSS <= 200 MB)"
        )
        print(
            f"  bare Textual app median {p['floor_paint_ms']['median']:6d} ms   p95 {p['floor_paint_ms']['p95']:6d} ms"
            f"   {p['floor_paint_ms']['all']}   (floor: interpreter + textual + one frame)"
        )
        print(
            f"  first paint      median {p['first_paint_ms']['median']:6d} ms   p95 {p['first_paint_ms']['p95']:6d} ms"
            f"   {p['first_paint_ms']['all']}"
        )
        print(
            f"  team populated   median {p['populated_ms']['median']:6d} ms   p95 {p['populated_ms']['p95']:6d} ms"
            f"   {p['populated_ms']['all']}"
        )
        print(
            f"  RSS (console + in-process engine)  median {p['rss_mb']['median']} MB   max {p['rss_mb']['max']} MB"
            f"   idle CPU {p['idle_cpu_pct']} %   (engine in-process: {p['in_process']})"
        )
    for key, label in (
        ("keys", "in-process (Textual harness)"),
        ("tmux_keys", "real terminal (tmux poll)"),
        ("tmux_floor", "floor: a bare Textual Input in the same tmux, same load"),
    ):
        if key in out:
            k = out[key]
            print(
                f"== keystroke -> render, {label}, {k['keys']} keys at {k['achieved_msgs_per_s']} msgs/s"
                f" (target p95 <= 50 ms)"
            )
            print(
                f"  p50 {k['p50_ms']} ms   p95 {k['p95_ms']} ms   p99 {k['p99_ms']} ms   max {k['max_ms']} ms"
            )
            if key == "keys":
                print(
                    f"  ({k['frames_per_s']} frames/s, {k['refreshes']} engine refreshes: p50 {k['refresh_p50_ms']} ms,"
                    f" max {k['refresh_max_ms']} ms; slowest send {k['worst_send_ms']} ms)"
                )
    if screen and os.environ.get("BENCH_SHOW_SCREEN"):
        print(screen)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

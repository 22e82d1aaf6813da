"""Shared fixtures: real git repos in temp dirs, the real `thrum` CLI in subprocesses,
and a real daemon per repo, stopped (or killed) at teardown."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
THRUM = [str(BIN / "thrum")] if (BIN / "thrum").exists() else [sys.executable, "-m", "thrum_engine"]
FAKE_AGENT = Path(__file__).resolve().with_name("fake_agent.py")


def wait_for(cond, timeout: float = 20.0, what: str = "condition", interval: float = 0.05, *, last=None):
    """Poll `cond` until it returns something truthy (returned); fail naming `what` at the deadline,
    with `last()` (what was last seen: a screen, a log) when given."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n--- last seen ---\n{last()}" if last else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{detail}")
        time.sleep(interval)


def is_alive(pid: int) -> bool:
    """True while any thread of `pid` still runs (a zombie leader may outlive its threads' teardown)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="utf-8") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            return True
    return False


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            stat = fh.read()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2 :].split()[1])


def daemon_pids(repo) -> list[int]:
    """Live `python -m thrum_engine.daemon --repo <this repo>` processes. A daemon's child caught
    between fork and exec (it is starting git or tmux) still shows the daemon's command line: it is
    not another engine, and is left out."""
    real = os.path.realpath(repo.path)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                args = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
        except OSError:
            continue
        if "thrum_engine.daemon" not in args or "--repo" not in args:
            continue
        i = args.index("--repo")
        if i + 1 < len(args) and os.path.realpath(args[i + 1]) == real and is_alive(int(entry)):
            found.append(int(entry))
    return sorted(p for p in found if _parent_pid(p) not in found)


def shard_file(repo_path, author: str) -> Path:
    """`author`'s shard in this clone's journal: `<author>@<clone id>.jsonl` (the id is made at the
    engine's first start and kept in `.thrum/var/clone`)."""
    from thrum_engine.layout import Layout

    layout = Layout(str(repo_path))
    clone = Path(layout.clone_file).read_text().strip()
    return Path(layout.journal_dir) / f"{author}@{clone}.jsonl"


def shard_stem(name: str) -> str:
    """A reported shard name without its clone id: `alice@3f9c01aa` -> `alice`."""
    return name.split("@", 1)[0]


def assert_pretty_json(out: str):
    """`--json` is one document: 2-space indent, sorted keys, readable non-ASCII."""
    doc = json.loads(out)
    assert out == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return doc


def assert_error(r, *fragments: str, code: int = 1) -> str:
    """One line `Error: ...` on stderr, nothing on stdout, exit `code`."""
    assert r.code == code, f"expected exit {code}, got {r.code}: {r.err}{r.out}"
    assert r.out == ""
    lines = r.err.splitlines()
    assert len(lines) == 1, f"expected one error line, got: {r.err!r}"
    assert lines[0].startswith("Error: "), lines[0]
    for f in fragments:
        assert f in lines[0], f"{f!r} not in {lines[0]!r}"
    return lines[0]


def base_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THRUM_", "TMUX", "GIT_"))}
    env.update(
        {
            "HOME": str(home),
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HISTFILE": "/dev/null",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


def git(cwd: Path, *args: str, env: dict | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


SEND_MANY = r"""
import json, sys
from thrum_engine.layout import Layout
from thrum_engine.rpc.client import Client
client = Client(Layout.discover().socket_path, timeout=120).connect()
print(json.dumps([client.call("message.send", p)["message_id"] for p in json.load(sys.stdin)]))
"""


def send_many(agent, bodies, to: str) -> list[str]:
    """Send each of `bodies` from `agent` to `to` over one connection of one process in the agent's
    worktree (the engine knows a caller by its cwd): the same `message.send` the CLI makes, without
    a CLI start-up per message. For tests that need many messages, not many CLI runs."""
    agent.ok("daemon", "start")
    params = [{"caller": agent.name, "body": b, "to": [to]} for b in bodies]
    proc = run_python(agent, SEND_MANY, input=json.dumps(params))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def run_python(who, script: str, *args: str, input: str | None = None, timeout: float = 300):
    """`python -c SCRIPT ARGS` in `who`'s directory and environment (an Agent or a Repo): a client
    of the engine that makes many calls in one process."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=getattr(who, "cwd", None) or who.path,
        env=who.env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_daemon(repo, *args: str, cwd: Path | None = None, timeout: float = 60):
    """The engine started by hand in the foreground (`python -m thrum_engine.daemon ARGS`) with the
    repo's environment: for what a refused start prints and leaves behind."""
    return subprocess.run(
        [sys.executable, "-m", "thrum_engine.daemon", *args],
        cwd=cwd or repo.path,
        env=repo.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def background(agent, *args: str):
    """Run `thrum ARGS` as `agent` in the background; always reaped."""
    proc = subprocess.Popen(
        THRUM + list(args),
        cwd=agent.cwd,
        env=agent.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def layout_of(repo):
    """The repo's Layout, as the engine computes it (paths of the socket, lock, pid file, ...)."""
    from thrum_engine.layout import Layout

    return Layout(str(repo.path))


def agent_names(who) -> list[str]:
    """The registered agents' names, as `who` lists them."""
    return [a["name"] for a in who.json("agent", "list")["agents"]]


def wt_path(repo, name: str) -> Path:
    """Where `thrum worktree create NAME` puts a worktree (worktrees.base_path under the test HOME)."""
    return Path(repo.env["HOME"]) / ".thrum" / "worktrees" / repo.path.name / name


def commit(repo, cwd: Path, files: dict[str, str], message: str) -> str:
    """Write `files` (relative path -> text) in `cwd`, commit them; the new HEAD."""
    for name, text in files.items():
        (cwd / name).parent.mkdir(parents=True, exist_ok=True)
        (cwd / name).write_text(text)
    repo.git("add", "-A", "--", *files, cwd=cwd)
    repo.git("commit", "-q", "-m", message, cwd=cwd)
    return repo.git("rev-parse", "HEAD", cwd=cwd)


def enter(repo, monkeypatch) -> None:
    """This process inside the repo with the repo's environment (its private tmux server, its HOME):
    for in-process engines and consoles."""
    for key, value in repo.env.items():
        if key.startswith("THRUM_") or key == "HOME":
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(repo.path)


def fake_runtime(log: Path, extends: str = "claude", *flags: str, **fields) -> dict:
    """A runtime preset that runs tests/fake_agent.py (logging what is typed into it to `log`)
    with `extends`' screens and keys."""
    return {
        "extends": extends,
        **fields,
        "command": [sys.executable, str(FAKE_AGENT), *flags, "--log", str(log)],
    }


def start_session(repo, session: str, agent: str, runtime: str, role: str = "worker") -> None:
    """`thrum tmux create SESSION` in the main checkout for a new agent, then `tmux launch`, and
    wait until the runtime's pane is idle."""
    r = repo.run(
        "tmux",
        "create",
        session,
        "--cwd",
        str(repo.path),
        "--name",
        agent,
        "--role",
        role,
        "--runtime",
        runtime,
    )
    assert r.code == 0, r.err
    r = repo.run("tmux", "launch", session, timeout=90)
    assert r.code == 0 and "primed" in r.out, r.err + r.out
    wait_for(lambda: pane_state(repo, session) == "idle", what=f"{session} idle")


def worktree_agent(repo, name: str, role: str, runtime: str = "shell") -> Agent:
    """`thrum worktree create NAME --name NAME`: an agent in a worktree Thrum made (and its session)."""
    r = repo.run("worktree", "create", name, "--name", name, "--role", role, "--runtime", runtime)
    assert r.code == 0, r.err
    return Agent(name, role, wt_path(repo, name), dict(repo.env))


def outer_terminal(repo, session: str, command: str, cwd: Path | None = None) -> str:
    """A second tmux server playing a terminal (120x40) that runs `command`, e.g. a client attached
    to one of the repo's sessions; its socket name (kill it with `kill_tmux`)."""
    outer = repo.env["THRUM_TMUX__SOCKET_NAME"] + "-outer"
    env = {k: v for k, v in repo.env.items() if k not in ("TMUX", "TMUX_PANE")}
    where = ["-c", str(cwd)] if cwd else []
    subprocess.run(
        ["tmux", "-L", outer, "-f", "/dev/null", "new-session", "-d", "-s", session, "-x", "120", "-y", "40"]
        + where
        + [command],
        env=env,
        check=True,
    )
    return outer


def write_runtimes(repo, presets: dict[str, dict]) -> None:
    """The repo's runtime presets file (after `thrum init`): the engine reads it at start."""
    (repo.path / ".thrum" / "runtimes.json").write_text(json.dumps({"presets": presets}))


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


def run_thrum(
    args: list[str], cwd: Path, env: dict, *, input: str | None = None, timeout: float = 60
) -> Result:
    proc = subprocess.run(
        THRUM + list(args), cwd=cwd, env=env, input=input, capture_output=True, text=True, timeout=timeout
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


class RunsThrum:
    """`ok` and `json` over a `run(*args)`: for anything that runs the CLI somewhere."""

    def run(self, *args: str, **kw) -> Result:
        raise NotImplementedError

    def ok(self, *args: str, **kw) -> Result:
        r = self.run(*args, **kw)
        assert r.code == 0, f"thrum {' '.join(args)} failed ({r.code}): {r.err}{r.out}"
        return r

    def json(self, *args: str, **kw):
        return self.ok(*args, "--json", **kw).json


def pane_state(repo, session: str) -> str | None:
    """The pane state `thrum tmux status` reports for `session`, or None."""
    r = repo.run("tmux", "status", "--json")
    for s in r.json["sessions"] if r.code == 0 else []:
        if s["name"] == session:
            return s["pane_state"]
    return None


@dataclass
class Agent(RunsThrum):
    name: str
    role: str
    cwd: Path
    env: dict

    def run(self, *args: str, input: str | None = None, timeout: float = 60, **env: str) -> Result:
        return run_thrum(list(args), self.cwd, {**self.env, **env}, input=input, timeout=timeout)


@dataclass
class Repo(RunsThrum):
    path: Path
    env: dict
    worktrees: list[Path] = field(default_factory=list)

    def run(self, *args: str, cwd: Path | None = None, **kw) -> Result:
        return run_thrum(list(args), cwd or self.path, self.env, **kw)

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return git(cwd or self.path, *args, env=self.env)

    def worktree(self, name: str) -> Path:
        path = self.path.parent / f"wt-{name}"
        self.git("worktree", "add", "-q", "-b", f"feature/{name}", str(path))
        self.worktrees.append(path)
        return path

    def agent(
        self, name: str, role: str, *, module: str = "", worktree: bool = True, intent: str = ""
    ) -> Agent:
        """A registered agent: its own worktree (default) and `thrum quickstart` run there."""
        cwd = self.worktree(name) if worktree else self.path
        args = ["quickstart", "--name", name, "--role", role]
        if module:
            args += ["--module", module]
        if intent:
            args += ["--intent", intent]
        env = dict(self.env)
        if not worktree:
            env["THRUM_NAME"] = name  # several identities share the main checkout
        r = run_thrum(args, cwd, env)
        assert r.code == 0, r.err
        return Agent(name, role, cwd, env)

    @property
    def var(self) -> Path:
        return self.path / ".thrum" / "var"

    def daemon_pid(self) -> int | None:
        try:
            return json.loads((self.var / "thrum.pid").read_text())["pid"]
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        pid = self.daemon_pid()
        if pid is None and not daemon_pids(self):
            return  # no engine: nothing to stop (and no CLI start-up spent finding that out)
        self.run("daemon", "stop", timeout=30)
        if pid:
            # Exited is enough: the daemon's parent is init, which may reap the zombie seconds later.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if not is_alive(pid):
                    return
                time.sleep(0.01)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class RepoMaker:
    """Makes repos (git init, one commit, a private tmux server each) and at close stops their
    engines, kills their tmux servers and removes them."""

    def __init__(self, tmp_path_factory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.repos: list[Repo] = []

    def __call__(self, name: str = "repo") -> Repo:
        base = self.tmp_path_factory.mktemp("t")
        home = base / "home"
        home.mkdir()
        path = base / name
        path.mkdir()
        env = base_env(home)
        # Every engine in the suite uses a private tmux server, never the user's default one.
        env["THRUM_TMUX__SOCKET_NAME"] = f"thrum-test-{uuid.uuid4().hex[:12]}"
        env["THRUM_TMUX__SHELL"] = "bash --norc --noprofile"
        git(path, "init", "-q", "-b", "main", env=env)
        (path / "README.md").write_text("hello\n")
        git(path, "add", "README.md", env=env)
        git(path, "commit", "-q", "-m", "init", env=env)
        repo = Repo(path, env)
        self.repos.append(repo)
        return repo

    def close(self) -> None:
        for repo in self.repos:
            repo.stop()
            kill_tmux(repo.env["THRUM_TMUX__SOCKET_NAME"])
            shutil.rmtree(repo.path.parent, ignore_errors=True)


@pytest.fixture
def make_repo(tmp_path_factory):
    make = RepoMaker(tmp_path_factory)
    yield make
    make.close()


@pytest.fixture(scope="module")
def make_module_repo(tmp_path_factory):
    """`make_repo` for one setup that a module's read-only checks share (a parametrized refusal,
    say), instead of each building the same repo and starting the same engine again."""
    make = RepoMaker(tmp_path_factory)
    yield make
    make.close()


def kill_tmux(socket_name: str) -> None:
    subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True)
    try:
        os.unlink(f"/tmp/tmux-{os.getuid()}/{socket_name}")  # kill-server leaves the socket file
    except FileNotFoundError:
        pass


@pytest.fixture
def repo(make_repo) -> Repo:
    return make_repo()


@pytest.fixture
def pair(repo):
    """Two agents in two worktrees of one repo: the common arrangement."""
    alice = repo.agent("alice", "implementer", module="auth")
    bob = repo.agent("bob", "reviewer")
    return repo, alice, bob


@pytest.fixture
def team(repo, monkeypatch):
    """A repo with two agents in their own worktrees, the operator's git name set, and this
    process inside the repo with the repo's environment (its private tmux server, its HOME)."""
    alice = repo.agent("alice", "implementer", module="auth")
    bob = repo.agent("bob", "reviewer")
    repo.git("config", "user.name", "Ada Lovelace")
    enter(repo, monkeypatch)
    return repo, alice, bob


async def start_inproc_engine(tmp_path: Path, monkeypatch, tag: str):
    """An engine in this process on a fresh repository with its journal folder (no daemon, no
    socket clients), on a tmux socket name of its own; the caller stops it."""
    import asyncio

    from thrum_engine.engine.assemble import build
    from thrum_engine.layout import Layout
    from thrum_engine.settings import ThrumSettings

    monkeypatch.setenv("THRUM_TMUX__SOCKET_NAME", f"thrum-{tag}-{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(subprocess.run, ["git", "init", "-q", str(tmp_path / "r")], check=True)
    (tmp_path / "r/.git/thrum-sync/a-sync/journal").mkdir(parents=True)
    engine = build(Layout(str(tmp_path / "r")), ThrumSettings())
    await engine.start()
    return engine


def projection_rows(path: Path, runs: list) -> dict[str, list]:
    """Every table's rows, in insertion order, after applying the store's write `runs` to a fresh
    projection at `path`: two write paths compared by what they make, not by their statements."""
    import sqlite3

    from thrum_engine.store.db import _transaction, migrate

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrate(conn)
        _transaction(conn, runs, {}, multirow=True)
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        return {t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in tables}
    finally:
        conn.close()


# Cycles run only when a test asks (`sync force --wait`), so what each test sees is deterministic.
QUIET = {"THRUM_SYNC__INTERVAL_SECONDS": "3600", "THRUM_SYNC__SETTLE_SECONDS": "3600"}


@pytest.fixture
def remote(tmp_path_factory):
    """A bare remote with one commit on main, and a factory of clones of it (engines stopped and
    tmux servers killed at teardown)."""
    base = tmp_path_factory.mktemp("sync")
    bare = base / "remote.git"
    git(base, "init", "-q", "--bare", "-b", "main", str(bare))
    seed_env = base_env(base)
    seed = base / "seed"
    git(base, "clone", "-q", str(bare), str(seed), env=seed_env)
    (seed / "README.md").write_text("hello\n")
    git(seed, "add", "README.md", env=seed_env)
    git(seed, "commit", "-q", "-m", "init", env=seed_env)
    git(seed, "push", "-q", "origin", "main", env=seed_env)
    clones: list[Repo] = []

    def make(name: str, url: str | None = None, **env: str) -> Repo:
        home = base / f"home-{name}"
        home.mkdir()
        e = base_env(home) | QUIET | env
        e["THRUM_TMUX__SOCKET_NAME"] = f"thrum-test-{uuid.uuid4().hex[:12]}"
        path = base / name
        git(base, "clone", "-q", str(bare), str(path), env=e)
        if url is not None:
            git(path, "remote", "set-url", "origin", url, env=e)
        repo = Repo(path, e)
        clones.append(repo)
        return repo

    make.bare = bare  # type: ignore[attr-defined]
    yield make
    for repo in clones:
        repo.stop()
        kill_tmux(repo.env["THRUM_TMUX__SOCKET_NAME"])
    shutil.rmtree(base, ignore_errors=True)


def sync(repo: Repo) -> dict:
    return repo.json("sync", "force", "--wait")["cycle"]


def contents(agent, *flags: str) -> list[str]:
    return [m["body"]["content"] for m in agent.json("inbox", *flags)["messages"]]


def exchange(*repos: Repo) -> None:
    """Enough cycles for every clone to have everything: each pushes, then each fetches."""
    for r in repos + repos:
        assert sync(r)["result"] == "ok"


EMPTY_NAME = "the agent name must not be empty"
RAW_CALL = r"""
import json, sys
from thrum_engine.layout import Layout
from thrum_engine.rpc.client import Client, RpcError
client = Client(Layout.discover().socket_path).connect()
try:
    client.call(sys.argv[1], json.loads(sys.argv[2]))
except RpcError as exc:
    print(exc)
"""


def raw_call(agent, method: str, params: dict) -> str:
    """What the engine answers `method` from `agent` past the CLI (an MCP server, the console, a
    script): the error's words, or "" when the call succeeded."""
    proc = run_python(agent, RAW_CALL, method, json.dumps({"caller": agent.name, **params}))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout

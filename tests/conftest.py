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
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
THRUM = [str(BIN / "thrum")] if (BIN / "thrum").exists() else [sys.executable, "-m", "thrum_engine"]


def wait_for(cond, timeout: float = 20.0, what: str = "condition", interval: float = 0.05):
    """Poll `cond` until it returns something truthy (returned); fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def base_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THRUM_", "TMUX", "GIT_"))}
    env.update({
        "HOME": str(home),
        "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_CONFIG_NOSYSTEM": "1", "HISTFILE": "/dev/null", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    return env


def git(cwd: Path, *args: str, env: dict | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


def run_thrum(args: list[str], cwd: Path, env: dict, *, input: str | None = None, timeout: float = 60) -> Result:
    proc = subprocess.run(THRUM + list(args), cwd=cwd, env=env, input=input, capture_output=True, text=True,
                          timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Agent:
    name: str
    role: str
    cwd: Path
    env: dict

    def run(self, *args: str, input: str | None = None, timeout: float = 60, **env: str) -> Result:
        return run_thrum(list(args), self.cwd, {**self.env, **env}, input=input, timeout=timeout)

    def ok(self, *args: str, **kw) -> Result:
        r = self.run(*args, **kw)
        assert r.code == 0, f"thrum {' '.join(args)} failed ({r.code}): {r.err}{r.out}"
        return r

    def json(self, *args: str, **kw):
        return self.ok(*args, "--json", **kw).json


@dataclass
class Repo:
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

    def agent(self, name: str, role: str, *, module: str = "", worktree: bool = True, intent: str = "") -> Agent:
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
        self.run("daemon", "stop", timeout=30)
        if pid:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def make_repo(tmp_path_factory):
    repos: list[Repo] = []

    def make(name: str = "repo") -> Repo:
        base = tmp_path_factory.mktemp("t")
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
        repos.append(repo)
        return repo

    yield make
    for repo in repos:
        repo.stop()
        kill_tmux(repo.env["THRUM_TMUX__SOCKET_NAME"])
        shutil.rmtree(repo.path.parent, ignore_errors=True)


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

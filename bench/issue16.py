"""Shared scratch set-up for the issue-16 benches (`bench/idempotency.py`, `bench/schedules.py`):
a repo, alice and bob registered, a headless daemon on a private tmux socket, a socket client
in the repo's main checkout (the engine checks the caller's worktree by the peer's cwd)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import _cpu, env_for, pct

BIN = Path(sys.executable).parent
THRUM = [str(BIN / "thrum")] if (BIN / "thrum").exists() else [sys.executable, "-m", "thrum_engine"]

__all__ = ["Scratch", "_cpu", "pct"]


class Scratch:
    def __init__(self, prefix: str, **env: str) -> None:
        from thrum_engine.layout import Layout
        from thrum_engine.rpc.client import Client

        self.tmp = Path(tempfile.mkdtemp(prefix=f"thrum-bench-{prefix}-"))
        (self.tmp / "home").mkdir()
        self.env = env_for(self.tmp / "home")
        self.env["THRUM_TMUX__SOCKET_NAME"] = f"thrum-bench-{prefix}-{os.getpid()}"
        self.env.update(env)
        self.repo = self.tmp / "repo"
        self.repo.mkdir()
        for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]):
            subprocess.run(["git", *args], cwd=self.repo, env=self.env, check=True, capture_output=True)
        self.thrum("quickstart", "--name", "alice", "--role", "impl", name="alice")
        self.thrum("quickstart", "--name", "bob", "--role", "rev", name="bob")
        os.chdir(self.repo)
        self.client = Client(Layout(str(self.repo)).socket_path, 120).connect()

    def thrum(self, *args: str, name: str = "alice") -> str:
        r = subprocess.run(
            THRUM + list(args),
            cwd=self.repo,
            env={**self.env, "THRUM_NAME": name},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if r.returncode != 0:
            raise SystemExit(f"thrum {' '.join(args)} failed: {r.stderr}")
        return r.stdout

    def call(self, method: str, params: dict, who: str = "alice"):
        from thrum_engine.rpc.client import EngineUnavailable

        try:
            return self.client.call(method, {**params, "caller": who})
        except EngineUnavailable:  # the engine closes a connection left idle (engine.*_timeout_seconds)
            self.client.close()
            self.client.connect()
            return self.client.call(method, {**params, "caller": who})

    @property
    def pid(self) -> int:
        return json.loads((self.repo / ".thrum" / "var" / "thrum.pid").read_text())["pid"]

    def cpu(self) -> float:
        return _cpu(self.pid)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def close(self) -> None:
        self.client.close()
        os.chdir(self.tmp)
        subprocess.run(
            THRUM + ["daemon", "stop"], cwd=self.repo, env=self.env, capture_output=True, check=False
        )
        subprocess.run(
            ["tmux", "-L", self.env["THRUM_TMUX__SOCKET_NAME"], "kill-server"], capture_output=True
        )
        shutil.rmtree(self.tmp, ignore_errors=True)

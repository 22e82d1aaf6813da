"""Which tmux server the engine talks to: real tmux, on servers private to the test (their own
TMUX_TMPDIR), killed at the end."""

from __future__ import annotations

import os
import subprocess

from thrum_engine.tmux.attach import server_argv
from thrum_engine.tmux.server import Tmux


def _sessions(tmpdir, socket: str) -> list[str]:
    env = {**os.environ, "TMUX_TMPDIR": str(tmpdir)}
    env.pop("TMUX", None)
    r = subprocess.run(["tmux", "-L", socket, "ls", "-F", "#S"], env=env, capture_output=True, text=True)
    return r.stdout.split()


def test_without_a_socket_name_the_engine_uses_the_default_server_not_the_callers(tmp_path, monkeypatch):
    """A console run inside tmux made its agents' sessions on its own server ($TMUX), and the daemon
    it handed over to (which drops $TMUX) found none of them (walk A, 2): with no `tmux.socket_name`
    every host uses tmux's default server, as `tmux connect` does."""
    tmpdir = tmp_path / "tmux"
    tmpdir.mkdir(mode=0o700)
    monkeypatch.setenv("TMUX_TMPDIR", str(tmpdir))
    monkeypatch.delenv("TMUX", raising=False)
    subprocess.run(
        ["tmux", "-L", "outer", "-f", "/dev/null", "new-session", "-d", "-s", "console"], check=True
    )
    try:
        outer = tmpdir / f"tmux-{os.getuid()}" / "outer"
        monkeypatch.setenv("TMUX", f"{outer},{os.getpid()},0")  # as inside the user's tmux
        Tmux(None).cmd("new-session", "-d", "-s", "agent1")
        assert _sessions(tmpdir, "default") == ["agent1"]
        assert _sessions(tmpdir, "outer") == ["console"]
        assert server_argv(None) == ["tmux", "-L", "default"]  # where `tmux connect` looks
    finally:
        monkeypatch.delenv("TMUX", raising=False)
        for socket in ("outer", "default"):
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)

"""`thrum tmux connect` attaches a real terminal (a pane of a second tmux server) to the session."""

from __future__ import annotations

import subprocess

from conftest import BIN, kill_tmux, outer_terminal, wait_for


def test_connect_attaches_a_terminal_to_the_session(repo):
    assert repo.run("init").code == 0
    r = repo.run("tmux", "create", "s1", "--cwd", str(repo.path), "--no-agent", "--runtime", "shell")
    assert r.code == 0, r.err
    inner = repo.env["THRUM_TMUX__SOCKET_NAME"]
    outer = outer_terminal(repo, "term", f"{BIN}/thrum tmux connect s1", cwd=repo.path)
    try:
        clients = wait_for(
            lambda: subprocess.run(
                ["tmux", "-L", inner, "list-clients", "-t", "=s1"], capture_output=True, text=True
            ).stdout.strip(),
            what="a client attached to s1",
        )
        assert clients
        r = repo.run("tmux", "connect", "nosuch")
        assert r.code == 1 and "no session nosuch" in r.err
    finally:
        kill_tmux(outer)

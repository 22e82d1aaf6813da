# ruff: noqa: F811 - the tmux fixtures are imported from test_tmux and taken by name
"""Upstream's tmux behaviours (issue 12, items 3 and 7) on a private tmux server: adopting a session
Thrum did not create, plain `--no-agent` shells that run queued commands, cancel interrupting the
command in the pane, and restart snapshots around a restart."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

from conftest import assert_error
from test_tmux import (  # noqa: F401 - fixtures used by name
    PRIME,
    TmuxRepo,
    _add_preset,
    _presence,
    make_trepo,
    sock,
    tmux,
    trepo,
    wait_for,
)

# A session made by hand runs a plain shell: the machine's own rc files are not the test's (a stale
# `pyenv rehash` lock in one made every login shell here take a minute to reach its prompt).
HAND_SHELL = "bash --norc --noprofile"


def _pane_text(trepo: TmuxRepo, session: str) -> str:
    return "\n".join(trepo.json("tmux", "capture", session, "--lines", "200")["lines"])


def test_launch_waits_for_a_shell_that_has_not_read_the_line_yet(trepo, tmp_path):
    """A pane's shell still starting (rc files, a loaded machine) has not read the typed command:
    the pane shows nothing and its command is the shell. That is not a runtime that exited (it was
    told "the runtime exited" one second in): the launch waits, and primes once the runtime runs."""
    wt = trepo.repo.worktree("slow")
    trepo.ok("quickstart", "--name", "slowpoke", "--role", "impl", cwd=wt)
    os.mkfifo(tmp_path / "never")  # read with a timeout: a wait in the shell itself, with no child
    rc = tmp_path / "slowrc"
    rc.write_text(f"read -t 3 -u 9 9<>{tmp_path / 'never'}\nPS1='$ '\n")
    shell = f"bash --noprofile --rcfile {rc} -i"
    assert tmux(trepo.sock, "new-session", "-d", "-s", "slowstart", "-c", str(wt), shell).returncode == 0
    with ThreadPoolExecutor(1) as pool:
        launching = pool.submit(trepo.json, "tmux", "launch", "slowstart", "--runtime", "fake_claude")
        seen = set()
        while not launching.done():  # the team, meanwhile, never calls it exited either
            seen.add(_presence(trepo, "slowpoke"))
        r = launching.result()
    assert r["launched"] is True and r["primed"] is True, r
    assert "note" not in r, r
    assert "exited" not in seen, seen
    trepo.wait_log(PRIME["claude"])


def test_launch_adopts_a_session_made_with_plain_tmux(trepo):
    wt = trepo.repo.worktree("raw")
    trepo.ok("quickstart", "--name", "rawbie", "--role", "impl", cwd=wt)
    assert tmux(trepo.sock, "new-session", "-d", "-s", "handmade", "-c", str(wt), HAND_SHELL).returncode == 0
    assert trepo.session("handmade") is None  # not Thrum's until launched
    r = trepo.ok("tmux", "launch", "handmade", "--runtime", "fake_claude")
    assert "✓ Launched fake_claude in session handmade and primed it" in r.out
    trepo.wait_log(PRIME["claude"])
    s = trepo.session("handmade")
    assert (s["agent"], s["runtime"], s["state"]) == ("rawbie", "fake_claude", "alive")
    # streamed: what the runtime prints is seen, and the session is tagged as this repo's
    trepo.ok("tmux", "send", "handmade", "hello there")
    wait_for(lambda: "ok: hello there" in _pane_text(trepo, "handmade"), "the pane's echo")
    tags = tmux(trepo.sock, "show-options", "-t", "=handmade:", "-v", "@thrum_repo").stdout.strip()
    assert tags == str(trepo.path.resolve())
    # still known after an engine restart (discovery reads the tags)
    trepo.ok("daemon", "restart")
    assert trepo.session("handmade")["agent"] == "rawbie"


def test_a_hand_made_session_outside_the_repo_or_with_a_missing_runtime_is_not_taken(trepo, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert (
        tmux(trepo.sock, "new-session", "-d", "-s", "stray", "-c", str(outside), HAND_SHELL).returncode == 0
    )
    assert_error(trepo.run("tmux", "launch", "stray", "--runtime", "fake_claude"), "outside every worktree")
    assert trepo.session("stray") is None
    _add_preset(trepo, "ghost", {"extends": "claude", "command": ["thrum-no-such-runtime"]})
    assert (
        tmux(trepo.sock, "new-session", "-d", "-s", "inrepo", "-c", str(trepo.path), HAND_SHELL).returncode
        == 0
    )
    assert_error(trepo.run("tmux", "launch", "inrepo", "--runtime", "ghost"), "command not found")
    assert trepo.session("inrepo") is None  # refused before it was taken on


def test_no_agent_session_is_a_plain_shell_that_runs_queued_commands(trepo):
    r = trepo.ok("tmux", "create", "plain", "--cwd", str(trepo.path), "--no-agent")
    assert r.out == "✓ Session created: plain\n"
    s = trepo.session("plain")
    assert s["agent"] is None and s["runtime"] == "shell"
    assert "plain" not in trepo.agents()
    r = trepo.run("tmux", "queue", "plain", "echo queued-$((6*7))", "--wait", "--timeout", "20")
    assert r.code == 0, r.err
    assert "queued-42" in r.out and re.search(r"^✓ completed \(exit 0\) in \d+\.\ds$", r.out, re.MULTILINE), (
        r.out
    )
    # the shell exits: the session is `dead` (upstream's word), its pane kept to read
    trepo.ok("tmux", "send", "plain", "exit")
    wait_for(lambda: trepo.session("plain")["state"] == "dead", "the session to be dead")


def test_cancel_interrupts_the_running_command_in_the_pane(trepo):
    trepo.ok("tmux", "create", "busy", "--cwd", str(trepo.path), "--no-agent")
    cid = trepo.json("tmux", "queue", "busy", "sleep 300; echo never-printed")["command"]["command_id"]

    def status() -> str:
        rows = trepo.json("tmux", "queue-status", "busy")["commands"]
        return next(c["status"] for c in rows if c["command_id"] == cid)

    wait_for(lambda: status() == "running", "the command to start", last=status)
    r = trepo.json("tmux", "cancel", cid)
    assert r["command"]["status"] == "cancelled"
    # the pane itself is free again: the next command runs now, not after the sleep
    r = trepo.run("tmux", "queue", "busy", "echo after-cancel", "--wait", "--timeout", "20")
    assert r.code == 0 and "after-cancel" in r.out, r.out + r.err
    assert "never-printed" not in _pane_text(trepo, "busy").replace("echo never-printed", "")


def test_snapshot_commands_and_a_restart_carry_the_conversation_to_the_next_briefing(trepo):
    wt = trepo.repo.worktree("snapwt")
    trepo.create_and_launch("snap", name="snapper", cwd=wt)
    snapshot = wt / ".thrum" / "restart" / "snapper.md"
    trepo.ok("tmux", "send", "snap", "remember the blue widget")
    wait_for(lambda: "ok: remember the blue widget" in _pane_text(trepo, "snap"), "the pane's answer")

    # by hand: save, check, restore (which consumes it)
    r = trepo.run("tmux", "snapshot", "check", cwd=wt)
    assert (r.code, r.out) == (1, "No restart snapshot for snapper.\n")
    r = trepo.ok("tmux", "snapshot", "save", "--reason", "context is full", cwd=wt)
    assert re.fullmatch(r"✓ Restart snapshot saved for snapper \(\d+ lines\)\n", r.out), r.out
    assert (snapshot.stat().st_mode & 0o777) == 0o600
    assert trepo.run("tmux", "snapshot", "check", cwd=wt).code == 0
    text = trepo.ok("tmux", "snapshot", "restore", cwd=wt).out
    assert (
        "reason: context is full" in text and "remember the blue widget" in text and "## Resume plan" in text
    )
    assert not snapshot.exists() and trepo.run("tmux", "snapshot", "check", cwd=wt).code == 1
    assert_error(trepo.run("tmux", "snapshot", "restore", cwd=wt), "no restart snapshot for @snapper")

    # a restart keeps the conversation: written from the pane before it goes
    trepo.wait_state("snap", "idle")  # (a working pane needs --force)
    r = trepo.ok("tmux", "restart", "snap")
    assert "✓ Session snap restarted" in r.out
    assert snapshot.exists() and "remember the blue widget" in snapshot.read_text()
    trepo.wait_state("snap", "idle")
    # the next briefing hands it over once
    trepo.ok("tmux", "send", "snap", "run prime")
    wait_for(lambda: not snapshot.exists(), "the briefing to consume the snapshot")
    wait_for(lambda: "Restart snapshot (your previous session)" in _pane_text(trepo, "snap"), "the briefing")
    assert "Restart snapshot" not in trepo.ok("prime", cwd=wt).out

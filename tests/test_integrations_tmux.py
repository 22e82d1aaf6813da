"""A launch through real tmux (private socket) of a runtime installed by Thrum, with a fake binary
named like the real one (`claude`) on the PATH: what `tmux launch` types is the command the
installed skill defines, and the runtime's installed SessionStart hook briefs it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import wait_for
from fake_agent import install_fake
from thrum_engine.integrations.doctor import front_matter

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
FAKE_AGENT = Path(__file__).resolve().with_name("fake_agent.py")


def test_launch_types_the_prime_the_installed_skill_defines(make_repo, tmp_path):
    repo = make_repo()
    log = tmp_path / "claude.log"
    bindir = install_fake(str(tmp_path / "bin"), "claude", "claude", str(log))
    repo.env["PATH"] = f"{bindir}{os.pathsep}{repo.env['PATH']}"
    alice = repo.agent("alice", "implementer", module="auth")
    r = repo.json("tmux", "create", "alice", "--cwd", str(alice.cwd), "--name", "alice", "--role", "implementer", "--module", "auth",
                  "--runtime", "claude")  # fmt: skip
    assert r["session"]["name"] == "alice"
    skill = alice.cwd / ".claude/skills/thrum-prime/SKILL.md"
    command = "/" + (front_matter(skill.read_text()) or {})["name"]
    assert (alice.cwd / ".claude/settings.json").exists()

    launched = repo.json("tmux", "launch", "alice", timeout=120)
    assert launched["launched"] and launched["primed"], launched
    typed = wait_for(lambda: log.exists() and command in log.read_text().splitlines(), 30, f"{command} typed")
    assert typed
    assert log.read_text().splitlines()[0] == command  # the first thing typed is the installed command
    hooks = [json.loads(ln) for ln in Path(str(log) + ".hooks").read_text().splitlines()]
    assert hooks[0]["event"] == "SessionStart"
    assert "# You are @alice (implementer/auth)" in hooks[0]["context"][0]
    member = {m["name"]: m for m in repo.json("team", "--all")["members"]}["alice"]
    assert member["hooks"]["events"]["session-start"]["runtime"] == "claude"

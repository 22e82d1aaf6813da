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


def test_launch_leaves_the_prime_to_the_installed_session_start_hook(make_repo, tmp_path):
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
    # RUNTIMES.md: the prime is skipped when the SessionStart hook primes (it briefed the agent).
    assert launched["launched"] and launched["primed"] and launched["primed_by"] == "hook", launched
    hooks = [json.loads(ln) for ln in Path(str(log) + ".hooks").read_text().splitlines()]
    assert hooks[0]["event"] == "SessionStart"
    assert "# You are @alice (implementer/auth)" in hooks[0]["context"][0]
    member = {m["name"]: m for m in repo.json("team", "--all")["members"]}["alice"]
    assert member["hooks"]["events"]["session-start"]["runtime"] == "claude"
    assert command not in _typed(log)  # not briefed twice (walk, session 21)

    # (A runtime whose hooks did not brief it gets the command typed: test_tmux's fake presets.)


@pytest.mark.parametrize(("runtime", "binary"), [("gemini", "gemini"), ("cursor", "agent")])
def test_a_runtime_whose_session_start_hook_briefed_is_not_typed_the_prime(
    make_repo, tmp_path, runtime, binary
):
    """Runtimes walk (session 22): Gemini and Cursor were typed the prime after their SessionStart
    hook had put the briefing in context (only Claude's was trusted to), so they read it twice."""
    repo = make_repo()
    log = _fake_on_path(repo, tmp_path, binary, runtime)
    alice = repo.agent("alice", "implementer")
    repo.ok("tmux", "create", "alice", "--cwd", str(alice.cwd), "--name", "alice", "--runtime", runtime)
    launched = repo.json("tmux", "launch", "alice", timeout=120)
    assert launched["primed"] and launched["primed_by"] == "hook", launched
    hooks = [json.loads(ln) for ln in Path(str(log) + ".hooks").read_text().splitlines()]
    assert "# You are @alice" in hooks[0]["context"][0]
    assert not [ln for ln in _typed(log) if "prime" in ln], _typed(log)


def test_codex_is_typed_the_prime_and_told_to_skip_it_once_its_hook_briefed(make_repo, tmp_path):
    """Codex runs SessionStart with the first turn, which is the typed prime's: the launch cannot
    see the hook brief, so the prime is typed, and its skill says not to brief again."""
    repo = make_repo()
    log = _fake_on_path(repo, tmp_path, "codex", "codex")
    alice = repo.agent("alice", "implementer")
    repo.ok("tmux", "create", "alice", "--cwd", str(alice.cwd), "--name", "alice", "--runtime", "codex")
    launched = repo.json("tmux", "launch", "alice", timeout=120)
    assert launched["primed"] and launched.get("primed_by") != "hook", launched
    wait_for(lambda: Path(str(log) + ".hooks").exists(), 30, "the first turn's hooks")
    hooks = [json.loads(ln) for ln in Path(str(log) + ".hooks").read_text().splitlines()]
    assert hooks[0]["event"] == "SessionStart" and "# You are @alice" in hooks[0]["context"][0]
    skill = (alice.cwd / ".agents/skills/thrum-prime/SKILL.md").read_text()
    assert "already holds that briefing" in skill and "`# You are @`" in skill


def _fake_on_path(repo, tmp_path: Path, binary: str, style: str) -> Path:
    """A fake `binary` (the real runtime's name) on the repo's PATH, logging to the returned file."""
    log = tmp_path / f"{binary}.log"
    bindir = install_fake(str(tmp_path / "bin"), binary, style, str(log))
    if bindir not in repo.env["PATH"].split(os.pathsep):
        repo.env["PATH"] = f"{bindir}{os.pathsep}{repo.env['PATH']}"
    return log


def _typed(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_worktree_create_without_runtime_installs_the_default_runtimes_files(make_repo, tmp_path):
    """walkC A1: the session of `worktree create W --name A` runs the default runtime (claude), so
    its skill, hooks and MCP entry go in too, and `tmux launch` types a command that exists."""
    repo = make_repo()
    log = _fake_on_path(repo, tmp_path, "claude", "claude")
    repo.ok("init", "--non-interactive")
    r = repo.json("worktree", "create", "w1", "--name", "alice", "--role", "impl")
    wt = Path(r["path"])
    assert r["session"]["runtime"] == "claude"
    for rel in (".claude/skills/thrum-prime/SKILL.md", ".claude/settings.json", ".mcp.json", "CLAUDE.md"):
        assert (wt / rel).is_file(), rel
    doctor = repo.run("doctor", "integrations", cwd=wt)
    for part in ("prime", "hooks", "mcp"):
        assert f"✓ claude {part}:" in doctor.out, doctor.out

    launched = repo.json("tmux", "launch", "alice", timeout=120)
    assert launched["primed"] and launched["primed_by"] == "hook", launched
    hooks = [json.loads(ln) for ln in Path(str(log) + ".hooks").read_text().splitlines()]
    assert hooks[0]["event"] == "SessionStart" and "@alice" in hooks[0]["context"][0]
    assert not [ln for ln in _typed(log) if ln.startswith("unknown command")], _typed(log)


def test_launch_with_another_runtime_installs_that_runtimes_files_first(make_repo, tmp_path):
    """walkC A1, the launch path: a session made for one runtime and launched with another gets the
    other's files before its prime command is typed."""
    repo = make_repo()
    log = _fake_on_path(repo, tmp_path, "codex", "codex")
    alice = repo.agent("alice", "implementer")
    repo.ok("tmux", "create", "alice", "--cwd", str(alice.cwd), "--name", "alice", "--runtime", "shell")
    assert not (alice.cwd / ".agents/skills/thrum-prime/SKILL.md").exists()

    launched = repo.json("tmux", "launch", "alice", "--runtime", "codex", timeout=120)
    assert launched["primed"], launched
    assert (alice.cwd / ".agents/skills/thrum-prime/SKILL.md").is_file()
    assert (alice.cwd / ".codex/hooks.json").is_file()
    wait_for(lambda: "$thrum-prime" in _typed(log), 30, "$thrum-prime typed")  # RUNTIMES.md: typed
    assert not [ln for ln in _typed(log) if ln.startswith("unknown command")], _typed(log)

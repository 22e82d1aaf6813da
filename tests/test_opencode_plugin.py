"""OpenCode's hooks are Thrum's plugin `.opencode/plugins/thrum.js`. These tests run exactly the
installed file the way OpenCode 2.x does: tests/fake_agent.py (`--style opencode`) starts
tests/opencode_host.mjs under node, which discovers the plugin in the worktree, checks its default
export, runs `setup(ctx)` and plays session.created, each turn's model request, the turn's end and a
compaction at it, against a real engine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import wait_for
from fake_agent import install_fake
from test_integrations import run_fake
from thrum_engine.integrations.entries import PRIME_FILE

HOST = Path(__file__).resolve().with_name("opencode_host.mjs")

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node runs the OpenCode plugin host")


@pytest.mark.parametrize("hook_name", ["context", "request"])
def test_plugin_briefs_adds_mail_blocks_and_is_recorded(repo, hook_name, monkeypatch):
    monkeypatch.setenv("FAKE_OPENCODE_HOOK_NAME", hook_name)
    alice = repo.agent("alice", "implementer", module="auth")
    bob = repo.agent("bob", "reviewer")
    alice.ok(
        "quickstart", "--name", "alice", "--role", "implementer", "--module", "auth", "--runtime", "opencode"
    )
    assert (alice.cwd / ".opencode/plugins/thrum.js").is_file()
    bob.ok("send", "first: the API changed", "--to", "@alice")
    alice.env["FAKE_OPENCODE_HOOK_NAME"] = hook_name
    records = run_fake(
        alice,
        "opencode",
        ["hello", "exit"],
        before_prompt=lambda: bob.ok("send", "second: please look at auth/login.py", "--to", "@alice"),
    )
    assert all(not r.get("errors") for r in records), records
    start, prompt, stop1 = records[0], records[1], records[2]
    assert start["plugins"] == ["thrum"] and start["event"] == "session.created"
    briefing, mail = prompt["context"]  # both in the first request's system prompt
    assert "# You are @alice (implementer/auth)" in briefing and "first: the API changed" in briefing
    assert "second: please look at auth/login.py" in mail and "first" not in mail
    # The prompt showed the mail already: the turn's end does not show it again (no queued prompt).
    assert not stop1["block"]
    stops = [r for r in records if r["moment"] == "stop"]
    assert [bool(r["block"]) for r in stops] == [False]
    member = {m["name"]: m for m in repo.json("team", "--all")["members"]}["alice"]
    assert member["hooks"]["runtime"] == "opencode"
    assert set(member["hooks"]["events"]) == {"session-start", "prompt-submit", "stop"}
    # The turn's end is reported three ways (execution, status, the deprecated idle): one stop.
    assert member["hooks"]["events"]["stop"]["count"] == 1
    assert member["hooks"]["events"]["session-start"]["count"] == 1
    doc = repo.run("doctor", "integrations", "--agent", "alice", "--json").json
    mine = [c for c in doc["checks"] if c["runtime"] == "opencode"]
    assert all(c["ok"] for c in mine if c["check"] in ("hooks", "hooks fired")), mine
    assert {c["check"] for c in mine} >= {"hooks", "hooks fired"}


def test_plugin_saves_context_before_compaction_and_briefs_again(repo):
    alice = repo.agent("alice", "implementer")
    alice.ok("session", "set-intent", "refactor the login flow")
    alice.ok("init", "--runtime", "opencode", "--non-interactive")
    records = run_fake(alice, "opencode", ["hello", "compact", "after", "exit"])
    after = [r for r in records if r["moment"] == "prompt"][-1]
    assert "Before the last compaction" in after["context"][0]
    assert "refactor the login flow" in after["context"][0]


def test_plugin_with_engine_down_adds_nothing_and_never_fails_a_request(repo):
    alice = repo.agent("alice", "implementer")
    alice.ok("init", "--runtime", "opencode", "--non-interactive")
    repo.stop()
    records = run_fake(alice, "opencode", ["hello", "exit"])
    assert all(not r.get("errors") for r in records), records
    assert all(r["context"] == [] for r in records if r["moment"] == "prompt")
    assert all(not r["block"] for r in records)


def test_the_host_refuses_a_1x_plugin_as_opencode_2_does(tmp_path):
    plugins = tmp_path / ".opencode/plugins"
    plugins.mkdir(parents=True)
    (plugins / "old.js").write_text("export const Old = async () => ({ event: async () => {} })\n")
    proc = subprocess.run(
        ["node", str(HOST), "--project", str(tmp_path)], input="", capture_output=True, text=True, timeout=30
    )
    hello = json.loads(proc.stdout.splitlines()[0])
    assert not hello["ok"] and "must export a default definition with an id" in hello["error"]


def test_installed_plugin_parses_as_an_es_module(repo):
    repo.ok("init", "--runtime", "opencode", "--non-interactive", "--no-daemon")
    plugin = repo.path / ".opencode/plugins/thrum.js"
    text = plugin.read_text()
    assert "__THRUM_ARGV__" not in text and "hook" in text
    proc = subprocess.run(
        ["node", "--input-type=module", "--check"], input=text, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr


def test_plugin_falls_back_to_the_thrum_on_path_when_its_own_is_gone(repo):
    """The plugin names the thrum that installed it (a background OpenCode service may lack the pane's
    PATH); copied to a machine where that path does not exist, it runs the `thrum` on the PATH."""
    alice = repo.agent("alice", "implementer")
    alice.ok("init", "--runtime", "opencode", "--non-interactive")
    plugin = alice.cwd / ".opencode/plugins/thrum.js"
    text = plugin.read_text()
    head = next(ln for ln in text.splitlines() if ln.startswith("const THRUM = "))
    plugin.write_text(text.replace(head, 'const THRUM = ["/nonexistent/bin/thrum"]'))
    assert shutil.which("thrum", path=alice.env["PATH"]), "the test needs thrum on the agent's PATH"
    records = run_fake(alice, "opencode", ["hello", "exit"])
    first = next(r for r in records if r["moment"] == "prompt")
    assert first["context"] and "# You are @alice" in first["context"][0]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_tmux_launch_types_the_installed_command_and_the_plugin_briefs_it(make_repo, tmp_path):
    """A fake `opencode` on the PATH, launched by `thrum tmux launch` in real tmux: the first thing
    typed is the command the installed .opencode/commands file defines, and that first prompt's
    request carries the plugin's briefing."""
    repo = make_repo()
    log = tmp_path / "opencode.log"
    bindir = install_fake(str(tmp_path / "bin"), "opencode", "opencode", str(log))
    repo.env["PATH"] = f"{bindir}{os.pathsep}{repo.env['PATH']}"
    alice = repo.agent("alice", "implementer", module="auth")
    repo.ok("tmux", "create", "alice", "--cwd", str(alice.cwd), "--name", "alice", "--role", "implementer",
            "--module", "auth", "--runtime", "opencode")  # fmt: skip
    command = "/" + (alice.cwd / PRIME_FILE["opencode"]).stem
    assert (alice.cwd / ".opencode/plugins/thrum.js").is_file()
    launched = repo.json("tmux", "launch", "alice", timeout=120)
    assert launched["launched"] and launched["primed"], launched
    wait_for(lambda: log.exists() and command in log.read_text().splitlines(), 30, f"{command} typed")
    assert log.read_text().splitlines()[0] == command
    hooks_log = Path(str(log) + ".hooks")
    wait_for(
        lambda: hooks_log.exists() and len(hooks_log.read_text().splitlines()) >= 2, 30, "the first turn"
    )
    records = [json.loads(ln) for ln in hooks_log.read_text().splitlines()]
    first = next(r for r in records if r["moment"] == "prompt")
    assert "# You are @alice (implementer/auth)" in first["context"][0]

"""Scripts, hooks and prompts written for the Go Thrum work unchanged (issue 12): the identity fields
hooks read, THRUM_HOME, a note to yourself, settings that follow config.json, and the words and
JSON shapes those scripts grep, as golden outputs."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from conftest import assert_error, run_thrum

ULID = r"[0-9A-Z]{26}"


# -- whoami --field (item 4) ------------------------------------------------------------------------------


def test_every_whoami_field_answers_and_unset_ones_are_empty(pair):
    _, alice, _ = pair
    for field in ("tmux_session", "runtime", "agent_status", "agent_status_updated_at", "preferred_runtime"):
        r = alice.run("whoami", "--field", field)
        assert (r.code, r.out, r.err) == (0, "\n", ""), field
    assert alice.ok("whoami", "--field", "branch").out == "feature/alice\n"
    assert alice.ok("whoami", "--field", "name").out == "alice\n"
    assert alice.ok("whoami", "--field", "role").out == "implementer\n"
    assert alice.ok("whoami", "--field", "module").out == "auth\n"
    assert alice.ok("whoami", "--field", "agent_id").out == "alice\n"
    assert Path(alice.ok("whoami", "--field", "worktree").out.strip()) == alice.cwd.resolve()
    assert alice.ok("whoami", "--field", "session_id").out.startswith("ses_")
    doc = alice.json("whoami")
    assert doc["branch"] == "feature/alice"
    for key in ("tmux_session", "agent_status", "preferred_runtime", "agent_status_updated_at"):
        assert doc[key] == ""
    assert_error(alice.run("whoami", "--field", "nonsense"), "unknown field 'nonsense'", "tmux_session")


def test_set_status_lines_and_the_identity_file_records_status(pair):
    repo, alice, bob = pair
    r = alice.ok("agent", "set-status", "blocked")
    assert r.out == "✓ Status set to blocked\n"
    assert alice.ok("whoami", "--field", "agent_status").out == "blocked\n"
    stamp = alice.ok("whoami", "--field", "agent_status_updated_at").out.strip()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", stamp)
    record = json.loads((alice.cwd / ".thrum" / "identities" / "alice.json").read_text())
    assert (record["agent_status"], record["agent_status_updated_at"]) == ("blocked", stamp)
    assert {"preferred_runtime", "agent_status", "agent_status_updated_at"} <= set(record)
    # the operator sets someone else's status: upstream's second form
    ops = repo.agent("ops", "operator", worktree=False)
    assert ops.ok("agent", "set-status", "idle", "--agent", "bob").out == "✓ Status for bob set to idle\n"
    assert bob.ok("whoami", "--field", "agent_status").out == "idle\n"  # recorded in bob's file too


# -- THRUM_HOME (item 5) ----------------------------------------------------------------------------------


def test_thrum_home_is_the_directory_that_contains_dot_thrum(pair, tmp_path):
    repo, alice, _ = pair
    elsewhere = tmp_path / "not-a-repo"
    elsewhere.mkdir()
    env = {**alice.env, "THRUM_HOME": str(repo.path)}
    # from outside every checkout, THRUM_HOME pins the repo: its engine, its agents
    r = run_thrum(["team", "--json"], elsewhere, env)
    assert r.code == 0, r.err
    assert {m["name"] for m in r.json["members"]} >= {"alice", "bob"}
    # inside one of the repo's worktrees the cwd keeps its identity
    assert run_thrum(["whoami", "--field", "name"], alice.cwd, env).out == "alice\n"
    # a worktree root works too
    r = run_thrum(["team", "--json"], elsewhere, {**alice.env, "THRUM_HOME": str(alice.cwd)})
    assert r.code == 0, r.err

    state_files = sorted(p.name for p in (repo.path / ".thrum").iterdir())
    for bad, words in (
        (repo.path / ".thrum", ["is a .thrum folder", str(repo.path.resolve())]),
        (elsewhere, ["is not a repository or worktree root"]),
        (tmp_path / "missing", ["is not a repository or worktree root"]),
    ):
        r = run_thrum(["team"], elsewhere, {**alice.env, "THRUM_HOME": str(bad)})
        assert_error(r, "THRUM_HOME=", *words)
        r = run_thrum(["send", "hi", "--to", "@bob"], alice.cwd, {**alice.env, "THRUM_HOME": str(bad)})
        assert_error(r, "THRUM_HOME=")
    # nothing second was made: no store inside .thrum/.thrum, no engine for the bad paths
    assert (
        not (repo.path / ".thrum" / ".thrum").exists() and not (repo.path / ".thrum" / "var" / "var").exists()
    )
    assert not (elsewhere / "var").exists() and not (elsewhere / ".thrum").exists()
    assert sorted(p.name for p in (repo.path / ".thrum").iterdir()) == state_files


# -- a note to yourself (item 9) --------------------------------------------------------------------------


def test_send_to_me_is_a_note_in_my_own_inbox(pair):
    _, alice, bob = pair
    r = alice.ok("send", "remember the migration", "--to", "@me", "--json")
    note = r.json["message_id"]
    assert r.json["recipients"] == ["alice"]
    r = alice.ok("send", "and the docs", "--to", "@alice")
    assert r.out.startswith("✓ Message sent: msg_") and "→ @alice" in r.out
    inbox = alice.json("inbox", "--unread")
    assert [m["body"]["content"] for m in inbox["messages"]] == ["and the docs", "remember the migration"]
    assert inbox["messages"][1]["message_id"] == note and inbox["messages"][1]["agent_id"] == "alice"
    assert bob.json("inbox")["messages"] == []  # nobody else got it
    # a note never wakes its author: `wait` does not return it
    r = alice.run("send", "x", "--to", "@me")
    assert r.code == 0
    assert alice.run("wait", "--timeout", "1s", "--after", "-1m").code == 1
    # @me with someone else: both get it
    r = alice.json("send", "both", "--to", "@me", "--to", "@bob")
    assert sorted(r["recipients"]) == ["alice", "bob"]


# -- worktree create (item 8), live settings (item 2) -----------------------------------------------------


def test_worktree_create_makes_identities_and_context_and_follows_a_live_base_path_edit(repo, tmp_path):
    repo.ok("init", "--non-interactive", "--no-daemon")
    first = tmp_path / "wts-a"
    second = tmp_path / "wts-b"
    config = repo.path / ".thrum" / "config.json"

    def set_base(path: Path) -> None:
        data = json.loads(config.read_text())
        data.setdefault("worktrees", {})["base_path"] = str(path)
        config.write_text(json.dumps(data))

    set_base(first)
    r = repo.ok("worktree", "create", "one")
    where = first / repo.path.name / "one"
    assert r.out.splitlines()[0] == f"✓ Worktree created at {where}"
    for sub in ("identities", "context"):
        d = where / ".thrum" / sub
        assert d.is_dir() and (d.stat().st_mode & 0o777) == 0o700
    # the engine is running: an edit takes effect on the next command, no restart
    pid = repo.daemon_pid()
    time.sleep(0.01)
    set_base(second)
    r = repo.ok("worktree", "create", "two")
    assert r.out.splitlines()[0] == f"✓ Worktree created at {second / repo.path.name / 'two'}"
    assert repo.daemon_pid() == pid
    # a file that no longer parses: the last good settings stay, and the error is reported
    config.write_text('{"worktrees": {"base_path": ')
    r = repo.ok("worktree", "create", "three")
    assert r.out.splitlines()[0] == f"✓ Worktree created at {second / repo.path.name / 'three'}"
    st = repo.ok("daemon", "status", "--json").json
    assert (
        "not valid JSON" in st["settings_error"] and "keeping the last good settings" in st["settings_error"]
    )
    assert "! settings:" in repo.ok("daemon", "status").out
    # a value the schema refuses is the same
    config.write_text(json.dumps({"presence": {"idle_after_seconds": "soon"}}))
    repo.ok("team")
    assert "idle_after_seconds" in repo.ok("daemon", "status", "--json").json["settings_error"]
    config.write_text(json.dumps({"worktrees": {"base_path": str(first)}}))  # good again: applied
    r = repo.ok("worktree", "create", "four")
    assert r.out.splitlines()[0] == f"✓ Worktree created at {first / repo.path.name / 'four'}"
    assert "settings_error" not in repo.ok("daemon", "status", "--json").json


def test_a_setting_only_a_start_takes_up_is_reported_until_a_restart(tmp_path, monkeypatch):
    """Walk (session 18): `tmux.socket_name` edited while the engine ran was shown by `config show`
    and silently ignored (new sessions went to the old server). The live settings say which
    changed settings wait for a restart; `daemon status` prints them."""
    from thrum_engine.settings import load_settings
    from thrum_engine.settings_live import LiveSettings

    monkeypatch.delenv("THRUM_TMUX__SOCKET_NAME", raising=False)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"tmux": {"socket_name": "first"}}))
    live = LiveSettings(str(config), load_settings(str(config)))
    time.sleep(0.01)
    config.write_text(json.dumps({"tmux": {"socket_name": "second"}, "presence": {"idle_after_seconds": 5}}))
    assert live.check() is not None
    assert live.view()["restart_needed"] == ["tmux.socket_name"]
    time.sleep(0.01)
    config.write_text(json.dumps({"tmux": {"socket_name": "first"}}))  # back as it started
    live._looked_at = float("-inf")
    assert live.check() is not None and live.view()["restart_needed"] == []


def test_worktree_teardown_lines(repo, tmp_path):
    repo.ok("init", "--non-interactive", "--no-daemon")
    config = repo.path / ".thrum" / "config.json"
    data = json.loads(config.read_text())
    data["worktrees"] = {"base_path": str(tmp_path / "wts")}
    config.write_text(json.dumps(data))
    repo.ok("worktree", "create", "gone", "--name", "gone_agent", "--role", "dev", "--runtime", "shell")
    r = repo.ok("worktree", "teardown", "gone", "--force")
    lines = r.out.splitlines()
    assert "✓ Worktree gone removed" in lines
    assert "Removed identity: gone_agent" in lines


# -- JSON shapes scripts parse (item 6) -------------------------------------------------------------------


def test_config_show_json_has_runtime_primary(repo):
    repo.ok("init", "--non-interactive", "--no-daemon")
    doc = repo.json("config", "show")
    assert doc["runtime"] == {"primary": "claude"} and doc["config"]["runtime"]["primary"] == "claude"
    repo.ok("runtime", "set-default", "codex")
    assert repo.json("config", "show")["runtime"]["primary"] == "codex"
    on_disk = json.loads((repo.path / ".thrum" / "config.json").read_text())
    assert on_disk["runtime"]["primary"] == on_disk["runtimes"]["default"] == "codex", on_disk  # walk C, C7


def test_monitor_json_shapes_and_stop_line(pair):
    _, alice, _ = pair
    log = alice.cwd / "ci.log"
    log.write_text("")
    r = alice.ok(
        "monitor", "watch-file", "--name", "CI_Build", "--path", str(log), "--match", "FAIL", "--to", "@bob"
    )
    found = re.search(r"mon_" + ULID, r.out)
    assert found, r.out
    mon_id = found.group(0)
    listing = alice.json("monitor", "list")
    assert isinstance(listing, list) and [m["name"] for m in listing] == ["CI_Build"]
    assert listing[0]["target"] == "@bob" or listing[0]["target"] == "bob"
    shown = alice.json("monitor", "show", "CI_Build")
    assert shown["id"] == mon_id and shown["name"] == "CI_Build" and shown["target"] == listing[0]["target"]
    assert alice.ok("monitor", "stop", "CI_Build").out == f"✓ Stopped monitor CI_Build ({mon_id})\n"
    assert alice.json("monitor", "list") == []
    assert [m["name"] for m in alice.json("monitor", "list", "--all")] == ["CI_Build"]


# -- missing commands (item 7) ----------------------------------------------------------------------------


def test_context_show_session_and_project(pair):
    repo, alice, _ = pair
    r = alice.ok("context", "show", "--session", "--no-preamble")
    assert r.out == "No context saved for alice\n"
    alice.ok("context", "save", input="working on the parser\n")
    r = alice.ok("context", "show", "--session", "--no-preamble")
    head, _, body = r.out.partition("\n\n")
    assert re.fullmatch(r"# Context for alice \(22 bytes, updated \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)", head)
    assert body == "working on the parser\n"
    assert alice.ok("context", "show", "--project").out == (
        "No project state found (.thrum/context/project_state.md)\n"
    )
    (repo.path / ".thrum" / "context" / "project_state.md").write_text("release 1.2 in progress\n")
    assert alice.ok("context", "show", "--project").out == "release 1.2 in progress\n"
    assert_error(alice.run("context", "show", "--session", "--project"), "mutually exclusive")


def test_context_sync_commits_my_context_to_the_sync_branch(pair):
    repo, alice, _ = pair
    assert alice.ok("context", "sync").out == "No context file for alice, nothing to sync.\n"
    alice.ok("context", "save", input="state of play\n")
    r = alice.ok("context", "sync")
    assert r.out.startswith("✓ Context synced for alice on a-sync")
    shown = repo.git("show", "a-sync:context/alice.md")
    assert shown == "state of play"
    assert repo.git("log", "-1", "--format=%s", "a-sync") == "context: sync alice"
    assert "(unchanged)" in alice.ok("context", "sync").out
    assert_error(alice.run("context", "sync", "--agent", "bob"), "only the operator")


def test_single_agent_mode_is_stored_where_upstream_keeps_it_and_the_briefing_follows(pair):
    repo, alice, _ = pair
    assert alice.ok("single-agent-mode").out == "Single-agent mode: false\n"
    assert "## Team" in alice.ok("prime").out
    assert alice.ok("single-agent-mode", "true").out == "✓ Single-agent mode set to true\n"
    config = json.loads((repo.path / ".thrum" / "config.json").read_text())
    assert config["daemon"]["single_agent_mode"] is True
    assert alice.json("single-agent-mode") == {"single_agent_mode": True}
    briefing = alice.ok("prime").out  # the engine follows the file live: no restart
    assert "## Team" not in briefing and "Single-agent mode" in briefing
    alice.ok("single-agent-mode", "false")
    assert "## Team" in alice.ok("prime").out
    assert_error(alice.run("single-agent-mode", "maybe"), "use true or false")


# -- `--user` installs (into the home, only when asked) ---------------------------------------------------


def test_init_user_writes_the_runtime_files_into_the_home_only_when_asked(repo):
    home = Path(repo.env["HOME"])
    r = repo.ok("init", "--non-interactive", "--no-daemon", "--runtime", "claude")
    assert not (home / ".claude").exists() and (repo.path / ".claude" / "settings.json").exists()
    r = repo.ok("init", "--non-interactive", "--no-daemon", "--runtime", "claude,codex,gemini", "--user")
    assert "~/.claude/settings.json" in r.out and "~/.codex/AGENTS.md" in r.out
    settings = json.loads((home / ".claude" / "settings.json").read_text())
    command = settings["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"]
    assert command.endswith("hook prompt-submit --runtime claude")
    assert "## Thrum" in (home / ".claude" / "CLAUDE.md").read_text()
    assert (home / ".claude" / "skills" / "thrum-prime" / "SKILL.md").is_file()
    assert "## Thrum" in (home / ".codex" / "AGENTS.md").read_text()
    assert (home / ".gemini" / "settings.json").is_file() and (home / ".gemini" / "GEMINI.md").is_file()
    assert not (home / "CLAUDE.md").exists() and not (home / "AGENTS.md").exists()
    # the user-level hook is harmless outside a Thrum repo: it answers nothing, exit 0
    outside = home / "elsewhere"
    outside.mkdir()
    payload = json.dumps({"session_id": "s", "cwd": str(outside), "prompt": "hi"})
    proc = subprocess.run(
        ["/bin/sh", "-c", command], input=payload, cwd=outside, env=repo.env, capture_output=True, text=True
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    # idempotent; cursor's rules have no user-level file (a note, not an error); unknown ones refused
    again = repo.ok("init", "--non-interactive", "--no-daemon", "--runtime", "claude", "--user")
    assert "are in place (nothing to change)" in again.out
    r = repo.ok("init", "--non-interactive", "--no-daemon", "--runtime", "cursor", "--user")
    assert "Cursor keeps user rules in its settings" in r.out and (home / ".cursor" / "hooks.json").is_file()
    assert_error(repo.run("init", "--non-interactive", "--no-daemon", "--runtime", "amp", "--user"), "--user")
    assert_error(repo.run("init", "--non-interactive", "--no-daemon", "--user"), "--runtime")

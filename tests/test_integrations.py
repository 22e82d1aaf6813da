"""Runtimes wired in their own formats: `init --runtime R` in a fresh real repo writes files each
runtime's real parser reads, a re-run changes no byte, the user's entries survive, a broken file is
refused untouched, --stealth keeps git status clean, --dry-run writes nothing. Then the hooks end to
end: tests/fake_agent.py reads the hook file installed for its runtime and runs it the way that
runtime does (stdin JSON, timeout unit, matcher), against a real engine."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from conftest import RAW_CALL, assert_error, run_python, wait_for, worktree_agent
from fake_agent import START_AT_FIRST_TURN
from thrum_engine.integrations.doctor import front_matter
from thrum_engine.integrations.entries import PRIME, PRIME_FILE, RUNTIMES

FAKE_AGENT = Path(__file__).resolve().with_name("fake_agent.py")
HOOK_STYLES = ("claude", "codex", "gemini", "cursor")


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` but .git and .thrum, by content hash."""
    out = {}
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".thrum")]
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def parse(path: Path):
    """A written file through the real parser of its format."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    if path.suffix == ".toml":
        return tomllib.loads(text)
    if path.suffix in (".md", ".mdc") and text.startswith("---\n"):
        fm = front_matter(text)
        assert fm is not None, f"{path}: front matter does not close"
        return fm
    return text


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_init_runtime_writes_parsable_files_and_rerun_is_byte_identical(repo, runtime):
    r = repo.json("init", "--runtime", runtime, "--non-interactive", "--no-daemon")
    files = [f["path"] for f in r["integrations"]["files"]]
    assert files, r
    for rel in files:
        parse(repo.path / rel)
    if PRIME_FILE[runtime]:
        prime = repo.path / PRIME_FILE[runtime]
        doc = parse(prime)
        if runtime == "gemini":  # .gemini/commands/thrum/prime.toml is /thrum:prime
            assert doc["prompt"].strip() and PRIME[runtime] == "/thrum:prime"
        elif runtime in ("claude", "codex"):  # skills: invoked by their name
            assert doc["name"] == "thrum-prime" and PRIME[runtime][1:] == doc["name"]
        else:  # command files: /<file name>
            assert PRIME[runtime] == "/" + prime.stem
        assert "thrum prime" in prime.read_text()
    before = snapshot(repo.path)
    again = repo.json("init", "--runtime", runtime, "--non-interactive", "--no-daemon")
    assert all(f["action"] == "keep" for f in again["integrations"]["files"])
    assert snapshot(repo.path) == before


def test_claude_hooks_and_instructions_are_what_claude_reads(repo):
    repo.ok("init", "--runtime", "claude", "--non-interactive", "--no-daemon")
    settings = json.loads((repo.path / ".claude/settings.json").read_text())
    start = settings["hooks"]["SessionStart"][0]
    assert start["matcher"] == "startup|resume|clear|compact"
    assert start["hooks"][0]["command"].endswith("hook session-start --runtime claude")
    assert isinstance(start["hooks"][0]["timeout"], int) and start["hooks"][0]["timeout"] <= 60  # seconds
    assert set(settings["hooks"]) == {"SessionStart", "UserPromptSubmit", "Stop", "PreCompact"}
    claude_md = (repo.path / "CLAUDE.md").read_text()
    assert "<!-- thrum:begin" in claude_md and "thrum prime" in claude_md
    gem = repo.path / ".gemini/settings.json"
    assert not gem.exists()


def test_gemini_timeouts_are_milliseconds_and_cursor_events_camel_case(repo):
    repo.ok("init", "--runtime", "gemini,cursor", "--non-interactive", "--no-daemon")
    gem = json.loads((repo.path / ".gemini/settings.json").read_text())
    assert set(gem["hooks"]) == {"SessionStart", "BeforeAgent", "AfterAgent", "PreCompress"}
    assert gem["hooks"]["BeforeAgent"][0]["hooks"][0]["timeout"] >= 1000
    cur = json.loads((repo.path / ".cursor/hooks.json").read_text())
    assert cur["version"] == 1
    assert set(cur["hooks"]) == {"sessionStart", "beforeSubmitPrompt", "stop", "preCompact"}
    assert cur["hooks"]["stop"][0]["loop_limit"] >= 1


def test_user_entries_are_kept(repo):
    (repo.path / ".claude").mkdir()
    user_hook = {"matcher": "Bash", "hooks": [{"type": "command", "command": "echo mine"}]}
    (repo.path / ".claude/settings.json").write_text(
        json.dumps({"model": "opus", "hooks": {"PreToolUse": [user_hook], "Stop": [user_hook]}})
    )
    (repo.path / "CLAUDE.md").write_text("# My project\n\nUse tabs.\n")
    (repo.path / ".cursor").mkdir()
    (repo.path / ".cursor/hooks.json").write_text(
        json.dumps({"version": 1, "hooks": {"stop": [{"command": "x"}]}})
    )
    (repo.path / ".codex").mkdir()
    (repo.path / ".codex/config.toml").write_text('model = "o3"\n[projects."/x"]\ntrust_level = "trusted"\n')
    (repo.path / "opencode.json").write_text(json.dumps({"theme": "dark"}))
    repo.ok("init", "--runtime", "all", "--non-interactive", "--no-daemon")
    s = json.loads((repo.path / ".claude/settings.json").read_text())
    assert s["model"] == "opus" and s["hooks"]["PreToolUse"] == [user_hook]
    assert s["hooks"]["Stop"][0] == user_hook and len(s["hooks"]["Stop"]) == 2
    md = (repo.path / "CLAUDE.md").read_text()
    assert md.startswith("# My project\n\nUse tabs.\n") and "<!-- thrum:end -->" in md
    cur = json.loads((repo.path / ".cursor/hooks.json").read_text())
    assert cur["hooks"]["stop"][0] == {"command": "x"}
    toml = tomllib.loads((repo.path / ".codex/config.toml").read_text())
    assert toml["model"] == "o3" and toml["projects"]["/x"]["trust_level"] == "trusted"
    assert json.loads((repo.path / "opencode.json").read_text())["theme"] == "dark"


def test_force_refreshes_thrums_entries_only(repo):
    repo.ok("init", "--runtime", "claude", "--non-interactive", "--no-daemon")
    path = repo.path / ".claude/settings.json"
    s = json.loads(path.read_text())
    s["hooks"]["Stop"][0]["hooks"][0]["timeout"] = 99
    s["hooks"]["Stop"].append({"hooks": [{"type": "command", "command": "echo mine"}]})
    path.write_text(json.dumps(s))
    repo.ok("init", "--runtime", "claude", "--non-interactive", "--no-daemon")
    assert json.loads(path.read_text())["hooks"]["Stop"][0]["hooks"][0]["timeout"] == 99  # kept
    repo.ok("init", "--runtime", "claude", "--non-interactive", "--no-daemon", "--force")
    stop = json.loads(path.read_text())["hooks"]["Stop"]
    assert stop[0]["hooks"][0]["command"] == "echo mine"
    assert stop[1]["hooks"][0]["timeout"] == 10 and len(stop) == 2


@pytest.mark.parametrize(
    ("runtime", "rel", "broken"),
    [
        ("claude", ".claude/settings.json", "{not json"),
        ("codex", ".codex/hooks.json", '{"hooks": {"Stop": {}}}'),
        ("cursor", ".cursor/hooks.json", "[]"),
        ("gemini", ".gemini/settings.json", '{"hooks": []}'),
    ],
)
def test_a_broken_file_is_refused_and_nothing_is_written(repo, runtime, rel, broken):
    path = repo.path / rel
    path.parent.mkdir(parents=True)
    path.write_text(broken)
    before = snapshot(repo.path)
    assert_error(repo.run("init", "--runtime", runtime, "--non-interactive", "--no-daemon"), rel)
    assert path.read_text() == broken
    assert snapshot(repo.path) == before
    assert not (repo.path / ".thrum").exists()


def test_stealth_keeps_git_status_clean(repo):
    repo.ok("init", "--runtime", "all", "--stealth", "--non-interactive", "--no-daemon")
    assert (repo.path / ".claude/settings.json").exists() and (repo.path / "AGENTS.md").exists()
    assert repo.git("status", "--porcelain") == ""


def test_stealth_leaves_tracked_files_alone(repo):
    (repo.path / "CLAUDE.md").write_text("# tracked\n")
    repo.git("add", "CLAUDE.md")
    repo.git("commit", "-qm", "claude md")
    r = repo.json("init", "--runtime", "claude", "--stealth", "--non-interactive", "--no-daemon")
    assert (repo.path / "CLAUDE.md").read_text() == "# tracked\n"
    assert any("tracked" in n for n in r["integrations"]["notes"])
    assert repo.git("status", "--porcelain") == ""


def test_dry_run_prints_the_plan_and_writes_nothing(repo):
    before = snapshot(repo.path)
    r = repo.ok("init", "--runtime", "claude", "--dry-run", "--non-interactive")
    assert "Would write .claude/settings.json" in r.out
    assert "+++ b/CLAUDE.md" in r.out
    assert snapshot(repo.path) == before and not (repo.path / ".thrum").exists()


def test_init_records_its_defaults_in_config_json(repo):
    repo.ok("init", "--runtime", "codex", "--roles", "enhanced", "--non-interactive", "--no-daemon")
    cfg = json.loads((repo.path / ".thrum/config.json").read_text())
    assert cfg["runtimes"]["default"] == "codex" and cfg["runtime"]["primary"] == "codex"
    assert cfg["worktrees"]["base_path"].endswith(".thrum/worktrees")
    assert cfg["roles"]["mode"] == "enhanced"
    assert (repo.path / ".thrum/role_templates/implementer.md").exists()
    before = (repo.path / ".thrum/config.json").read_bytes()
    repo.ok("init", "--non-interactive", "--no-daemon")
    assert (repo.path / ".thrum/config.json").read_bytes() == before


def test_init_skills_installs_only_the_prime_entry(repo):
    repo.ok("init", "--skills", "--non-interactive", "--no-daemon")
    assert (repo.path / ".claude/skills/thrum-prime/SKILL.md").exists()
    assert not (repo.path / "CLAUDE.md").exists() and not (repo.path / ".claude/settings.json").exists()


def test_bad_runtime_and_roles_flags_are_one_line_errors(repo):
    assert_error(repo.run("init", "--runtime", "nope", "--non-interactive"), "nope")
    assert_error(repo.run("init", "--roles", "fancy", "--non-interactive"), "--roles")
    assert not (repo.path / ".thrum").exists()


def test_wizard_on_a_tty(repo):
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: thrum init on a terminal
        os.chdir(repo.path)
        os.execve(sys.executable, [sys.executable, "-m", "thrum_engine", "init", "--no-daemon"], repo.env)
    answers = iter(["", "", "gemini", "skip"])
    buf = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        if buf.rstrip().endswith(b"]:"):
            os.write(fd, (next(answers, "") + "\n").encode())
            buf = b""
    os.waitpid(pid, 0)
    cfg = json.loads((repo.path / ".thrum/config.json").read_text())
    assert cfg["runtimes"]["default"] == "gemini" and cfg["roles"]["mode"] == "skip"
    assert (repo.path / ".gemini/settings.json").exists()


def test_setup_claude_md_prints_then_applies(repo):
    repo.ok("init", "--non-interactive", "--no-daemon")
    r = repo.ok("setup", "claude-md")
    assert "thrum prime" in r.out and not (repo.path / "CLAUDE.md").exists()
    repo.ok("setup", "claude-md", "--apply")
    text = (repo.path / "CLAUDE.md").read_text()
    assert "<!-- thrum:begin" in text
    repo.ok("setup", "claude-md", "--apply")
    assert (repo.path / "CLAUDE.md").read_text() == text


def test_roles_list_and_deploy(repo):
    alice = repo.agent("alice", "implementer", module="auth")
    repo.agent("carol", "coordinator")
    r = repo.json("roles", "list")
    by_role = {t["role"]: t for t in r["templates"]}
    assert set(by_role) >= {"coordinator", "orchestrator", "implementer", "reviewer", "planner", "tester"}
    assert by_role["implementer"]["agents"] == ["alice"]
    own = repo.path / ".thrum/role_templates/implementer.md"
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text("You are @{{agent}} ({{role}}) on {{module}}; report to @{{coordinator}}.\n")
    preamble = repo.path / ".thrum/context/alice.preamble.md"
    old = preamble.read_text()
    dry = repo.json("roles", "deploy", "--dry-run", "--agent", "alice")
    assert "+You are @alice (implementer) on auth; report to @carol." in dry["diff"]
    assert preamble.read_text() == old
    repo.ok("roles", "deploy", "--agent", "alice")
    assert preamble.read_text() == "You are @alice (implementer) on auth; report to @carol.\n"
    assert "report to @carol" in alice.ok("prime").out


def test_with_no_coordinator_the_templates_name_someone_who_is_there(repo):
    """Walk (session 21): "Your coordinator is @coordinator" with no such agent, and `--to
    @coordinator` was an unknown recipient. The person at the console (a user) is the next choice;
    a coordinator, once there, comes first."""
    from thrum_engine.integrations.roles import coordinator_of

    alice = {"name": "alice", "role": "implementer"}
    assert coordinator_of([alice], "alice") == "coordinator"  # nobody yet: the role's address
    ada = {"name": "ada", "role": "operator", "kind": "user"}
    assert coordinator_of([alice, ada], "alice") == "ada"
    assert coordinator_of([alice, ada, {"name": "lead", "role": "coordinator"}], "alice") == "lead"
    assert coordinator_of([{"name": "lead", "role": "coordinator"}, ada], "lead") == "ada"  # not itself
    alice_agent = repo.agent("alice", "implementer")
    register = {"name": "ada", "role": "operator", "kind": "user"}
    assert run_python(repo, RAW_CALL, "agent.register", json.dumps(register)).stdout == ""
    repo.ok("roles", "deploy", "--agent", "alice")
    text = (repo.path / ".thrum/context/alice.preamble.md").read_text()
    assert "@ada" in text and "@coordinator" not in text, text
    assert "@ada" in alice_agent.ok("prime").out


# -- hooks, end to end through the fake runtime -------------------------------------------------


def run_fake(
    agent, style: str, lines_after_start: list[str], before_prompt=None, timeout: float = 60
) -> list[dict]:
    """The fake runtime in the agent's worktree with the hooks installed there; returns the hook
    records it logged (one per moment)."""
    log = agent.cwd / f".fake-{style}.log"
    env = {**agent.env, "THRUM_NAME": agent.name}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(FAKE_AGENT),
            "--style",
            style,
            "--log",
            str(log),
            "--hooks-from",
            str(agent.cwd),
        ],
        cwd=agent.cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    hooks_log = Path(str(log) + ".hooks")
    try:
        if style not in START_AT_FIRST_TURN:  # Codex runs it with the first turn
            wait_for(hooks_log.exists, timeout, "the session-start hook record")
        if before_prompt:
            before_prompt()
        assert proc.stdin is not None
        proc.stdin.write("".join(ln + "\n" for ln in lines_after_start))
        proc.stdin.close()
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return [json.loads(ln) for ln in hooks_log.read_text().splitlines()]


@pytest.mark.parametrize("style", HOOK_STYLES)
def test_hooks_brief_deliver_block_and_are_recorded(repo, style):
    alice = repo.agent("alice", "implementer", module="auth")
    bob = repo.agent("bob", "reviewer")
    alice.ok("quickstart", "--name", "alice", "--role", "implementer", "--module", "auth", "--runtime", style)
    bob.ok("send", "first: the API changed", "--to", "@alice")

    records = run_fake(
        alice,
        style,
        ["hello", "exit"],
        before_prompt=lambda: bob.ok("send", "second: please look at auth/login.py", "--to", "@alice"),
    )
    start, prompt, stop1 = records[0], records[1], records[2]
    if style == "cursor":
        assert start["event"] == "sessionStart"
    assert "# You are @alice (implementer/auth)" in start["context"][0]
    assert "first: the API changed" in start["context"][0]
    if style in START_AT_FIRST_TURN:  # the briefing came with the first turn: both are in it
        assert "second: please look at auth/login.py" in start["context"][0]
        assert not any("second" in c for c in prompt["context"])
    elif style == "cursor":  # beforeSubmitPrompt cannot add context: the mail comes at stop
        assert prompt["context"] == [] and prompt["runs"][0]["exit"] == 0
        assert "second: please look at auth/login.py" in stop1["block"]
    else:
        assert "second: please look at auth/login.py" in prompt["context"][0]
        assert "first" not in prompt["context"][0]  # the briefing showed that one already
    stops = [r for r in records if r["moment"] == "stop"]
    if style == "cursor":
        assert "thrum inbox" in stop1["block"]
        # The runtime took another turn for the mail, then stopped: blocked once, not in a loop.
        assert [bool(r["block"]) for r in stops] == [True, False]
    else:  # the prompt showed the mail already: the stop does not show it again
        assert [bool(r["block"]) for r in stops] == [False]
    member = {m["name"]: m for m in repo.json("team", "--all")["members"]}["alice"]
    assert member["hooks"]["runtime"] == style
    assert set(member["hooks"]["events"]) == {"session-start", "prompt-submit", "stop"}
    doc = repo.run("doctor", "integrations", "--agent", "alice", "--json").json
    fired = [c for c in doc["checks"] if c["check"] == "hooks fired"]
    assert fired and all(c["ok"] for c in fired)


def test_hook_with_no_engine_or_no_thrum_says_nothing_and_exits_0(repo, tmp_path):
    alice = repo.agent("alice", "implementer")
    repo.stop()
    for runtime, expect in (("claude", ""), ("gemini", "{}"), ("cursor", "{}")):
        r = alice.run("hook", "stop", "--runtime", runtime, input=json.dumps({"cwd": str(alice.cwd)}))
        assert r.code == 0 and r.out.strip() == expect and r.err == ""
    assert repo.daemon_pid() is None or not Path(f"/proc/{repo.daemon_pid()}").exists()
    bare = tmp_path / "bare"
    bare.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=bare, check=True)
    proc = subprocess.run(
        [sys.executable, "-m", "thrum_engine", "hook", "session-start", "--runtime", "claude"],
        cwd=bare, env=repo.env, input="{}", capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


def test_pre_compact_saves_context_the_next_briefing_shows(repo):
    alice = repo.agent("alice", "implementer")
    alice.ok("session", "set-intent", "refactor the login flow")
    alice.ok("init", "--runtime", "claude", "--non-interactive")
    records = run_fake(alice, "claude", ["compact", "exit"])
    again = [r for r in records if r["moment"] == "start"][-1]
    assert "Before the last compaction" in again["context"][0]
    assert "refactor the login flow" in again["context"][0]


@pytest.mark.parametrize("style", HOOK_STYLES)
def test_after_a_compaction_the_briefing_comes_back_once_and_its_note_once(repo, style):
    """Runtimes walk (session 22): Gemini fires no SessionStart after a compaction (startup, resume
    and clear only), nor, as far as any source says, does Cursor: nothing briefed the agent again. The
    first hook that can speak after their pre-compact brings the briefing (Gemini's BeforeAgent,
    Cursor's stop); Claude and Codex keep theirs through SessionStart(compact). Each briefing after a
    compaction shows the note saved before it, and only that one (later briefings repeated it)."""
    alice = repo.agent("alice", "implementer")
    alice.ok("session", "set-intent", "refactor the login flow")
    alice.ok("init", "--runtime", style, "--non-interactive")
    records = run_fake(alice, style, ["hello", "compact", "go on", "and again", "exit"])
    briefings = [
        (r["moment"], text)
        for r in records
        for text in [*r["context"], r["block"] or ""]
        if text.startswith("# You are @alice")
    ]
    assert len(briefings) == 2, [(r["moment"], r["context"], r["block"]) for r in records]
    first, after = briefings
    assert "Before the last compaction" not in first[1]
    assert "Before the last compaction" in after[1] and "refactor the login flow" in after[1]
    assert after[0] == {"claude": "start", "codex": "start", "gemini": "prompt", "cursor": "stop"}[style]
    saved = (
        (repo.path / ".thrum/context/alice.md").read_text()
        if (repo.path / ".thrum/context/alice.md").exists()
        else ""
    )
    assert "Before the last compaction" not in saved  # shown once, then gone
    assert "Before the last compaction" not in alice.ok("prime").out


def test_a_session_start_run_by_two_installed_layers_briefs_once(repo):
    """Runtimes walk (session 22): with `init --user` and a project install, Codex and Cursor run both
    layers' hooks; each session start briefed the agent twice."""
    alice = repo.agent("alice", "implementer")
    alice.ok("init", "--runtime", "codex", "--non-interactive")
    assert "# You are @alice" in codex_session_start(alice, "dup")
    assert codex_session_start(alice, "dup", briefed=False) == ""
    codex_session_start(alice, "new")  # another session is briefed


def test_prime_without_thrum_or_engine_exits_0_with_a_helpful_line(repo, tmp_path):
    r = repo.run("prime")
    assert r.code == 0 and "thrum init" in r.out
    alice = repo.agent("alice", "implementer")
    doc = alice.json("prime")
    assert doc["agent"]["name"] == "alice" and "Next steps" not in json.dumps(doc)
    assert "## Next steps" in alice.ok("prime").out
    # a wrong name is the line, not the engine (reliability probe, session 22, R10)
    bad = alice.run("prime", THRUM_NAME="../../README")
    assert bad.code == 0 and "invalid agent name" in bad.out and "unavailable" not in bad.out, bad.out


def test_doctor_integrations_names_the_fix(repo):
    alice = repo.agent("alice", "implementer")
    alice.ok("init", "--runtime", "claude", "--non-interactive")
    (alice.cwd / ".claude/skills/thrum-prime/SKILL.md").unlink()
    r = alice.run("doctor", "integrations")
    assert r.code == 1
    assert (
        "SKILL.md is missing" in r.out
        and "fix: cd " in r.out
        and "thrum init --runtime claude --force" in r.out
    )
    r = repo.run("runtime", "show", "codex")
    assert "/hooks" in r.out and "trust" in r.out


def test_doctor_integrations_names_a_worktree_whose_agent_has_no_runtime(repo):
    """Walk (session 21): an agent registered with no runtime and no runtime files in its worktree
    was missing from `doctor integrations` altogether (only the checkout it ran in was looked at)."""
    repo.ok("init", "--runtime", "claude", "--non-interactive")
    alice = repo.agent("alice", "implementer")
    r = repo.run("doctor", "integrations", "--json", timeout=90)
    bare = [c for c in r.json["checks"] if c["check"] == "installed" and not c["ok"]]
    assert [c["worktree"] for c in bare] == [str(alice.cwd)], r.json["checks"]
    assert "thrum init --runtime" in bare[0]["fix"] and str(alice.cwd) in bare[0]["fix"]


def test_doctor_integrations_starts_the_mcp_server_through_the_sdk_client(repo):
    repo.ok("init", "--runtime", "claude", "--non-interactive")
    r = repo.run("doctor", "integrations", "--json", timeout=90)
    found = [c for c in r.json["checks"] if c["check"] == "mcp server"]
    assert found and found[0]["ok"], found
    assert "send_message" in found[0]["detail"] and "wait_for_message" in found[0]["detail"]


def codex_session_start(agent, session: str = "s1", *, briefed: bool = True) -> str:
    """What Codex runs before its first model request: the installed SessionStart hook, with the
    worktree as the `cwd` in its stdin; what it printed (a briefing, unless `briefed` is False)."""
    payload = {
        "session_id": session,
        "cwd": str(agent.cwd),
        "hook_event_name": "SessionStart",
        "source": "startup",
    }
    r = agent.run("hook", "session-start", "--runtime", "codex", input=json.dumps(payload))
    assert r.code == 0 and ("# You are @" in r.out) == briefed, (r.err, r.out)
    return r.out


def test_doctor_integrations_passes_a_codex_worktree_whose_hooks_fired(repo):
    """Walk (runtimes, 4): with a Codex worktree `doctor integrations` could never pass: "hooks
    trust" was ✗ whatever happened, and the main checkout, where only the operator lives, was ✗ "no
    runtime is wired here", so it exited 1 forever. Codex runs project hooks only once trusted: a
    firing since the install proves the trust; before one it is a note, not a problem."""
    repo.ok("init", "--non-interactive")
    repo.ok("quickstart", "--name", "lead", "--role", "coordinator")
    cx = worktree_agent(repo, "cx", "implementer", runtime="codex")
    doc = repo.run("doctor", "integrations", "--json", cwd=cx.cwd, timeout=90).json
    (trust,) = [c for c in doc["checks"] if c["check"] == "hooks trust"]
    assert trust["note"] and not trust["ok"] and "/hooks" in trust["fix"], trust
    assert trust not in [c for c in doc["checks"] if not c["ok"] and not c["note"]]
    assert not [c for c in doc["checks"] if c["check"] == "installed"], doc["checks"]
    # before any firing: notes, no problem of the same cause (walk, session 22: "hooks fired" ✗)
    assert doc["ok"] and doc["problems"] == 0, [c for c in doc["checks"] if not c["ok"]]

    codex_session_start(cx)
    r = repo.run("doctor", "integrations", cwd=cx.cwd, timeout=90)
    assert r.code == 0, r.out
    assert "✓ codex hooks trust: hooks have fired since install, so Codex trusts them" in r.out, r.out
    assert "✓ mcp server: `thrum mcp serve` lists" in r.out and "mcp mcp" not in r.out, r.out
    assert "All integrations look right." in r.out

    # Thrum's hooks rewritten after that firing: Codex asks for the trust again, and doctor says so.
    hooks = cx.cwd / ".codex/hooks.json"
    os.utime(hooks, (time.time() + 60, time.time() + 60))
    r = repo.run("doctor", "integrations", cwd=cx.cwd, timeout=90)
    assert r.code == 0 and "! codex hooks trust: " in r.out and "changed since" in r.out, r.out
    assert "1 note(s)" in r.out, r.out


def test_init_no_daemon_with_a_name_starts_no_engine(repo):
    """Walk: `init --no-daemon --name X` registered X through an engine it started, and left it
    running. --no-daemon starts none: the registration is deferred, and said so."""
    r = repo.run(
        "init", "--name", "lead_a", "--role", "coordinator", "--runtime", "claude",
        "--no-daemon", "--non-interactive",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "not registered yet" in r.out, r.out
    assert "thrum quickstart --name lead_a --role coordinator" in r.out
    assert repo.daemon_pid() is None
    assert (
        not (repo.var / "thrum.sock").exists() and "not running" in repo.run("daemon", "status").out.lower()
    )
    # With an engine already up, --no-daemon registers through it (and starts nothing new).
    repo.ok("daemon", "start")
    pid = repo.daemon_pid()
    assert pid
    out = repo.json("init", "--name", "lead_a", "--role", "coordinator", "--no-daemon", "--non-interactive")
    assert out["agent"]["agent"]["name"] == "lead_a" and repo.daemon_pid() == pid


def test_codex_block_goes_where_codex_reads_agents_md(repo):
    """Walk: with a 42 KB AGENTS.md, `init --runtime codex` appended the block at byte 42019, past
    the 32 KiB Codex reads, and `doctor integrations` said ✓. The block goes at the top of a file
    that big, and doctor flags a block past the cut."""
    limit = 32 * 1024
    mine = "# House rules\n\n" + "".join(f"- rule {i}: keep it tidy and tested.\n" for i in range(1150))
    assert len(mine.encode()) > 42_000
    (repo.path / "AGENTS.md").write_text(mine)
    r = repo.json("init", "--runtime", "codex", "--non-interactive", "--no-daemon")
    assert any("32 KiB" in n for n in r["integrations"]["notes"]), r["integrations"]["notes"]
    text = (repo.path / "AGENTS.md").read_text()
    end = text.index("<!-- thrum:end -->") + len("<!-- thrum:end -->")
    assert len(text[:end].encode()) <= limit and "thrum prime" in text[:end]
    assert text[end:].lstrip("\n") == mine  # the user's file, whole, after it
    repo.ok("init", "--runtime", "codex", "--non-interactive", "--no-daemon")
    assert (repo.path / "AGENTS.md").read_text() == text  # a re-run changes nothing

    def instructions_check() -> dict:
        doc = repo.run("doctor", "integrations", "--json").json
        (c,) = [c for c in doc["checks"] if c["runtime"] == "codex" and c["check"] == "instructions"]
        return c

    assert instructions_check()["ok"]
    # A block left past the cut (as the old installer put it) is a failing check, and init moves it.
    block = text[: end + 1]
    (repo.path / "AGENTS.md").write_text(mine + "\n" + block)
    c = instructions_check()
    assert not c["ok"] and "32 KiB" in c["detail"], c
    repo.ok("init", "--runtime", "codex", "--non-interactive", "--no-daemon")
    assert instructions_check()["ok"]


def test_init_user_creates_private_files_and_keeps_an_existing_files_mode(repo):
    """Walk: `init --user` wrote ~/.claude/settings.json and ~/.codex/config.toml 0644 in 0755
    directories. What Thrum creates in the home is 0600/0700; a file already there keeps its mode."""
    home = Path(repo.env["HOME"])
    (home / ".codex").mkdir(mode=0o750)
    os.chmod(home / ".codex", 0o750)
    (home / ".codex" / "config.toml").write_text('model = "o4"\n')
    os.chmod(home / ".codex" / "config.toml", 0o640)
    r = repo.json("init", "--user", "--runtime", "claude,codex", "--non-interactive", "--no-daemon")
    written = r["integrations"]["written"]
    assert "~/.claude/settings.json" in written and "~/.codex/config.toml" in written, written
    for rel in written:
        path = home / rel.removeprefix("~/")
        want = 0o640 if rel == "~/.codex/config.toml" else 0o600
        assert path.stat().st_mode & 0o777 == want, (rel, oct(path.stat().st_mode))
        d = path.parent
        while d != home:
            want_dir = 0o750 if d == home / ".codex" else 0o700
            assert d.stat().st_mode & 0o777 == want_dir, (str(d), oct(d.stat().st_mode))
            d = d.parent
    assert 'model = "o4"' in (home / ".codex" / "config.toml").read_text()


def _dirs_written(repo, runtime: str) -> list[str]:
    """The top directories `init --runtime R` writes into (from its dry run)."""
    r = repo.json("init", "--runtime", runtime, "--dry-run", "--non-interactive", "--no-daemon")
    return sorted({f["path"].split("/")[0] for f in r["integrations"]["files"] if "/" in f["path"]})


@pytest.mark.parametrize("runtime", [*RUNTIMES, "all"])
def test_a_directory_link_out_of_the_worktree_is_refused_and_nothing_written(repo, tmp_path, runtime):
    """R4: a cloned repo committing `.codex -> ../x` (or `../../.codex`: the user's global one)
    made init write hooks and MCP config through it. Every directory above a file is resolved too."""
    dirs = _dirs_written(repo, runtime)
    if not dirs:
        pytest.skip(f"{runtime} writes no file in a directory")
    outside = tmp_path / "elsewhere"
    for d in dirs:
        (outside / d).mkdir(parents=True)
        (outside / d / "mine.txt").write_text("mine\n")
        os.symlink(outside / d, repo.path / d)
    before_out, before_in = snapshot(outside), snapshot(repo.path)
    r = _init(repo, "--runtime", runtime)
    assert_error(r, "is a link out of the worktree (" + str(outside), "not touching it")
    assert snapshot(outside) == before_out and snapshot(repo.path) == before_in


def test_a_link_below_a_real_directory_is_refused_and_one_inside_the_worktree_followed(repo, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (repo.path / ".cursor").mkdir()
    os.symlink(outside, repo.path / ".cursor" / "rules")
    assert_error(
        _init(repo, "--runtime", "cursor"), f".cursor/rules is a link out of the worktree ({outside})"
    )
    assert list(outside.iterdir()) == []
    os.unlink(repo.path / ".cursor" / "rules")
    (repo.path / "shared-rules").mkdir()
    os.symlink(repo.path / "shared-rules", repo.path / ".cursor" / "rules")  # inside: the user's layout
    assert _init(repo, "--runtime", "cursor").code == 0
    assert (repo.path / "shared-rules" / "thrum.mdc").exists()


def test_init_user_refuses_a_directory_link_out_of_the_home(repo, tmp_path):
    home = Path(repo.env["HOME"])
    outside = tmp_path / "not-home"
    outside.mkdir()
    os.symlink(outside, home / ".codex")
    r = repo.run("init", "--user", "--runtime", "codex", "--non-interactive", "--no-daemon")
    assert_error(r, f"~/.codex is a link out of your home ({outside}); not touching it")
    assert list(outside.iterdir()) == []


def _init(repo, *args: str):
    return repo.run("init", *args, "--non-interactive", "--no-daemon")


@pytest.mark.parametrize(
    "rel,edit",
    [
        (".cursor/rules/thrum.mdc", "# mine\n"),  # an owned file
        (".cursor/commands/thrum-prime.md", "mine\n"),  # the prime command file
        (".cursor/mcp.json", '{"mcpServers": {"thrum": {"command": "mine"}}}\n'),  # Thrum's entry
        (".cursor/hooks.json", None),  # Thrum's hook, its timeout changed
    ],
)
def test_init_says_it_kept_an_edited_thrum_file_and_that_force_rewrites_it(repo, rel, edit):
    """walkC B6: `init` said "in place (nothing to change)" for a Thrum file the user had edited,
    which doctor flags as broken. It says it kept it, and --force rewrites it."""
    repo.ok("init", "--runtime", "cursor", "--non-interactive", "--no-daemon")
    if edit is None:
        data = json.loads((repo.path / rel).read_text())
        data["hooks"]["stop"][0]["timeout"] = 99
        edit = json.dumps(data, indent=2) + "\n"
    (repo.path / rel).write_text(edit)
    r = _init(repo, "--runtime", "cursor")
    assert r.code == 0, r.err
    assert "nothing to change" not in r.out, r.out
    assert f"kept {rel}" in r.out and "--force" in r.out, r.out
    assert (repo.path / rel).read_text() == edit  # kept
    assert _init(repo, "--runtime", "cursor", "--force").code == 0
    assert (repo.path / rel).read_text() != edit
    again = _init(repo, "--runtime", "cursor")
    assert "are in place (nothing to change)" in again.out and "kept" not in again.out, again.out


def test_init_says_what_codex_and_mcp_approvals_need_before_they_run(repo):
    """walkC B9: a ✓ for Codex hooks (skipped until trusted) and for project MCP servers (skipped
    until approved) says what the user must do; a re-run that writes nothing repeats no note."""
    r = _init(repo, "--runtime", "codex,cursor,claude")
    assert r.code == 0, r.err
    notes = [ln for ln in r.out.splitlines() if ln.startswith("! ")]
    assert any("Codex skips these hooks until you trust them" in n and "/hooks" in n for n in notes), notes
    assert any("Cursor runs project MCP servers once you approve them" in n for n in notes), notes
    assert any("Claude Code asks you to approve the MCP servers in .mcp.json" in n for n in notes), notes
    again = _init(repo, "--runtime", "codex,cursor,claude")
    assert "trust" not in again.out and "approve" not in again.out, again.out


def test_init_user_all_installs_the_runtimes_that_have_user_wiring_and_names_the_rest(repo):
    """walkC C4: `init --user --runtime all` refused everything because auggie and amp have no
    user-level wiring. It installs the others and says which it skipped and why."""
    home = Path(repo.env["HOME"])
    r = _init(repo, "--user", "--runtime", "all")
    assert r.code == 0, r.err
    assert "--user skipped auggie, amp: no user-level wiring" in r.out, r.out
    # User-level hooks need Codex's trust too; project approvals and trusted folders do not apply.
    assert "Codex skips these hooks until you trust them" in r.out, r.out
    assert ".mcp.json" not in r.out and "trusted" not in r.out, r.out
    for rel in (
        ".claude/settings.json",
        ".codex/hooks.json",
        ".gemini/settings.json",
        ".config/opencode/opencode.json",
    ):
        assert (home / rel).is_file(), rel
    assert not (home / ".augment").exists() and not (home / ".amp").exists()
    # A runtime named by hand that has no user-level wiring is still refused, with nothing written.
    before = snapshot(home)
    assert_error(_init(repo, "--user", "--runtime", "amp"), "no user-level wiring for amp")
    assert snapshot(home) == before


GEMINI_WITH_COMMENTS = '{\n  // my theme\n  "ui": {"theme": "GitHub"} /* dark later */\n}\n'


def test_a_gemini_settings_file_with_comments_is_read_and_never_rewritten_without_them(repo):
    """walkC C5: Gemini CLI strips comments from settings.json, so Thrum reads them too. Adding its
    entries would drop the user's comments: it refuses with one line naming what to add, and
    --force rewrites the file without them (saying so). Entries added by hand are then in place."""
    settings = repo.path / ".gemini/settings.json"
    settings.parent.mkdir()
    settings.write_text(GEMINI_WITH_COMMENTS)
    before = snapshot(repo.path)
    r = _init(repo, "--runtime", "gemini")
    assert_error(r, ".gemini/settings.json has comments", "hooks.SessionStart", "mcpServers.thrum", "--force")
    assert snapshot(repo.path) == before
    assert not (repo.path / ".thrum").exists()

    forced = _init(repo, "--runtime", "gemini", "--force")
    assert forced.code == 0, forced.err
    assert "rewritten without its comments" in forced.out, forced.out
    data = json.loads(settings.read_text())
    assert data["ui"] == {"theme": "GitHub"} and "thrum" in data["mcpServers"]

    # The user puts their comment back next to Thrum's entries: a re-run reads it and keeps it.
    text = settings.read_text().replace("{\n", "{\n  // mine again\n", 1)
    settings.write_text(text)
    again = _init(repo, "--runtime", "gemini")
    assert again.code == 0, again.err
    assert settings.read_text() == text
    doctor = repo.run("doctor", "integrations")
    assert "✓ gemini hooks:" in doctor.out and "✓ gemini mcp:" in doctor.out, doctor.out


def test_gemini_hooks_are_switched_on_and_gemini_md_is_a_name_gemini_reads(repo):
    """Walk (runtimes, 5 and 6): Gemini's Stable channel runs no hooks unless `hooksConfig.enabled`
    is true, and a `context.fileName` naming only AGENTS.md makes it skip GEMINI.md, where Thrum's
    block is; init wrote neither and doctor said ✓. Init switches hooks on (the user's own false is
    kept and named) and adds GEMINI.md to their names; doctor says when either is undone."""
    settings = repo.path / ".gemini/settings.json"
    settings.parent.mkdir()
    mine = {"ui": {"theme": "GitHub"}, "context": {"fileName": "AGENTS.md", "includeDirectories": ["docs"]}}
    settings.write_text(json.dumps(mine))
    assert _init(repo, "--runtime", "gemini").code == 0
    data = json.loads(settings.read_text())
    assert data["hooksConfig"] == {"enabled": True} and data["ui"] == mine["ui"]
    assert data["context"] == {"fileName": ["AGENTS.md", "GEMINI.md"], "includeDirectories": ["docs"]}
    before = snapshot(repo.path)
    again = repo.json("init", "--runtime", "gemini", "--non-interactive", "--no-daemon")
    assert (
        all(f["action"] == "keep" for f in again["integrations"]["files"]) and snapshot(repo.path) == before
    )
    doctor = repo.run("doctor", "integrations", timeout=90)
    assert "✓ gemini instructions: GEMINI.md" in doctor.out and "✓ gemini hooks:" in doctor.out, doctor.out

    data["hooksConfig"]["enabled"] = False
    data["context"]["fileName"] = ["AGENTS.md", "CONTEXT.md"]
    settings.write_text(json.dumps(data))
    doctor = repo.run("doctor", "integrations", timeout=90)
    assert doctor.code == 1
    assert (
        "✗ gemini hooks: .gemini/settings.json: hooksConfig.enabled is false: Gemini runs no hooks"
        in doctor.out
        and "fix: set hooksConfig.enabled to true in .gemini/settings.json" in doctor.out
    ), doctor.out
    assert (
        "✗ gemini instructions: .gemini/settings.json: context.fileName names AGENTS.md, CONTEXT.md"
        " but not GEMINI.md" in doctor.out
    ), doctor.out
    r = _init(repo, "--runtime", "gemini")
    assert r.code == 0 and "hooksConfig.enabled is false" in r.out, r.out
    data = json.loads(settings.read_text())
    assert data["hooksConfig"] == {"enabled": False}  # the user's choice
    assert data["context"]["fileName"] == ["AGENTS.md", "CONTEXT.md", "GEMINI.md"]
    doctor = repo.run("doctor", "integrations", timeout=90)
    assert "✓ gemini instructions: GEMINI.md" in doctor.out, doctor.out


def test_readmes_runtime_table_names_the_files_runtime_show_installs(repo):
    """Walk (runtimes, 10): the README said OpenCode gets no hooks ("none (JS plugins only)") while
    init installs .opencode/plugins/thrum.js. Each row names the file `runtime show` reports, or
    "none" where it reports none."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = {}
    for ln in readme.splitlines():
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        if ln.startswith("| ") and cells[0] in RUNTIMES:
            rows[cells[0]] = dict(zip(("instructions", "prime", "hooks", "mcp"), cells[1:], strict=True))
    assert set(rows) == set(RUNTIMES), rows
    for runtime, row in rows.items():
        files = repo.json("runtime", "show", runtime)["integration"]["files"]
        for part in ("instructions", "hooks", "mcp"):
            cell = row[part]
            if files.get(part):
                assert files[part] in cell, (runtime, part, cell, files[part])
            else:
                assert cell.startswith("none"), (runtime, part, cell)


def test_opencode_jsonc_gets_thrums_server_and_doctor_reads_it(repo):
    """walkC C5: OpenCode reads JSONC (comments, trailing commas) in opencode.json and opencode.jsonc,
    and merges both. A project with only opencode.jsonc gets `mcp.thrum` there (no second file beside
    it); doctor checks that file."""
    cfg = repo.path / "opencode.jsonc"
    cfg.write_text(
        '{\n  "$schema": "https://opencode.ai/config.json",\n  "model": "x/y",\n}\n'
    )  # trailing comma
    r = repo.json("init", "--runtime", "opencode", "--non-interactive", "--no-daemon")
    paths = [f["path"] for f in r["integrations"]["files"]]
    assert "opencode.jsonc" in paths and "opencode.json" not in paths, paths
    assert not (repo.path / "opencode.json").exists()
    data = json.loads(cfg.read_text())  # no comments were there: rewritten as plain JSON
    assert data["model"] == "x/y" and data["mcp"]["thrum"]["type"] == "local"
    doctor = repo.run("doctor", "integrations")
    assert "✓ opencode mcp: opencode.jsonc: thrum server configured" in doctor.out, doctor.out

    cfg.write_text('{\n  // pinned\n  "model": "x/y",\n}\n')
    refused = _init(repo, "--runtime", "opencode")
    assert_error(refused, "opencode.jsonc has comments", 'add `mcp.thrum` = {"type": "local"')
    assert cfg.read_text() == '{\n  // pinned\n  "model": "x/y",\n}\n'


def test_claude_settings_stay_strict_json(repo):
    """Claude Code reads .claude/settings.json as JSON: a comment there is an error Thrum names,
    not something it reads past."""
    settings = repo.path / ".claude/settings.json"
    settings.parent.mkdir()
    settings.write_text('{\n  // no\n  "model": "opus"\n}\n')
    assert_error(_init(repo, "--runtime", "claude"), ".claude/settings.json is not valid JSON")


def test_prime_missing_knows_where_each_runtime_finds_its_prime(tmp_path, monkeypatch):
    """What `tmux launch` asks before typing a prime (walkC A1): the runtime's skill or command file
    in the worktree, or where `init --user` puts it; a custom preset's prime is its owner's."""
    from thrum_engine.integrations import prime_missing

    home, wt = tmp_path / "home", tmp_path / "wt"
    home.mkdir()
    wt.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for runtime in RUNTIMES:
        rel = PRIME_FILE[runtime]
        if rel is None:  # typed as text (Amp): nothing to find
            assert prime_missing(runtime, str(wt)) is None
            continue
        assert f"{rel} is missing" in (prime_missing(runtime, str(wt)) or ""), runtime
        (wt / rel).parent.mkdir(parents=True, exist_ok=True)
        (wt / rel).write_text("x")
        assert prime_missing(runtime, str(wt)) is None, runtime
    assert prime_missing("fake_claude", str(tmp_path)) is None
    user_skill = home / ".claude/skills/thrum-prime/SKILL.md"
    user_skill.parent.mkdir(parents=True)
    user_skill.write_text("x")
    assert prime_missing("claude", str(tmp_path)) is None


def test_the_lead_in_the_main_checkout_is_the_coordinator_of_agents_in_worktrees(repo):
    """Contract walk (session 22): with the lead registered in the main checkout (the operator by
    place), an agent's briefing still said "Your coordinator is @coordinator", an unknown name."""
    from thrum_engine.integrations.roles import coordinator_of

    boss = {"name": "boss", "role": "lead", "worktree": str(repo.path)}
    alice = {"name": "alice", "role": "dev", "worktree": str(repo.path / "w1")}
    assert coordinator_of([alice, boss], "alice", str(repo.path)) == "boss"
    assert coordinator_of([alice, boss], "alice") == "coordinator"  # no main checkout given: as before
    repo.agent("boss", "lead", worktree=False)
    alice_agent = repo.agent("alice", "dev")
    out = alice_agent.ok("prime").out
    assert "@boss" in out and "@coordinator" not in out, out

"""Identity, sessions and orientation as agents see them: real worktrees, real CLI, real daemon."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import (
    EMPTY_NAME,
    Agent,
    agent_names,
    assert_error,
    assert_pretty_json,
    raw_call,
    run_python,
    write_runtimes,
)

SES_ID = re.compile(r"^ses_[0-9A-Za-z]{26}$")


# -- helpers --------------------------------------------------------------------------------------


def members(agent, *args: str) -> dict[str, dict]:
    return {m["name"]: m for m in agent.json("team", *args)["members"]}


def engine_running(repo) -> bool:
    return repo.run("daemon", "status").code == 0


# -- whoami ----------------------------------------------------------------------------------------


def test_whoami_tells_an_agent_who_it_is(pair):
    repo, alice, bob = pair
    r = alice.ok("whoami")
    lines = r.out.splitlines()
    assert lines[0] == "@alice (implementer/auth)"
    assert f"  worktree: {alice.cwd}" in lines
    assert any(SES_ID.match(ln.split(": ", 1)[1]) for ln in lines if ln.startswith("  session_id: "))

    me = assert_pretty_json(alice.ok("whoami", "--json").out)
    assert (me["name"], me["role"], me["module"]) == ("alice", "implementer", "auth")
    assert me["agent_id"] == "alice"
    assert bob.json("whoami")["role"] == "reviewer"
    assert alice.ok("agent", "whoami").out == r.out


def test_whoami_field_prints_one_value_and_works_with_the_engine_down(pair):
    repo, alice, bob = pair
    assert alice.ok("whoami", "--field", "role").out == "implementer\n"
    assert alice.json("whoami", "--field", "module") == {"module": "auth"}

    repo.stop()
    assert not engine_running(repo)
    assert alice.ok("whoami", "--field", "role").out == "implementer\n"
    assert bob.ok("whoami").out.startswith("@bob (reviewer)")
    assert not engine_running(repo), "whoami must not start the engine"

    assert_error(alice.run("whoami", "--field", "shoe_size"), "shoe_size")


def test_whoami_without_an_identity_explains_how_to_get_one(repo):
    repo.agent("alice", "implementer")  # initializes thrum; the main checkout has no identity of its own
    assert_error(repo.run("whoami"), "quickstart")


# -- quickstart ------------------------------------------------------------------------------------


def test_quickstart_twice_is_idempotent(pair):
    repo, alice, bob = pair
    first = alice.json("whoami")
    mid = bob.json("send", "before the second quickstart", "--to", "@alice")["message_id"]
    alice.ok("inbox")  # read it
    unread = bob.json("send", "still unread", "--to", "@alice")["message_id"]

    r = alice.ok("quickstart", "--name", "alice", "--role", "implementer", "--module", "auth")
    assert r.out.startswith("✓ Welcome back @alice (implementer/auth)")
    again = alice.json("quickstart", "--name", "alice", "--role", "implementer", "--module", "auth")
    assert again["created"] is False
    assert again["agent"]["registered_at"] == first["registered_at"]
    assert alice.json("whoami")["registered_at"] == first["registered_at"]

    assert agent_names(alice) == ["alice", "bob"]
    inbox = alice.json("inbox", "--unread")
    assert [m["message_id"] for m in inbox["messages"]] == [unread]
    full = alice.json("inbox")
    assert [m["message_id"] for m in full["messages"]] == [unread, mid]
    # Still exactly one identity file in the worktree, so nothing becomes ambiguous.
    assert [p.name for p in (alice.cwd / ".thrum" / "identities").glob("*.json")] == ["alice.json"]


@pytest.fixture(scope="module")
def pair_once(make_module_repo):
    """`pair`, shared by the refusals below: each leaves the team as it was (and checks that)."""
    repo = make_module_repo()
    return repo, repo.agent("alice", "implementer", module="auth"), repo.agent("bob", "reviewer")


@pytest.mark.parametrize(
    ("name", "role", "fragment"),
    [
        ("Alice", "implementer", "'Alice'"),
        ("a/b", "implementer", "'a/b'"),
        ("system", "implementer", "reserved"),
        ("everyone", "implementer", "reserved"),
        # names that are addresses already: `--to @me` is the sender, @operator the console's role,
        # @coordinator the supervisors' default, @reviewer every reviewer
        ("me", "implementer", "reserved, @me already names an address word"),
        ("all", "implementer", "reserved"),
        ("broadcast", "implementer", "reserved"),
        ("operator", "implementer", "reserved, @operator already names a role"),
        ("coordinator", "implementer", "reserved, @coordinator already names a role"),
        ("reviewer", "implementer", "reserved"),
        ("agent", "implementer", "reserved"),
        ("qa", "qa", "differ from its role"),
        ("$(touch pwned)", "implementer", "invalid agent name"),
    ],
)
def test_quickstart_refuses_invalid_agent_names(pair_once, name, role, fragment):
    repo, alice, bob = pair_once
    wt = repo.worktree(f"newcomer{len(repo.worktrees)}")
    r = repo.run("quickstart", "--name", name, "--role", role, cwd=wt)
    assert_error(r, fragment)
    assert agent_names(alice) == ["alice", "bob"]
    assert not list(wt.glob(".thrum/identities/*.json"))
    assert not (wt / "pwned").exists()


def test_a_name_that_is_an_address_of_this_repo_is_refused_by_the_engine(pair_once):
    """Past the CLI's fixed list (a raw `agent.register`, another role in use, configured addresses):
    a name `resolve` would take for an agent before the role or supervisor it already names."""
    from thrum_engine import names
    from thrum_engine.integrations.roles import FALLBACK, SHIPPED_ROLES

    assert {*SHIPPED_ROLES, FALLBACK} <= names.ROLE_WORDS  # every role an address names by default
    repo, alice, bob = pair_once
    carol = repo.agent("carol", "qa")
    for name, fragment in (
        ("me", "reserved, @me already names an address word"),
        ("qa", "a role other agents hold"),
        ("coordinator", "reserved"),
    ):
        out = run_python(carol, REGISTER, name)
        assert out.returncode == 0, out.stderr
        assert fragment in out.stdout, out.stdout
    r = repo.run("agent", "register", "dave", "--role", "carol", cwd=repo.worktree("dave"))
    assert_error(r, "@carol is an agent's name")
    assert agent_names(alice) == ["alice", "bob", "carol"]
    assert bob.json("send", "hi", "--to", "@qa")["recipients"] == ["carol"]


REGISTER = r"""
import sys
from thrum_engine.layout import Layout
from thrum_engine.rpc.client import Client, RpcError
client = Client(Layout.discover().socket_path, timeout=30).connect()
try:
    print(client.call("agent.register", {"name": sys.argv[1], "role": "implementer"}))
except RpcError as exc:
    print(exc.message)
"""


def test_quickstart_refuses_a_name_taken_in_another_worktree(pair):
    repo, alice, bob = pair
    wt = repo.worktree("impostor")
    assert_error(
        repo.run("quickstart", "--name", "alice", "--role", "implementer", cwd=wt), "already registered"
    )
    assert alice.json("agent", "list")["agents"][0]["worktree"] == str(alice.cwd)
    assert not (wt / ".thrum" / "identities" / "alice.json").exists()


def _refuses_runtime(pair_once, runtime: str, says: str, more=lambda wt: ()) -> Path:
    """Every way an agent's runtime enters (and `more(worktree)`) refused with `says`: nothing
    registered, no identity written, no worktree made; then the engine asked past the CLI."""
    repo, alice, _bob = pair_once
    before = agent_names(alice)
    wt = repo.worktree(f"rt{len(repo.worktrees)}")
    agent = ("--name", "newbie", "--role", "dev", "--runtime", runtime)
    for args in (
        ("quickstart", *agent),
        ("agent", "register", "newbie", "--role", "dev", "--runtime", runtime),
        ("worktree", "create", "rtw", *agent),
        *more(wt),
    ):
        assert_error(repo.run(*args, cwd=wt), says)
    assert agent_names(alice) == before
    assert not list(wt.glob(".thrum/identities/*.json"))
    assert "rtw" not in repo.git("worktree", "list")
    if runtime:  # past the CLI: the engine checks again ("" is the RPC's "none")
        raw = run_python(alice, REGISTER_RUNTIME, runtime)
        assert raw.returncode == 0, raw.stderr
        assert says in raw.stdout, raw.stdout
        assert agent_names(alice) == before
    return wt


@pytest.mark.parametrize("runtime", ["x;y", "a b", "-x", "$(touch pwned)", "a/b"])
def test_a_runtime_name_is_checked_wherever_it_enters(pair_once, runtime):
    """CLI.md: runtime names match `[A-Za-z0-9_-]+`. `quickstart --runtime 'x;y'`, `agent register
    --runtime 'a b'` and a raw `agent.register` stored the name (it is launched later); `worktree
    create --runtime` made the worktree before anything looked at it (walk C, B5)."""
    wt = _refuses_runtime(pair_once, runtime, "invalid runtime name")
    assert not (wt / "pwned").exists()


KNOWN = "one of amp, auggie, claude, codex, cursor, gemini, opencode, shell"


@pytest.mark.parametrize(
    ("runtime", "says"),
    [("bogus", f"unknown runtime 'bogus': {KNOWN}"), ("", "invalid runtime name: it must not be empty")],
)
def test_an_unknown_or_empty_runtime_is_refused_wherever_one_enters(pair_once, tmp_path, runtime, says):
    """`quickstart --runtime bogus` stored a runtime no preset knows (and `--runtime ''` was taken
    for none): the agent failed only at its first launch. Every flag that takes one names the known
    runtimes; a repo's own preset (runtimes.json) is one of them."""
    repo = pair_once[0]
    _refuses_runtime(
        pair_once,
        runtime,
        says,
        lambda wt: [
            ("worktree", "create", "rtw", "--runtime", runtime),  # no agent: the worktree was made
            (
                "tmux",
                "create",
                "rts",
                "--cwd",
                str(wt),
                "--name",
                "newbie",
                "--role",
                "dev",
                "--runtime",
                runtime,
            ),
        ],
    )
    assert_error(repo.run("runtime", "set-default", runtime), says)  # the operator's, in the main checkout
    # A fresh repo: refused before `init` writes anything.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    repo.git("init", "-q", "-b", "main", cwd=fresh)
    assert_error(
        repo.run("quickstart", "--name", "newbie", "--role", "dev", "--runtime", runtime, cwd=fresh), says
    )
    assert not (fresh / ".thrum").exists()


def test_a_repo_preset_is_a_known_runtime(repo):
    repo.ok("init", "--non-interactive", "--no-daemon")
    write_runtimes(repo, {"mine": {"extends": "shell"}})
    r = repo.ok("quickstart", "--name", "newbie", "--role", "dev", "--runtime", "mine")
    assert repo.ok("whoami", "--field", "runtime").out == "mine\n", r.out


REGISTER_RUNTIME = r"""
import sys
from thrum_engine.layout import Layout
from thrum_engine.rpc.client import Client, RpcError
client = Client(Layout.discover().socket_path, timeout=30).connect()
try:
    print(client.call("agent.register", {"name": "newbie", "role": "dev", "runtime": sys.argv[1]}))
except RpcError as exc:
    print(exc.message)
"""


def test_a_second_identity_in_a_worktree_is_refused_unless_both_are_picked_by_name(repo):
    """`quickstart --name q2` (and `agent register bob`) in a worktree holding @q1's identity
    file silently added a second one; `whoami` and `inbox` there without THRUM_NAME then failed
    "several identities" for q1 too (walk C, A3). Refused with one line naming @q1, and nothing
    changes; agents that each run under their own THRUM_NAME may share a worktree."""
    wt = repo.worktree("shared")
    boss = repo.agent("boss", "lead", worktree=False)  # initializes; the main checkout is THRUM_NAME's
    bare = Agent("q1", "dev", wt, dict(repo.env))
    bare.ok("quickstart", "--name", "q1", "--role", "dev", "--no-agent-pid")
    for args in (
        ("quickstart", "--name", "q2", "--role", "dev"),
        ("agent", "register", "bob", "--role", "dev"),
        ("quickstart", "--name", "q2", "--role", "dev", "--runtime", "claude"),
    ):
        line = assert_error(bare.run(*args), "@q1", "worktree create", "--force")
        assert str(wt / ".thrum" / "identities") in line
        # Under its own THRUM_NAME the newcomer resolves, but q1 (found as the only file) would not.
        assert_error(bare.run(*args, THRUM_NAME=args[3] if args[0] == "agent" else "q2"), "@q1")
    assert [p.name for p in (wt / ".thrum" / "identities").glob("*.json")] == ["q1.json"]
    assert not (wt / "CLAUDE.md").exists()
    assert agent_names(boss) == ["boss", "q1"]
    assert bare.ok("whoami", "--field", "name").out == "q1\n"
    bare.ok("inbox")
    bare.ok("quickstart", "--name", "q1", "--role", "dev", "--no-agent-pid")  # still idempotent

    # Agents that each carry THRUM_NAME share the main checkout (the conftest arrangement).
    main_checkout_agent(repo, "q3", "dev")
    assert agent_names(boss) == ["boss", "q1", "q3"]

    # --force: the caller says it sets THRUM_NAME for each agent.
    bare.ok("quickstart", "--name", "q2", "--role", "dev", "--force", "--no-agent-pid")
    assert sorted(p.name for p in (wt / ".thrum" / "identities").glob("*.json")) == ["q1.json", "q2.json"]
    assert bare.ok("whoami", "--field", "name", THRUM_NAME="q2").out == "q2\n"


# -- agents ----------------------------------------------------------------------------------------


def test_an_empty_agent_name_is_refused_as_empty_wherever_one_is_taken(pair):
    """`agent delete ''` and `ping @` said "no agent named @"; `set-status --agent ''` set my own
    status, `session list --agent @` listed everyone's, `tmux create --name ''` named the agent
    after the session: an empty name is one clear error, and nothing changes."""
    repo, alice, bob = pair
    before = {m["name"]: m["status"] for m in alice.json("team")["members"]}
    for name in ("", "@"):
        for args, said in (
            (["agent", "delete", name, "--force"], f"invalid agent {name!r}"),
            (["ping", name], f"invalid agent {name!r}"),
            (["agent", "set-status", "blocked", "--agent", name], f"invalid --agent {name!r}"),
            (["session", "list", "--agent", name], f"invalid --agent {name!r}"),
            (["asks", "--agent", name], f"invalid --agent {name!r}"),
            (["context", "show", "--agent", name], f"invalid --agent {name!r}"),
            (["roles", "deploy", "--dry-run", "--agent", name], f"invalid --agent {name!r}"),
            (["review", "history", "--agent", name], f"invalid --agent {name!r}"),
            (["doctor", "integrations", "--agent", name], f"invalid --agent {name!r}"),
        ):
            assert_error(alice.run(*args), said, EMPTY_NAME)
    r = alice.run(
        "tmux", "create", "s1", "--cwd", str(alice.cwd), "--name", "", "--role", "dev", "--runtime", "shell"
    )
    assert_error(r, "invalid agent name: it must not be empty")
    for method, params in (
        ("agent.delete", {"name": "@"}),
        ("team.ping", {"agent": ""}),
        ("agent.set_status", {"status": "blocked", "agent": ""}),
        ("session.list", {"agent": "@"}),
    ):
        said_back = raw_call(alice, method, params)
        assert EMPTY_NAME in said_back, f"{method}: {said_back}"
    assert {m["name"]: m["status"] for m in alice.json("team")["members"]} == before
    assert agent_names(alice) == ["alice", "bob"]
    assert alice.json("tmux", "status")["sessions"] == []


def test_agent_list_shows_everyone_and_filters_by_role(pair):
    repo, alice, bob = pair
    repo.agent("carol", "reviewer")
    out = alice.ok("agent", "list").out.splitlines()
    assert out[0].startswith("@alice  implementer/auth")
    assert [ln.split()[0] for ln in out] == ["@alice", "@bob", "@carol"]

    reviewers = alice.json("agent", "list", "--role", "reviewer")["agents"]
    assert [a["name"] for a in reviewers] == ["bob", "carol"]
    assert all(a["role"] == "reviewer" for a in reviewers)
    assert alice.json("agent", "list", "--role", "nobody_has_this")["agents"] == []


def test_agent_delete_removes_an_agent(pair):
    repo, alice, bob = pair
    assert_error(repo.run("agent", "delete", "bob"), "--force")  # bob is mid-session
    assert agent_names(alice) == ["alice", "bob"]

    assert_error(alice.run("agent", "delete", "bob", "--force"), "belongs to the worktree")  # not alice's
    bob_file = bob.cwd / ".thrum" / "identities" / "bob.json"
    assert repo.ok("agent", "delete", "bob", "--force").out == (  # the operator's
        f"✓ Deleted @bob\nRemoved identity file: {bob_file}\n"
    )
    assert agent_names(alice) == ["alice"]
    assert "bob" not in members(alice, "--all")
    assert_error(alice.run("send", "are you there?", "--to", "@bob"), "unknown recipient: @bob")
    assert_error(bob.run("inbox"), "quickstart")  # its identity file went with it
    assert_error(alice.run("agent", "delete", "ghost"), "@ghost")


def main_checkout_agent(repo, name: str, role: str) -> Agent:
    """An agent sharing the main checkout, picked by THRUM_NAME, with no agent pid in its file (this
    test process would be every agent's ancestor: a pid match would hide an ambiguous worktree)."""
    agent = Agent(name, role, repo.path, {**repo.env, "THRUM_NAME": name})
    agent.ok("quickstart", "--name", name, "--role", role, "--no-agent-pid")
    return agent


def test_agent_delete_removes_the_identity_file_so_the_worktree_resolves_again(repo):
    """`agent delete` left `.thrum/identities/<name>.json` behind: the worktree stayed ambiguous for
    the agent that remains there, and `THRUM_NAME=<deleted> thrum whoami` still answered as the
    deleted agent (walk C, A4). Teardown removes the files with the worktree; delete does it too."""
    lead, bob = (main_checkout_agent(repo, n, r) for n, r in (("lead", "boss"), ("bob", "worker")))
    ids = repo.path / ".thrum" / "identities"
    assert sorted(p.name for p in ids.glob("*.json")) == ["bob.json", "lead.json"]
    assert_error(repo.run("whoami"), "several identities")

    r = lead.json("agent", "delete", "bob", "--force")
    assert (r["deleted"], r["identity_file"]) == ("bob", str(ids / "bob.json"))
    assert sorted(p.name for p in ids.glob("*.json")) == ["lead.json"]
    assert repo.ok("whoami", "--field", "name").out == "lead\n"  # the only identity again
    assert_error(bob.run("whoami"), "@bob is not registered")  # not shown as a live identity
    assert_error(bob.run("whoami", "--field", "session_id"), "@bob is not registered")

    # `agent cleanup --force` deletes agents too, and their files with them.
    carol = repo.agent("carol", "worker")
    r = repo.json("agent", "cleanup", "--force", "--threshold", "0")
    assert "carol" in r["deleted"]
    assert str(carol.cwd / ".thrum" / "identities" / "carol.json") in r["identity_files"]
    assert not list((carol.cwd / ".thrum" / "identities").glob("*.json"))


def test_whoami_answers_the_current_session_and_intent(pair):
    """After `session end`, `session start` and `session set-intent`, `whoami --field session_id`
    named the ended session and `--field intent` the old intent: the identity file was never
    updated, and whoami read only the file (walk C, B1). The engine now keeps the file current, and
    whoami prefers the engine's answer while still working without it."""
    repo, alice, bob = pair
    first = alice.ok("whoami", "--field", "session_id").out.strip()
    alice.ok("session", "end", "--reason", "crash")
    assert alice.ok("whoami", "--field", "session_id").out == "\n"  # no session: empty, not the ended one
    second = alice.ok("session", "start").out.removeprefix("✓ Session started: ").strip()
    alice.ok("session", "set-intent", "fresh intent")
    assert second != first
    assert alice.ok("whoami", "--field", "session_id").out == f"{second}\n"
    assert alice.ok("whoami", "--field", "intent").out == "fresh intent\n"
    record = json.loads((alice.cwd / ".thrum" / "identities" / "alice.json").read_text())
    assert (record["session_id"], record["intent"]) == (second, "fresh intent")

    repo.stop()  # without the engine the file answers, and it is current
    assert alice.ok("whoami", "--field", "session_id").out == f"{second}\n"
    assert alice.json("whoami")["intent"] == "fresh intent"
    assert not engine_running(repo), "whoami must not start the engine"


def test_a_deleted_agents_session_stays_ended_after_a_restart(pair):
    """The cache and the SQL projection both end the session of a deleted agent (code review smell 8)."""
    repo, alice, bob = pair
    assert alice.json("status")["active_sessions"] == 2
    repo.ok("agent", "delete", "bob", "--force")  # the operator (the main checkout) may
    assert alice.json("status")["active_sessions"] == 1
    alice.ok("daemon", "stop")
    assert alice.json("status")["active_sessions"] == 1


def test_agent_set_status_blocked_shows_in_team_and_ping(pair):
    repo, alice, bob = pair
    assert bob.ok("agent", "set-status", "blocked").out == "✓ Status set to blocked\n"
    team = members(alice)
    assert team["bob"]["presence"] == "blocked"
    assert team["bob"]["status"] == "blocked"
    assert team["alice"]["presence"] == "online"
    assert any(ln.startswith("@bob  reviewer  blocked") for ln in alice.ok("team").out.splitlines())
    assert alice.ok("ping", "@bob").out.startswith("@bob is blocked")

    bob.ok("agent", "set-status", "working")
    assert members(alice)["bob"]["presence"] == "working"
    assert_error(bob.run("agent", "set-status", "napping"), "napping")
    assert members(alice)["bob"]["presence"] == "working"


def test_ping_reports_presence(pair):
    repo, alice, bob = pair
    out = alice.ok("ping", "@bob").out
    assert re.fullmatch(r"@bob is online \(last seen \d+s ago\)\n", out)
    member = alice.json("ping", "bob")["member"]
    assert (member["name"], member["presence"], member["branch"]) == ("bob", "online", "feature/bob")
    assert_error(alice.run("ping", "@nobody"), "@nobody")


# -- sessions --------------------------------------------------------------------------------------


def test_sessions_start_end_and_list(pair):
    repo, alice, bob = pair
    first = alice.json("whoami")["session_id"]
    active = {s["agent_id"]: s for s in alice.json("session", "list", "--active")["sessions"]}
    assert active["alice"]["session_id"] == first
    assert active["alice"]["ended_at"] is None

    assert alice.ok("session", "end").out == f"✓ Session ended: {first}\n"
    assert "alice" not in {s["agent_id"] for s in alice.json("session", "list", "--active")["sessions"]}
    assert_error(alice.run("session", "end"), "no active session")
    assert_error(alice.run("session", "set-intent", "anything"), "session start")
    # Without a session alice is offline: hidden from `team`, shown by `team --all`.
    assert "alice" not in members(bob)
    assert members(bob, "--all")["alice"]["presence"] == "offline"

    r = alice.ok("session", "start", "--intent", "fix the login bug")
    second = r.out.removeprefix("✓ Session started: ").strip()
    assert SES_ID.match(second) and second != first
    mine = alice.json("session", "list", "--agent", "@alice")["sessions"]
    assert [s["session_id"] for s in mine] == [second, first]
    assert mine[0]["intent"] == "fix the login bug" and mine[0]["ended_at"] is None
    assert mine[1]["end_reason"] == "normal" and mine[1]["ended_at"]
    assert members(bob)["alice"]["presence"] == "online"

    out = alice.ok("session", "list").out
    assert f"{second}  @alice" in out and "active" in out
    assert f"{first}  @alice" in out and "ended" in out


def test_session_end_with_crash_reason(pair):
    repo, alice, bob = pair
    alice.ok("session", "end", "--reason", "crash")
    [s] = alice.json("session", "list", "--agent", "alice")["sessions"]
    assert s["end_reason"] == "crash"
    assert_error(alice.run("session", "start", "--bogus"), "unknown flag: --bogus")
    alice.ok("session", "start")
    assert_error(alice.run("session", "end", "--reason", "boredom"), "boredom")


def test_intent_and_task_are_visible_to_the_team(pair):
    repo, alice, bob = pair
    assert (
        alice.ok("session", "set-intent", "refactoring", "token", "refresh").out
        == "✓ Intent: refactoring token refresh\n"
    )
    assert alice.ok("session", "set-task", "AUTH-42").out == "✓ Task: AUTH-42\n"
    team = members(bob)
    assert team["alice"]["intent"] == "refactoring token refresh"
    assert team["alice"]["task"] == "AUTH-42"
    assert "— refactoring token refresh" in bob.ok("team").out
    [s] = alice.json("session", "list", "--active", "--agent", "alice")["sessions"]
    assert (s["intent"], s["task"]) == ("refactoring token refresh", "AUTH-42")
    # The `agent` spelling does the same.
    alice.ok("agent", "set-intent", "reviewing")
    assert members(bob)["alice"]["intent"] == "reviewing"
    assert_error(alice.run("session", "set-task"), "TEXT")
    # --clear: there was no way to clear them (walk C, C7)
    assert alice.ok("session", "set-intent", "--clear").out == "✓ Intent cleared\n"
    assert alice.ok("session", "set-task", "--clear").out == "✓ Task cleared\n"
    assert (members(bob)["alice"]["intent"], members(bob)["alice"]["task"]) == ("", "")
    assert_error(alice.run("session", "set-intent", "x", "--clear"), "mutually exclusive")


def test_task_intent_and_display_are_one_printable_line(pair):
    """A newline or an escape sequence in a task, an intent or a display name broke the team row
    it is shown on (or restyled the operator's terminal); a task is an id, without spaces."""
    repo, alice, bob = pair
    alice.ok("session", "set-intent", "steady")
    alice.ok("session", "set-task", "bd-7")
    for args, fragment in (
        (("session", "set-task", "a\nb"), "invalid task"),
        (("session", "set-task", "bd\x1b[31m-1"), "invalid task"),
        (("session", "set-task", "bd 12"), "without spaces"),
        (("session", "set-task", "x" * 101), "longer than 100"),
        (("session", "set-intent", "two\nlines"), "invalid intent"),
        (("session", "set-intent", "x" * 501), "longer than 500"),
        (("session", "start", "--intent", "tab\there"), "invalid intent"),
        (
            ("agent", "register", "alice", "--role", "implementer", "--display", "A\x07", "--force"),
            "display name",
        ),
    ):
        assert_error(alice.run(*args), fragment)
    [s] = alice.json("session", "list", "--active", "--agent", "alice")["sessions"]
    assert (s["intent"], s["task"]) == ("steady", "bd-7")  # nothing changed
    assert "\x07" not in str(members(bob)["alice"])
    assert alice.ok("session", "set-task", " bd-8 ").out == "✓ Task: bd-8\n"


# -- orientation -----------------------------------------------------------------------------------


def test_prime_briefs_the_agent(pair):
    repo, alice, bob = pair
    alice.ok("session", "set-intent", "token refresh")
    bob.ok("session", "set-intent", "code review")
    bob.ok("send", "your PR has a failing test", "--to", "@alice")
    alice.ok("context", "save", input="Remember: tests live in tests/auth\n")

    r = alice.ok("prime")
    out = r.out
    assert out.startswith("# You are @alice (implementer/auth)\n")
    assert "intent: token refresh" in out
    assert "Work: feature/alice" in out
    assert "## Team (1 online)" in out
    assert "- @bob  reviewer  online" in out and "code review" in out
    assert "## Inbox: 1 unread" in out
    assert "from @bob: your PR has a failing test" in out
    assert "thrum inbox` (that marks them read" in out
    assert "## Preamble\nYou are @alice (implementer)" in out
    assert "## Saved context\nRemember: tests live in tests/auth" in out

    doc = assert_pretty_json(alice.ok("prime", "--json").out)
    assert doc["agent"]["name"] == "alice"
    assert doc["unread"] == 1
    assert [m["from"] for m in doc["recent_unread"]] == ["bob"]
    assert [m["name"] for m in doc["team"]] == ["bob"]
    # Priming does not read the mail for the agent.
    assert alice.json("inbox", "--unread")["unread"] == 1


def test_prime_degrades_gracefully_when_the_engine_cannot_start(pair):
    repo, alice, bob = pair
    config = repo.path / ".thrum" / "config.json"
    good = config.read_text()
    repo.stop()
    config.write_text("{ this is not json")

    r = alice.run("prime")
    assert r.code == 0, r.err
    assert "unavailable" in r.out
    assert "@alice (implementer)" in r.out
    doc = assert_pretty_json(alice.run("prime", "--json").out)
    assert doc["engine"] is None
    assert doc["error"]
    assert doc["agent"]["name"] == "alice"

    # Commands that need the engine say so in one line; whoami still works.
    assert_error(alice.run("inbox"))
    assert alice.ok("whoami", "--field", "role").out == "implementer\n"

    config.write_text(good)
    assert alice.ok("prime").out.startswith("# You are @alice")


def test_an_unreadable_config_is_named_in_the_error(pair):
    """The start-up failure caused by a broken config file should say which file to fix."""
    repo, alice, bob = pair
    repo.stop()
    (repo.path / ".thrum" / "config.json").write_text("{ this is not json")
    assert_error(alice.run("inbox"), "config.json")


def test_status_shows_me_my_session_and_the_engine(pair):
    repo, alice, bob = pair
    alice.ok("session", "set-intent", "status check")
    doc = assert_pretty_json(alice.ok("status", "--json").out)
    assert doc["engine"]["running"] is True
    assert doc["engine"]["pid"] == repo.daemon_pid()
    assert doc["agents"] == 2
    assert doc["me"]["name"] == "alice"
    assert doc["me"]["intent"] == "status check"
    assert doc["session"]["session_id"] == alice.json("whoami")["session_id"]
    assert doc["work_context"]["branch"] == "feature/alice"

    out = alice.ok("status").out
    assert out.startswith(f"engine: daemon pid {repo.daemon_pid()}")
    assert "2 agents" in out
    assert f"session: {doc['session']['session_id']}" in out
    assert "work: feature/alice" in out


def test_overview_shows_team_worktrees_and_messages(pair):
    repo, alice, bob = pair
    alice.ok("send", "one", "--to", "@bob")
    alice.ok("send", "two", "--to", "@bob")
    doc = assert_pretty_json(alice.ok("overview", "--json").out)
    assert {m["name"] for m in doc["team"]} == {"alice", "bob"}
    trees = {w["path"]: w for w in doc["worktrees"]}
    assert trees[str(alice.cwd)]["agents"] == ["alice"]
    assert trees[str(bob.cwd)]["agents"] == ["bob"]
    assert trees[str(bob.cwd)]["branch"] == "feature/bob"
    assert doc["messages"] == 2

    out = alice.ok("overview").out
    assert "· 2 messages" in out
    assert "team:" in out and "worktrees:" in out
    assert f"  {bob.cwd}  @bob  feature/bob" in out


def test_context_save_show_clear(pair):
    repo, alice, bob = pair
    notes = "Investigating flaky test\n- see auth/test_login.py\n"
    r = alice.ok("context", "save", input=notes)
    assert r.out.startswith(f"✓ Context saved ({len(notes.encode())} bytes)")

    out = alice.ok("context", "show").out
    assert "## Preamble\nYou are @alice" in out
    assert "## Context\nInvestigating flaky test" in out
    assert alice.ok("context", "show", "--raw", "--no-preamble").out == notes
    assert bob.json("context", "show", "--agent", "@alice", "--no-preamble") == {
        "agent_id": "alice",
        "context": notes,
        "preamble": None,
        "source": "local",
    }
    assert bob.json("context", "show", "--no-preamble")["context"] is None

    src = alice.cwd / "notes.md"
    src.write_text("from a file\n")
    alice.ok("context", "save", "--file", str(src))
    assert alice.ok("context", "show", "--raw", "--no-preamble").out == "from a file\n"

    assert alice.ok("context", "clear").out == "✓ Context cleared\n"
    assert alice.ok("context", "clear").out == "No saved context.\n"
    assert "## Context\n(none saved)" in alice.ok("context", "show").out
    assert_error(alice.run("context", "save", "--file", str(alice.cwd / "missing.md")), "missing.md")


def test_context_preamble_show_set_and_reset(pair):
    repo, alice, bob = pair
    default = alice.ok("context", "preamble").out
    assert default.startswith("You are @alice (implementer)")
    assert "thrum inbox` (marks them read" in default

    custom = alice.cwd / "preamble.md"
    custom.write_text("Only touch files under auth/.\n")
    assert alice.ok("context", "preamble", "--file", str(custom)).out == "Only touch files under auth/.\n"
    assert alice.json("context", "preamble")["preamble"] == "Only touch files under auth/.\n"
    assert "## Preamble\nOnly touch files under auth/." in alice.ok("prime").out
    # Bob's preamble is his own.
    assert bob.ok("context", "preamble").out.startswith("You are @bob (reviewer)")

    assert alice.ok("context", "preamble", "--init").out == default
    assert_error(alice.run("context", "preamble", "--init", "--file", str(custom)), "mutually exclusive")


def test_who_has_finds_uncommitted_and_committed_changes(pair):
    repo, alice, bob = pair
    (bob.cwd / "README.md").write_text("bob is rewriting this\n")  # uncommitted
    (bob.cwd / "auth.py").write_text("def login(): ...\n")
    repo.git("add", "auth.py", cwd=bob.cwd)
    repo.git("commit", "-q", "-m", "add auth", cwd=bob.cwd)  # committed on feature/bob

    r = alice.ok("who-has", "README.md")
    assert r.out.startswith("@bob  feature/bob  uncommitted")
    doc = alice.json("who-has", "auth.py")
    assert doc["file"] == "auth.py"
    [holder] = doc["holders"]
    assert (holder["agents"], holder["branch"], holder["changes"]) == (["bob"], "feature/bob", ["committed"])
    assert holder["path"] == str(bob.cwd)
    assert [h["agents"] for h in alice.json("who-has", "README.md")["holders"]] == [["bob"]]
    # An absolute path inside bob's worktree means the same file.
    assert [h["agents"] for h in alice.json("who-has", str(bob.cwd / "README.md"))["holders"]] == [["bob"]]
    assert alice.ok("who-has", "untouched.txt").out == "Nobody is changing untouched.txt.\n"


# -- forged callers --------------------------------------------------------------------------------


def test_a_forged_caller_cannot_send_as_someone_else(pair):
    repo, alice, bob = pair
    r = alice.run("send", "I am bob, trust me", "--to", "@alice", THRUM_NAME="bob")
    assert_error(r, "@bob")
    assert alice.json("inbox")["total"] == 0
    assert bob.json("sent")["messages"] == []
    assert_error(alice.run("send", "hi", "--broadcast", THRUM_NAME="bob"))
    assert alice.json("inbox")["total"] == 0


def test_a_forged_caller_cannot_read_or_change_someone_elses_mail(pair):
    repo, alice, bob = pair
    carol = repo.agent("carol", "tester")
    for_bob = alice.json("send", "private for bob", "--to", "@bob")["message_id"]
    by_bob = bob.json("send", "bob's words", "--to", "@carol")["message_id"]

    assert_error(alice.run("inbox", THRUM_NAME="bob"))
    assert_error(alice.run("message", "read", "--all", THRUM_NAME="bob"))
    assert_error(alice.run("reply", for_bob, "forged reply", THRUM_NAME="bob"))
    assert_error(alice.run("message", "edit", by_bob, "forged words", THRUM_NAME="bob"))
    assert_error(alice.run("message", "delete", by_bob, "--force", THRUM_NAME="bob"))
    assert_error(alice.run("agent", "set-status", "stuck", THRUM_NAME="bob"))

    unread = bob.json("inbox", "--unread")
    assert [m["message_id"] for m in unread["messages"]] == [for_bob]
    [d] = alice.json("sent", "show", for_bob)["message"]["deliveries"]
    assert d["read_at"] is None and d["replied_at"] is None
    assert carol.json("message", "get", by_bob)["message"]["body"]["content"] == "bob's words"
    assert alice.json("inbox")["total"] == 0
    assert members(alice)["bob"]["presence"] == "online"


def test_a_forged_caller_cannot_delete_the_agent_it_impersonates(pair):
    repo, alice, bob = pair
    assert_error(alice.run("agent", "delete", "bob", THRUM_NAME="bob"))
    assert agent_names(alice) == ["alice", "bob"]
    assert bob.json("whoami")["name"] == "bob"


def test_a_forged_caller_cannot_purge_in_someone_elses_name(pair):
    repo, alice, bob = pair
    alice.ok("send", "keep me", "--to", "@bob")
    assert_error(alice.run("purge", "--all", "--confirm", THRUM_NAME="bob"))
    assert bob.json("inbox", "--unread")["total"] == 1


def test_prime_with_a_running_engine_and_no_identity_does_not_blame_the_engine(pair):
    """Walk (session 18): with the engine up, `prime` where no identity is known said "Thrum engine
    unavailable: no identity ... (start it: `thrum daemon start`)"."""
    from conftest import run_thrum

    repo, _alice, _bob = pair
    env = {k: v for k, v in repo.env.items() if k != "THRUM_NAME"}
    r = run_thrum(["prime"], repo.path, env)
    assert r.code == 0, r.err
    assert "unavailable" not in r.out and "daemon start" not in r.out, r.out
    doc = run_thrum(["prime", "--json"], repo.path, env).json
    assert doc["engine"] is None and doc["engine_running"] is True and "identity" in doc["error"]

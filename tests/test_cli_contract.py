"""CLI.md's Conventions as a user meets them: the greppable success lines, env defaults, read
filters that refuse unknown names, hints that `--json` carries and THRUM_NO_HINTS drops."""

from __future__ import annotations

import json
import re

from conftest import assert_error, run_thrum


def test_a_send_to_an_offline_agent_still_says_message_sent_and_the_hint_says_not_yet_delivered(pair):
    repo, alice, bob = pair
    r = alice.ok("send", "hello", "--to", "@bob")  # bob has no live path: stored, not yet shown
    first, hint = r.out.splitlines()
    assert re.fullmatch(r"✓ Message sent: msg_[0-9A-Za-z]{26} → @bob", first)
    assert hint.startswith("  ⚠ not yet delivered to @bob: offline")
    mid = first.split()[3]
    r = bob.ok("reply", mid, "got it")
    first, hint = r.out.splitlines()
    assert re.fullmatch(r"✓ Reply sent: msg_\w+ → @alice \(thread thr_\w+\)", first)
    assert hint.startswith("  ⚠ not yet delivered to @alice: offline")


def test_cosmetic_errors_say_what_is_wrong(pair):
    repo, alice, bob = pair
    assert_error(repo.run("--repo"), "--repo needs a value")
    assert_error(repo.run("--repo", str(repo.path)), "needs a command")
    # A mention is not a recipient: the error names what was given.
    assert_error(alice.run("send", "x", "--to", "@bob", "--mention", "@nobody"), "unknown mention: @nobody")
    assert bob.json("inbox")["total"] == 0


def test_tmux_connect_without_a_terminal_is_one_error_line(repo):
    assert repo.run("init").code == 0
    assert (
        repo.run("tmux", "create", "s1", "--cwd", str(repo.path), "--no-agent", "--runtime", "shell").code
        == 0
    )
    r = repo.run("tmux", "connect", "s1", input="")  # stdin a pipe: tmux cannot attach to it
    assert_error(r, "needs a terminal")


def test_wait_takes_a_role_mention_as_send_does(pair):
    repo, alice, bob = pair
    alice.ok("send", "devs, look", "--to", "@bob", "--mention", "@reviewer")
    r = bob.run("wait", "--after", "-30s", "--timeout", "5s", "--mention", "@reviewer", "--json")
    assert r.code == 0, r.err
    assert [m["body"]["content"] for m in r.json["messages"]] == ["devs, look"]
    # `@everyone` is what a send takes too; a name nobody holds is still refused (exit 2 for wait).
    assert bob.run("wait", "--timeout", "0s", "--mention", "@everyone").code == 1  # a timeout, not an error
    assert_error(bob.run("wait", "--timeout", "1s", "--mention", "@nosuch"), "--mention @nosuch", code=2)


def test_a_read_filter_naming_nobody_is_an_error_as_inbox_from_is(pair):
    repo, alice, bob = pair
    assert_error(alice.run("context", "show", "--agent", "nobody"), "@nobody")
    assert_error(alice.run("session", "list", "--agent", "nobody"), "@nobody")
    # A real agent with nothing saved is still "nothing", not an error.
    assert "(none saved)" in alice.ok("context", "show", "--agent", "bob", "--no-preamble").out
    assert alice.json("session", "list", "--agent", "bob")["sessions"]


def test_whoami_under_another_worktrees_name_says_where_that_agent_lives(pair):
    repo, alice, bob = pair
    for where in (bob.cwd, repo.path):  # bob's worktree, and the main checkout
        r = run_thrum(["whoami"], where, {**repo.env, "THRUM_NAME": "alice"})
        assert_error(r, "@alice", str(alice.cwd))
    assert alice.ok("whoami", THRUM_NAME="alice").out.startswith("@alice")


def identity(cwd, name: str) -> dict:
    return json.loads((cwd / ".thrum" / "identities" / f"{name}.json").read_text())


def test_quickstart_again_without_intent_keeps_the_intent(repo):
    dave = repo.agent("dave", "impl", intent="first intent")
    dave.ok("quickstart", "--name", "dave", "--role", "impl")
    assert identity(dave.cwd, "dave")["intent"] == "first intent"
    assert dave.ok("whoami", "--field", "intent").out == "first intent\n"
    dave.ok("quickstart", "--name", "dave", "--role", "impl", "--intent", "second")
    assert identity(dave.cwd, "dave")["intent"] == "second"
    assert dave.ok("whoami", "--field", "intent").out == "second\n"


def test_quickstart_and_register_take_name_role_and_module_from_the_env(repo):
    w1 = repo.worktree("w1")
    r = run_thrum(
        ["quickstart", "--json"],
        w1,
        {**repo.env, "THRUM_NAME": "carol", "THRUM_ROLE": "tester", "THRUM_MODULE": "db"},
    )
    assert r.code == 0, r.err
    assert (r.json["agent"]["name"], r.json["agent"]["role"], r.json["agent"]["module"]) == (
        "carol",
        "tester",
        "db",
    )
    # The flags win over the env.
    w2 = repo.worktree("w2")
    r = run_thrum(
        ["quickstart", "--name", "dan", "--role", "impl", "--json"],
        w2,
        {**repo.env, "THRUM_ROLE": "tester", "THRUM_MODULE": "db"},
    )
    assert (r.json["agent"]["role"], r.json["agent"]["module"]) == ("impl", "db")
    w3 = repo.worktree("w3")
    r = run_thrum(["agent", "register", "erin", "--json"], w3, {**repo.env, "THRUM_ROLE": "tester"})
    assert r.code == 0, r.err
    assert r.json["agent"]["role"] == "tester"


def test_context_clear_also_takes_back_what_context_sync_shared(pair):
    repo, alice, bob = pair
    alice.ok("context", "save", input="secret plan v1\n")
    alice.ok("context", "sync")
    r = alice.json("context", "clear")
    assert (r["cleared"], r["local"], r["synced"]) == (True, True, True)
    assert alice.json("context", "show", "--no-preamble")["context"] is None
    # The removal is a commit on a-sync, which the next sync shares like the save was.
    sync_wt = repo.path / ".git" / "thrum-sync" / "a-sync"
    assert repo.git("log", "-1", "--format=%s", cwd=sync_wt) == "context: clear alice"
    assert repo.git("ls-files", "context", cwd=sync_wt) == ""
    r = alice.json("context", "clear")  # nothing left: says so
    assert (r["cleared"], r["local"], r["synced"]) == (False, False, False)
    assert alice.ok("context", "clear").out == "No saved context.\n"


def test_hints_go_under_hints_in_json_and_thrum_no_hints_drops_them(pair):
    repo, alice, bob = pair
    doc = alice.json("send", "hi", "--to", "@bob")
    assert [h.split(":")[0] for h in doc["hints"]] == ["⚠ not yet delivered to @bob"]
    assert doc["undelivered"]  # the hint is advice; the result keeps its facts
    quiet = alice.json("send", "hi", "--to", "@bob", THRUM_NO_HINTS="1")
    assert "hints" not in quiet and quiet["undelivered"]
    r = alice.ok("send", "hi", "--to", "@bob", THRUM_NO_HINTS="1")
    assert re.fullmatch(r"✓ Message sent: msg_\w+ → @bob\n", r.out)


def test_verbose_says_on_stderr_how_the_call_to_the_engine_went(pair):
    repo, alice, bob = pair
    plain = alice.ok("inbox", "--json")
    r = alice.ok("inbox", "--json", "--verbose")
    assert json.loads(r.out)["total"] == json.loads(plain.out)["total"]  # stdout is the result alone
    sock = str(repo.path / ".thrum" / "var" / "thrum.sock")
    assert re.fullmatch(
        rf"thrum: message\.inbox via {re.escape(sock)}: ok in [\d.]+ ms, engine already running\n", r.err
    )
    repo.stop()
    r = alice.ok("send", "hi", "--to", "@bob", "-v")
    assert re.fullmatch(
        r"thrum: message\.send via .*: ok in [\d.]+ ms, started the engine for this call .*\n", r.err
    )
    r = alice.run("send", "hi", "--to", "@nobody", "--verbose")
    assert r.code == 1
    assert r.err.splitlines()[0].startswith("thrum: message.send via ") and ": failed in " in r.err
    assert r.err.splitlines()[1] == "Error: unknown recipient: @nobody"

"""Beads-friendly tasks (issue 16, item 6): `--ref bd:ID` and `session set-task bd-ID` show as task
chips in `team`, `prime`, `who-has`, the feed and listings; `inbox`/`sent --ref` filter by them."""

from __future__ import annotations

from conftest import assert_error


def test_refs_filter_inbox_and_sent_and_show_as_task_chips(pair):
    _repo, alice, bob = pair
    on_task = alice.json("send", "--to", "@bob", "--ref", "bd:123", "auth is done")
    alice.json("send", "--to", "@bob", "--ref", "bd:bd-9", "other task")
    alice.json("send", "--to", "@bob", "unrelated")
    for spelling in ("bd:123", "bd:bd-123"):
        (m,) = bob.json("inbox", "--ref", spelling)["messages"]
        assert m["message_id"] == on_task["message_id"] and m["tasks"] == ["bd-123"]
        assert m["refs"] == [{"type": "bd", "value": "123"}]
    assert bob.json("inbox", "--ref", "bd:123")["total"] == 1
    assert [m["body"]["content"] for m in alice.json("sent", "--ref", "bd:9")["messages"]] == ["other task"]
    assert alice.json("sent", "--ref", "bd:404")["messages"] == []
    assert "[bd-123]" in bob.ok("inbox", "--ref", "bd:123").out
    # the chip as shown filters too (it was "invalid --ref 'bd-123': use TYPE:VALUE")
    (m,) = bob.json("inbox", "--ref", "bd-123")["messages"]
    assert m["message_id"] == on_task["message_id"]
    assert [m["body"]["content"] for m in alice.json("sent", "--ref", "bd-9")["messages"]] == ["other task"]
    assert_error(bob.run("inbox", "--ref", "bd"), "invalid --ref")
    assert_error(bob.run("inbox", "--ref", "bd-"), "invalid --ref")


def test_session_task_shows_in_team_prime_and_who_has(pair):
    _repo, alice, bob = pair
    bob.ok("session", "set-task", "bd-77")
    alice.ok("session", "set-task", "bd:5")  # the ref spelling: one chip, bd-5
    team = {m["name"]: m for m in alice.json("team")["members"]}
    assert team["bob"]["task"] == "bd-77" and team["bob"]["task_chip"] == "bd-77"
    assert team["alice"]["task_chip"] == "bd-5"
    assert "(bd-77)" in alice.ok("team").out
    prime = bob.ok("prime").out
    assert "task: bd-77" in prime and "(bd-5)" in prime
    (bob.cwd / "login.py").write_text("print('wip')\n")
    held = bob.json("who-has", "login.py")
    (holder,) = held["holders"]
    assert holder["agents"] == ["bob"] and holder["tasks"] == {"bob": "bd-77"}
    assert "@bob (bd-77)" in alice.ok("who-has", "login.py").out


def test_task_chips_have_one_spelling():
    from thrum_engine.refs import message_tasks, same_ref_values, task_chip
    from thrum_tui.screens.feed import feed_line

    assert task_chip("bd:12") == task_chip("bd-12") == "bd-12"
    assert task_chip("JIRA-7") == "JIRA-7"
    assert same_ref_values("bd", "12") == same_ref_values("bd", "bd-12") == ["12", "bd-12"]
    assert same_ref_values("module", "auth") == ["auth"]
    assert message_tasks([{"type": "bd", "value": "3"}, {"type": "module", "value": "auth"}]) == ["bd-3"]
    m = {
        "created_at": "2026-12-02T18:31:02.817802Z",
        "author": "alice",
        "to": ["@bob"],
        "body": {"content": "done", "format": "markdown"},
        "tasks": ["bd-3"],
        "meta": {"scheduled": {"schedule_id": "sch_x", "due": "", "late": False}},
    }
    assert feed_line(m) == "12-02 18:31 @alice → @bob [bd-3] ⏰  done"

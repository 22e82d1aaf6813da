"""Asks, the delivery ledger and the loop guard through the real CLI and daemon (issue 16)."""

from __future__ import annotations

import json
import re

import pytest

from conftest import assert_error, background, wait_for
from thrum_engine.layout import Layout
from thrum_engine.rpc.client import Client


@pytest.fixture
def trio(make_repo):
    """alice (lead) and two reviewers, bob and carol, each in a worktree; reminders and the loop
    guard tuned small so the engine's own timers run within a test."""
    repo = make_repo()
    repo.env.update(
        {
            "THRUM_ASKS__REMIND_AFTER_SECONDS": "1",
            "THRUM_ASKS__REMIND_BACKOFF": "1",
            "THRUM_ASKS__MAX_REMINDERS": "2",
            "THRUM_ASKS__POLL_SECONDS": "0.1",
            "THRUM_GUARDS__PAIR_PER_MINUTE": "4",
        }
    )
    alice = repo.agent("alice", "lead")
    bob = repo.agent("bob", "reviewer")
    carol = repo.agent("carol", "reviewer")
    return repo, alice, bob, carol


def test_an_ask_is_closed_by_a_reply_and_another_by_an_ack(trio):
    repo, alice, bob, carol = trio
    a = alice.json("send", "which schema version?", "--to", "@bob", "--ask")
    assert a["ask"] is True
    b = alice.json("send", "FYI: deploy at 5", "--to", "@bob", "--ask", "--due", "1h")
    assert b["due_at"]
    mine = alice.json("asks", "--mine")["asks"]
    assert [x["message_id"] for x in mine] == [a["message_id"], b["message_id"]]
    assert all(x["recipient"] == "bob" and x["age_seconds"] >= 0 for x in mine)
    out = bob.ok("asks", "--to-me").out
    assert a["message_id"] in out and "from @alice" in out and "old" in out
    bob.ok("reply", a["message_id"], "v2")
    r = bob.ok("ack", b["message_id"], "--note", "will watch")
    assert r.out.startswith(f"✓ Acked: {b['message_id']}")
    assert bob.json("asks", "--to-me")["asks"] == []
    assert alice.json("asks")["asks"] == []
    shown = alice.json("sent", "show", b["message_id"])["message"]["deliveries"][0]
    assert shown["state"] == "acked" and shown["ack_note"] == "will watch"
    out = alice.ok("sent", "show", a["message_id"]).out
    assert "@bob: replied" in out and re.search(r"replied\s+\S+ \S+Z \(\d+s ago\)\s+\+", out)
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", out)  # no raw ISO times (an id may hold "8T5")


def test_ask_errors_are_one_line_and_change_nothing(trio):
    repo, alice, bob, carol = trio
    a = alice.json("send", "q?", "--to", "@bob", "--ask")
    assert_error(carol.run("ack", a["message_id"]), "not an ask addressed to you")
    # a huge --due: the bound in words, not pydantic's "Input should be less than or equal to 31622400"
    r = alice.run("send", "q?", "--to", "@bob", "--ask", "--due", "1000d")
    assert_error(r, "--due must be at most 366d")
    assert_error(bob.run("reply", a["message_id"], "--due", "400d", "x"), "--due must be at most 366d")
    assert_error(bob.run("ack", "msg_" + "0" * 26), "no message")
    assert_error(bob.run("ack", "nonsense"), "invalid message id")
    assert_error(alice.run("send", "x", "--to", "@bob", "--due", "soon"), "--due")
    assert_error(alice.run("send", "x", "--to", "@bob", "--due", "-5m"), "--due")
    assert_error(alice.run("asks", "--mine", "--to-me"), "mutually exclusive")
    assert_error(repo.run("release", "msg_" + "0" * 26), "not held")
    assert_error(repo.run("release"), "--all")
    assert_error(alice.run("sent", "show", "msg_" + "0" * 26), "no message")
    assert_error(alice.run("reply", a["message_id"], "x", "--due", "2 weeks"), "--due")
    # Walk (session 21): `--ask --to @me` said "ask: open until answered or acked", and no ask was listed.
    assert_error(alice.run("send", "remember", "--to", "@me", "--ask"), "note to yourself cannot be one")
    sched = alice.run("schedule", "create", "--to", "@me", "--in", "1h", "--ask", "x")
    assert_error(sched, "note to yourself cannot be one")
    assert alice.json("schedule", "list")["schedules"] == []
    assert [x["message_id"] for x in alice.json("asks", "--mine")["asks"]] == [a["message_id"]]
    assert len(alice.json("sent")["messages"]) == 1


def test_an_ask_to_an_agent_deleted_since_is_no_longer_open(trio):
    """Walk (session 21): the ask stayed in the sender's `asks --mine` and briefing for ever, and no
    overdue notice ever came: nobody is left to answer it."""
    repo, alice, bob, carol = trio
    a = alice.json("send", "carol, status?", "--to", "@carol", "--to", "@bob", "--ask")
    assert sorted(x["recipient"] for x in alice.json("asks", "--mine")["asks"]) == ["bob", "carol"]
    carol.ok("agent", "delete", "carol", "--force")
    assert [x["recipient"] for x in alice.json("asks", "--mine")["asks"]] == ["bob"]
    assert a["message_id"] in bob.ok("asks", "--to-me").out  # bob's part is still open


def test_a_fan_out_ask_tracks_each_recipient_and_reminders_stop_after_n(trio):
    repo, alice, bob, carol = trio
    a = alice.json("send", "vote: ship it?", "--to", "@reviewer", "--ask")
    assert sorted(a["recipients"]) == ["bob", "carol"]
    answered = carol.json("reply", a["message_id"], "yes")
    answered_at = carol.json("message", "get", answered["message_id"])["message"]["created_at"]
    assert [x["recipient"] for x in alice.json("asks", "--mine")["asks"]] == ["bob"]

    def reminders(agent) -> list[dict]:
        msgs = agent.json("inbox", "--all", "--page-size", "100")["messages"]
        return [
            m
            for m in msgs
            if m["author"] == "system"
            and a["message_id"] in m["body"]["content"]
            and m["to"] == ["@" + agent.name]
        ]

    wait_for(lambda: len(reminders(bob)) == 2, what="bob's two reminders")
    assert alice.json("asks", "--mine")["asks"][0]["reminders"] == 2
    # carol answered: not reminded after that (one round that read the asks before her reply was
    # stored may have come first)
    assert [m for m in reminders(carol) if m["created_at"] > answered_at] == []
    # max_reminders is 2: the count stays (the engine has had many more polls by now)
    wait_for(lambda: alice.json("asks", "--mine")["asks"][0]["reminders"] == 2, what="still two")
    assert len(reminders(bob)) == 2


def test_past_due_the_sender_is_told(trio):
    repo, alice, bob, carol = trio
    a = alice.json("send", "need it now", "--to", "@bob", "--due", "0.2s")

    def told():
        msgs = alice.json("inbox", "--all")["messages"]
        return [
            m
            for m in msgs
            if m["author"] == "system" and "Unanswered past its due time" in m["body"]["content"]
        ]

    wait_for(told, what="the overdue report")
    assert a["message_id"] in told()[0]["body"]["content"]
    assert alice.json("asks", "--mine")["asks"][0]["overdue"] is True


def test_offline_recipient_is_reported_not_yet_delivered_until_it_reads(trio):
    repo, alice, bob, carol = trio
    r = alice.ok("send", "are you there?", "--to", "@bob")
    assert r.out.startswith("✓ Message sent: msg_")
    assert "not yet delivered to @bob: offline" in r.out
    mid = alice.json("sent")["messages"][0]["message_id"]
    assert [m["message_id"] for m in alice.json("sent", "--undelivered")["messages"]] == [mid]
    shown = alice.json("sent", "show", mid)["message"]
    assert shown["delivered"] is False
    assert shown["deliveries"][0]["undelivered_reason"].startswith("offline")
    assert "not yet delivered" in alice.ok("sent").out
    bob.ok("inbox")
    assert alice.json("sent", "--undelivered")["messages"] == []
    steps = alice.json("sent", "show", mid)["message"]["deliveries"][0]["steps"]
    assert [s["state"] for s in steps] == ["stored", "seen", "read"]


def test_the_ledger_through_wait(trio):
    repo, alice, bob, carol = trio
    with background(bob, "wait", "--timeout", "30", "--json") as waiter:
        wait_for(lambda: _waiting(repo, "bob"), what="bob's wait blocked in the engine")
        sent = alice.json("send", "take this", "--to", "@bob", "--ask")
        assert sent["undelivered"] == []  # a blocked wait takes it: delivered
        out, _ = waiter.communicate(timeout=30)
        assert sent["message_id"] in out
    mid = sent["message_id"]

    def record() -> dict:
        return alice.json("sent", "show", mid)["message"]["deliveries"][0]

    wait_for(lambda: record()["via"] == "wait", what="the wait's delivery record")
    assert [s["state"] for s in record()["steps"]] == ["stored", "notified", "seen"]
    bob.ok("inbox")
    bob.ok("ack", mid)
    d = record()
    assert [s["state"] for s in d["steps"]] == ["stored", "notified", "seen", "read", "acked"]
    assert d["steps"][1]["via"] == "wait" and all(s["after_seconds"] >= 0 for s in d["steps"])
    out = alice.ok("sent", "show", mid).out
    assert "via wait" in out and "acked" in out and "not yet delivered" not in out


def _waiting(repo, agent: str) -> bool:
    c = Client(Layout.discover(str(repo.path)).socket_path, 10).connect()
    try:
        return c.call("delivery.paths", {"agent": agent})["agents"][0]["waiting"]
    finally:
        c.close()


def test_a_runaway_pair_is_held_and_the_operator_releases_it(trio):
    repo, alice, bob, carol = trio
    repo.ok("quickstart", "--name", "ada", "--role", "operator")  # the operator, in the main checkout
    sent = []
    for i in range(4):
        who, to = (alice, "@bob") if i % 2 == 0 else (bob, "@alice")
        r = who.json("send", f"ping {i}", "--to", to)
        assert "held" not in r
        sent.append(r["message_id"])
    r = alice.ok("send", "ping 4", "--to", "@bob")
    assert r.out.startswith("⏸ Message held, not delivered: msg_") and "loop guard" in r.out
    held_id = r.out.split()[5]
    assert held_id not in str(bob.json("inbox", "--all")["messages"])
    listed = repo.json("held")["held"]
    assert [h["message_id"] for h in listed] == [held_id] and listed[0]["author"] == "alice"
    assert held_id in repo.ok("held").out
    assert [h["message_id"] for h in alice.json("sent", "--undelivered")["held"]] == [held_id]
    # its id is no unknown message: `sent show` and `reply` say it is held (they said "no message")
    assert_error(alice.run("sent", "show", held_id), f"{held_id} is held, not delivered", "loop guard")
    assert_error(bob.run("reply", held_id, "pong"), "is held, not delivered")
    # the operator was told, by the engine
    notices = [m for m in repo.json("inbox", "--all")["messages"] if m["author"] == "system"]
    assert notices and "thrum release" in notices[0]["body"]["content"]
    # an agent cannot release; the operator can
    assert_error(alice.run("release", "--all"), "operator")
    r = repo.ok("release", held_id)
    assert "Released 1 held message" in r.out
    assert "ping 4" in [m["body"]["content"] for m in bob.json("inbox", "--all")["messages"]]
    assert repo.json("held")["held"] == []
    assert repo.json("held", "--released")["held"][0]["released_by"] == "ada"
    assert "held" not in alice.json("send", "ping 5", "--to", "@bob")  # counting starts afresh


def test_open_asks_are_in_prime_and_the_prompt_hook_context(trio):
    repo, alice, bob, carol = trio
    a = alice.json("send", "which port does the auth service use?", "--to", "@bob", "--ask")
    out = bob.ok("prime").out
    assert "## Open asks: 1 waiting for your answer" in out and a["message_id"] in out
    assert "from @alice" in out and "thrum ack" in out
    assert a["message_id"] in alice.ok("prime").out  # the sender sees what it waits on
    prime = bob.json("prime")
    assert [x["message_id"] for x in prime["open_asks"]["to_me"]] == [a["message_id"]]
    hook = bob.run("hook", "prompt-submit", "--runtime", "claude", input=json.dumps({"cwd": str(bob.cwd)}))
    assert hook.code == 0
    assert "open ask" in hook.out and a["message_id"] in hook.out
    bob.ok("ack", a["message_id"])
    hook = bob.run("hook", "prompt-submit", "--runtime", "claude", input=json.dumps({"cwd": str(bob.cwd)}))
    assert a["message_id"] not in hook.out
    assert "Open asks" not in bob.ok("prime").out


async def test_mcp_send_message_with_ask(trio):
    from test_mcp import mcp_client, text

    repo, alice, bob, carol = trio
    async with mcp_client(alice.cwd, alice.env) as s:
        r = await s.call_tool("send_message", {"to": ["@bob"], "body": "ok to merge?", "ask": True})
        assert not r.is_error, text(r)
        assert r.structured_content["ask"] is True
    assert [x["message_id"] for x in bob.json("asks", "--to-me")["asks"]] == [
        r.structured_content["message_id"]
    ]


def test_human_output_gives_due_and_held_times_to_read(trio):
    """`send --due`, `asks` and `held` said `due 2026-12-02T20:20:29.756413Z`; they read like
    `schedule list`: `2026-12-02 20:20:29Z (in 59m)`."""
    repo, alice, bob, carol = trio
    readable = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \((in \S+|\S+ ago)\)")
    out = alice.ok("send", "q?", "--to", "@bob", "--ask", "--due", "1h").out
    assert re.search(r"due " + readable.pattern, out) and "T" not in out.split("due ", 1)[1].split()[0], out
    for who in (alice, bob):
        out = who.ok("asks").out
        assert re.search(r"due " + readable.pattern, out), out
        assert not re.search(r"\d\d:\d\d:\d\d\.\d+Z", out), out
    repo.ok("quickstart", "--name", "ada", "--role", "operator")
    for i in range(5):
        who, to = (alice, "@bob") if i % 2 == 0 else (bob, "@alice")
        who.ok("send", f"ping {i}", "--to", to)
    out = repo.ok("held").out
    assert re.search(r"held " + readable.pattern, out) and not re.search(r"\.\d+Z", out), out


def test_a_held_send_repeated_with_its_key_is_held_once_and_delivered_once(trio):
    """A retry of a held send (same key) stored a second held message: released, both arrived."""
    repo, alice, bob, carol = trio
    repo.ok("quickstart", "--name", "ada", "--role", "operator")
    for i in range(4):
        who, to = (alice, "@bob") if i % 2 == 0 else (bob, "@alice")
        who.ok("send", f"ping {i}", "--to", to)
    first = alice.json("send", "ping 4", "--to", "@bob", "--idempotency-key", "p4")
    again = alice.json("send", "ping 4", "--to", "@bob", "--idempotency-key", "p4")
    assert first["held"] and again["held"] and again["duplicate"] is True
    assert again["message_id"] == first["message_id"]
    assert "⏸ Message held" in alice.ok("send", "ping 4", "--to", "@bob", "--idempotency-key", "p4").out
    assert [h["message_id"] for h in repo.json("held")["held"]] == [first["message_id"]]
    repo.stop()  # the key stays taken across a restart too
    assert alice.json("send", "ping 4", "--to", "@bob", "--idempotency-key", "p4")["duplicate"] is True
    repo.ok("release", "--all")
    got = [m["body"]["content"] for m in bob.json("inbox", "--all")["messages"]]
    assert got.count("ping 4") == 1
    after = alice.json("send", "ping 4", "--to", "@bob", "--idempotency-key", "p4")
    assert after["message_id"] == first["message_id"] and after["duplicate"] is True and "held" not in after

"""Messaging as agents use it: real worktrees, the real `thrum` CLI, a real daemon.

Each test is a small user story: what an agent types and what it sees
(stdout text, exit codes, `--json` documents).
"""

from __future__ import annotations

import json
import re
import subprocess
import time

from conftest import EMPTY_NAME, assert_error, assert_pretty_json, background, raw_call, run_python

MSG_ID = re.compile(r"^msg_[0-9A-Za-z]{26}$")
THR_ID = re.compile(r"^thr_[0-9A-Za-z]{26}$")


# -- helpers --------------------------------------------------------------------------------------


def peek(agent) -> dict:
    """The agent's unread inbox without marking anything read."""
    return agent.json("inbox", "--unread")


def contents(inbox: dict) -> list[str]:
    return [m["body"]["content"] for m in inbox["messages"]]


def send(agent, text: str, *args: str) -> str:
    return agent.json("send", text, *args)["message_id"]


def deliveries(agent, message_id: str) -> dict[str, dict]:
    msg = agent.json("sent", "show", message_id)["message"]
    return {d["recipient"]: d for d in msg["deliveries"]}


def finished(proc, within: float) -> bool:
    try:
        proc.wait(timeout=within)
        return True
    except subprocess.TimeoutExpired:
        return False


# -- exchanging messages, threads, receipts -------------------------------------------------------


def test_alice_and_bob_exchange_messages_from_their_worktrees(pair):
    repo, alice, bob = pair
    r = alice.ok("send", "Can you review the login flow?", "--to", "@bob")
    # bob has no channel, wait, hooks or pane: the hint line says it is not yet delivered (issue 16)
    assert re.fullmatch(
        r"✓ Message sent: msg_[0-9A-Za-z]{26} → @bob\n  ⚠ not yet delivered to @bob: offline: .*\n",
        r.out,
    )

    r = bob.ok("inbox")
    assert "@alice → @bob" in r.out
    assert "  Can you review the login flow?" in r.out
    assert "Showing 1-1 of 1" in r.out

    send(bob, "Looks good, one nit in auth.py", "--to", "@alice")
    inbox = alice.json("inbox")
    assert contents(inbox) == ["Looks good, one nit in auth.py"]
    assert inbox["messages"][0]["agent_id"] == "bob"
    # Alice's own message is not in her inbox.
    assert all(m["agent_id"] != "alice" for m in inbox["messages"])


def test_a_reply_starts_a_thread_that_parent_and_replies_share(pair):
    repo, alice, bob = pair
    parent = send(alice, "Ready for review?", "--to", "@bob")
    assert bob.json("message", "get", parent)["message"]["thread_id"] is None

    r = bob.ok("reply", parent, "Yes, send it over")
    assert re.search(r"✓ Reply sent: msg_\w+ → @alice \(thread thr_\w+\)", r.out)

    reply = bob.json("reply", parent, "Actually, give me five minutes")
    assert MSG_ID.match(reply["message_id"])
    assert THR_ID.match(reply["thread_id"])
    assert reply["reply_to"] == parent

    # The parent joined the thread the first reply created; both replies are in it.
    thread = alice.json("message", "get", parent)["message"]["thread_id"]
    assert THR_ID.match(thread)
    assert reply["thread_id"] == thread
    inbox = alice.json("inbox", "--oldest")
    assert [(m["reply_to"], m["thread_id"]) for m in inbox["messages"]] == [
        (parent, thread),
        (parent, thread),
    ]
    assert "↳ reply to " + parent in alice.ok("message", "get", reply["message_id"]).out

    # Replying to a reply stays in the same thread and goes back to its author.
    back = alice.json("reply", reply["message_id"], "Sure")
    assert back["thread_id"] == thread
    got = bob.json("inbox", "--unread")["messages"][0]
    assert got["reply_to"] == reply["message_id"]
    assert got["thread_id"] == thread
    assert got["body"]["content"] == "Sure"


def test_send_into_an_existing_thread_with_thread_flag(pair):
    repo, alice, bob = pair
    parent = send(alice, "plan?", "--to", "@bob")
    thread = bob.json("reply", parent, "plan A")["thread_id"]
    mid = send(alice, "one more thing", "--to", "@bob", "--thread", thread)
    assert bob.json("message", "get", mid)["message"]["thread_id"] == thread


RAW_SEND = r"""
import json, sys
from thrum_engine.layout import Layout
from thrum_engine.rpc.client import Client, RpcError
client = Client(Layout.discover().socket_path).connect()
try:
    client.call("message.send", json.loads(sys.argv[1]))
except RpcError as exc:
    print(exc)
"""


def test_a_thread_that_does_not_exist_is_refused_and_nothing_is_sent(pair):
    repo, alice, bob = pair
    parent = send(alice, "plan?", "--to", "@bob")
    invented = "thr_01JZ0000000000000000000000"
    for bad, said in (
        (invented, f"no thread {invented}"),
        ("thr_bogus", "invalid thread id 'thr_bogus'"),
        (parent, f"invalid thread id {parent!r}"),  # a message's id is not its thread's
        ("", "invalid thread id ''"),  # not "no thread": the flag was given
    ):
        assert_error(alice.run("send", "one more thing", "--to", "@bob", "--thread", bad), said)
    assert_error(alice.run("reply", "msg_01JZ0000000000000000000000", "sure"), "no message msg_01JZ")
    # The engine refuses it too, for callers that skip the CLI (MCP, the console, scripts).
    params = {"caller": "alice", "body": "one more thing", "to": ["@bob"], "thread_id": invented}
    proc = run_python(alice, RAW_SEND, json.dumps(params))
    assert f"no thread {invented}" in proc.stdout, proc.stdout + proc.stderr
    assert contents(peek(bob)) == ["plan?"]
    assert [m["message_id"] for m in alice.json("sent")["messages"]] == [parent]


def test_an_empty_address_is_refused_as_empty_on_every_messaging_path(pair):
    """`--to ''` and `--to @` said "unknown recipient: @", `inbox --from ''` listed everything and
    `wait --from ''` waited for anyone: an empty name is one clear error, and nothing is sent."""
    repo, alice, bob = pair
    parent = send(alice, "plan?", "--to", "@bob")
    for args, said in (
        (["send", "hi", "--to", ""], "invalid recipient ''"),
        (["send", "hi", "--to", "@"], "invalid recipient '@'"),
        (["send", "hi", "--to", "@bob", "--to", " @ "], "invalid recipient ' @ '"),  # the whole list
        (["send", "hi", "--to", "@bob", "--mention", "@"], "invalid mention '@'"),
        (["send", "hi", "--to", "@bob", "--mention", ""], "invalid mention ''"),
        (["inbox", "--from", ""], "invalid --from ''"),
        (["inbox", "--from", "@"], "invalid --from '@'"),
        (["sent", "--to", ""], "invalid --to ''"),
        (["sent", "--to", "@"], "invalid --to '@'"),
        (["schedule", "create", "hi", "--to", "@", "--in", "1h"], "invalid recipient '@'"),
        (
            ["monitor", "start", "--name", "m1", "--match", "x", "--to", "", "--", "echo", "x"],
            "invalid --to ''",
        ),
        (
            ["monitor", "start", "--name", "m1", "--match", "x", "--to", "@", "--", "echo", "x"],
            "invalid --to '@'",
        ),
    ):
        assert_error(alice.run(*args), said, EMPTY_NAME)
    for flag in ("--from", "--mention"):  # `wait` keeps exit 1 for its timeout: errors are 2
        for name in ("", "@"):
            assert_error(
                bob.run("wait", flag, name, "--timeout", "5s"), f"invalid {flag} {name!r}", EMPTY_NAME, code=2
            )
    # The engine says the same to callers that skip the CLI (MCP, the console, scripts).
    for method, params, said in (
        ("message.send", {"body": "hi", "to": ["@"]}, "invalid recipient '@'"),
        ("message.inbox", {"from_agent": ""}, "invalid --from ''"),
        ("message.sent", {"to": "@"}, "invalid --to '@'"),
    ):
        said_back = raw_call(alice, method, params)
        assert said in said_back and EMPTY_NAME in said_back, said_back
    assert contents(peek(bob)) == ["plan?"]
    assert [m["message_id"] for m in alice.json("sent")["messages"]] == [parent]
    assert alice.json("schedule", "list")["schedules"] == []
    assert alice.json("monitor", "list") == []


def test_read_receipts_move_from_stored_to_seen_to_read_to_replied(pair):
    repo, alice, bob = pair
    mid = send(alice, "Please check the migration", "--to", "@bob")

    def state() -> str:
        sent = alice.json("sent")
        [msg] = [m for m in sent["messages"] if m["message_id"] == mid]
        [d] = msg["deliveries"]
        assert d["recipient"] == "bob"
        return d["state"]

    assert state() == "stored"
    assert "@bob stored" in alice.ok("sent").out

    peek(bob)  # bob glances at his unread mail: seen, not read
    assert state() == "seen"
    assert deliveries(alice, mid)["bob"]["seen_at"]
    assert deliveries(alice, mid)["bob"]["read_at"] is None

    bob.ok("inbox")  # listing reads
    assert state() == "read"
    assert "@bob read" in alice.ok("sent").out
    assert deliveries(alice, mid)["bob"]["read_at"]

    bob.ok("reply", mid, "Done, it is fine")
    assert state() == "replied"
    assert "@bob: replied" in alice.ok("sent", "show", mid).out
    assert deliveries(alice, mid)["bob"]["replied_at"]


def test_replying_marks_the_parent_read_even_unseen(pair):
    repo, alice, bob = pair
    mid = send(alice, "quick question", "--to", "@bob")
    bob.ok("reply", mid, "quick answer")
    d = deliveries(alice, mid)["bob"]
    assert d["state"] == "replied"
    assert d["read_at"] and d["seen_at"]
    assert peek(bob)["unread"] == 0


def test_sent_shows_each_recipient_separately(pair):
    repo, alice, bob = pair
    carol = repo.agent("carol", "tester")
    mid = send(alice, "status update", "--to", "@bob", "--to", "@carol")
    bob.ok("inbox")

    states = {r: d["state"] for r, d in deliveries(alice, mid).items()}
    assert states == {"bob": "read", "carol": "stored"}
    out = alice.ok("sent", "show", mid).out
    assert "@bob: read" in out and "@carol: stored" in out

    # `sent --unread`: messages some recipient has not read yet.
    assert [m["message_id"] for m in alice.json("sent", "--unread")["messages"]] == [mid]
    carol.ok("inbox")
    assert alice.json("sent", "--unread")["messages"] == []

    only_bob = send(alice, "just bob", "--to", "@bob")
    assert [m["message_id"] for m in alice.json("sent", "--to", "@carol")["messages"]] == [mid]
    assert [m["message_id"] for m in alice.json("sent", "--to", "@bob")["messages"]] == [only_bob, mid]


# -- --json shapes ---------------------------------------------------------------------------------


def test_send_json_is_a_message_id(pair):
    repo, alice, bob = pair
    r = alice.ok("send", "hi", "--to", "@bob", "--json")
    doc = assert_pretty_json(r.out)
    assert MSG_ID.match(doc["message_id"])
    assert r.err == ""


def test_inbox_json_shape(pair):
    repo, alice, bob = pair
    body = 'café ✓ 日本 "quoted" back\\slash\ttab\nsecond line'
    mid = send(alice, body, "--to", "@bob", "--format", "plain")
    r = bob.ok("inbox", "--json")
    doc = assert_pretty_json(r.out)
    assert {"messages", "total", "unread", "page", "page_size"} <= set(doc)
    assert (doc["total"], doc["page"]) == (1, 1)
    assert isinstance(doc["page_size"], int) and doc["page_size"] >= 1
    [m] = doc["messages"]
    assert {
        "message_id",
        "thread_id",
        "reply_to",
        "agent_id",
        "body",
        "created_at",
        "is_read",
        "deleted",
    } <= set(m)
    assert m["message_id"] == mid
    assert m["agent_id"] == "alice"
    assert m["body"] == {"format": "plain", "content": body}
    assert m["thread_id"] is None and m["reply_to"] is None
    assert m["deleted"] is False
    assert isinstance(m["is_read"], bool)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", m["created_at"])


INBOX_FIELDS = r"""
import json, sys
from thrum_engine.layout import Layout
from thrum_engine.rpc.client import Client, RpcError
c = Client(Layout.discover().socket_path, timeout=60).connect()
out = [c.call("message.inbox", {"caller": sys.argv[1], "unread": True, "fields": ["message_id", "body"]})]
try:
    c.call("message.inbox", {"caller": sys.argv[1], "fields": ["body", "password"]})
except RpcError as exc:
    out.append(exc.message)
print(json.dumps(out))
"""


def test_inbox_answers_only_the_keys_asked_for_and_the_human_view_shows_every_part(pair):
    """The human `thrum inbox` asks the engine for what it prints (`fields`), not the whole view."""
    repo, alice, bob = pair
    first = send(bob, "the schema", "--to", "@alice")
    reply = alice.json("reply", first, "Rebased\nsecond line")["message_id"]
    chip = send(alice, "Login is done", "--to", "@bob", "--ref", "bd:12")
    proc = run_python(bob, INBOX_FIELDS, "bob")
    assert proc.returncode == 0, proc.stderr
    page, refused = json.loads(proc.stdout)
    assert [set(m) for m in page["messages"]] == [{"message_id", "body"}] * 2
    assert [m["message_id"] for m in page["messages"]] == [chip, reply] and page["total"] == 2
    assert refused.startswith("invalid fields.1 for message.inbox") and "'is_read'" in refused
    out = bob.ok("inbox").out.split("\n")
    assert out[0].startswith(f"{chip}  @alice → @bob  ") and out[0].endswith(" [new] [bd-12]")
    assert out[1:4] == ["  Login is done", "", out[3]] and out[3].startswith(f"{reply}  @alice → @bob  ")
    assert out[3].endswith(" [new]")
    assert out[4:8] == [f"  ↳ reply to {first}", "  Rebased", "  second line", ""]
    assert out[8] == "Showing 1-2 of 2 · 0 unread"


def test_team_json_lists_members(pair):
    repo, alice, bob = pair
    r = alice.ok("team", "--json")
    doc = assert_pretty_json(r.out)
    members = {m["name"]: m for m in doc["members"]}
    assert set(members) == {"alice", "bob"}
    assert members["alice"]["role"] == "implementer"
    assert members["alice"]["module"] == "auth"
    assert members["bob"]["role"] == "reviewer"
    assert members["bob"]["branch"] == "feature/bob"
    for m in members.values():
        assert m["presence"] in ("online", "idle", "working", "blocked", "stuck", "offline")


def test_team_shows_unread_counts(pair):
    repo, alice, bob = pair
    send(alice, "one", "--to", "@bob")
    send(alice, "two", "--to", "@bob")
    members = {m["name"]: m for m in alice.json("team")["members"]}
    assert members["bob"]["unread"] == 2
    assert "2 unread" in alice.ok("team").out
    bob.ok("message", "read", "--all")
    members = {m["name"]: m for m in alice.json("team")["members"]}
    assert members["bob"]["unread"] == 0


def test_every_json_document_is_pretty_printed_with_sorted_keys(pair):
    repo, alice, bob = pair
    mid = send(alice, "naïve résumé — ✓", "--to", "@bob")
    for agent, args in [
        (alice, ["sent"]),
        (alice, ["sent", "show", mid]),
        (bob, ["message", "get", mid]),
        (bob, ["inbox", "--unread"]),
        (bob, ["inbox"]),
        (alice, ["team"]),
        (alice, ["whoami"]),
        (alice, ["agent", "list"]),
        (alice, ["session", "list"]),
        (alice, ["status"]),
        (bob, ["message", "read", "--all"]),
        (alice, ["purge", "--before", "1h"]),
    ]:
        r = agent.ok(*args, "--json")
        assert_pretty_json(r.out)


# -- inbox -----------------------------------------------------------------------------------------


def test_inbox_lists_newest_first_and_oldest_first_on_request(pair):
    repo, alice, bob = pair
    for text in ("first", "second", "third"):
        send(alice, text, "--to", "@bob")
    assert contents(peek(bob)) == ["third", "second", "first"]
    assert contents(bob.json("inbox", "--unread", "--oldest")) == ["first", "second", "third"]
    out = bob.ok("inbox", "--oldest").out
    assert out.index("first") < out.index("second") < out.index("third")


def test_listing_the_inbox_marks_it_read_but_unread_only_peeks(pair):
    repo, alice, bob = pair
    send(alice, "don't lose me", "--to", "@bob")

    first = bob.json("inbox", "--unread")
    assert contents(first) == ["don't lose me"]
    assert first["unread"] == 1
    second = bob.json("inbox", "--unread")  # still there: peeking marks nothing read
    assert contents(second) == ["don't lose me"]
    assert second["unread"] == 1

    assert "don't lose me" in bob.ok("inbox").out  # a full listing reads it
    assert bob.ok("inbox", "--unread").out == "No unread messages.\n"
    after = bob.json("inbox")
    assert after["unread"] == 0
    assert after["total"] == 1
    assert after["messages"][0]["is_read"] is True


def test_inbox_filters_by_sender_scope_and_mentions(pair):
    repo, alice, bob = pair
    carol = repo.agent("carol", "tester")
    send(alice, "auth change", "--to", "@bob", "--scope", "module:auth")
    send(alice, "ui change", "--to", "@bob", "--scope", "module:ui")
    send(carol, "test results", "--to", "@bob")
    send(carol, "@bob look here", "--to", "@bob", "--mention", "@bob")

    assert contents(bob.json("inbox", "--unread", "--from", "@alice")) == ["ui change", "auth change"]
    assert contents(bob.json("inbox", "--unread", "--from", "@carol")) == ["@bob look here", "test results"]
    assert bob.json("inbox", "--unread", "--from", "@bob")["messages"] == []

    scoped = bob.json("inbox", "--unread", "--scope", "module:auth")
    assert contents(scoped) == ["auth change"]
    assert scoped["total"] == 1
    assert scoped["messages"][0]["scopes"] == [{"type": "module", "value": "auth"}]

    assert contents(bob.json("inbox", "--unread", "--mentions")) == ["@bob look here"]
    # None of that was a full listing: all four are still unread.
    assert peek(bob)["unread"] == 4


def test_mention_of_someone_not_addressed_reaches_them(pair):
    repo, alice, bob = pair
    carol = repo.agent("carol", "tester")
    mid = send(alice, "FYI carol", "--to", "@bob", "--mention", "@carol")
    assert [m["message_id"] for m in carol.json("inbox", "--unread", "--mentions")["messages"]] == [mid]
    assert bob.json("inbox", "--unread", "--mentions")["messages"] == []
    assert contents(peek(bob)) == ["FYI carol"]


def test_inbox_pages_through_messages(pair):
    repo, alice, bob = pair
    for i in range(5):
        send(alice, f"m{i}", "--to", "@bob")

    page1 = bob.json("inbox", "--unread", "--page-size", "2")
    assert contents(page1) == ["m4", "m3"]
    assert (page1["total"], page1["page"], page1["page_size"]) == (5, 1, 2)
    page2 = bob.json("inbox", "--unread", "--page-size", "2", "--page", "2")
    assert contents(page2) == ["m2", "m1"]
    assert page2["page"] == 2
    page3 = bob.json("inbox", "--unread", "--page-size", "2", "--page", "3")
    assert contents(page3) == ["m0"]
    assert bob.json("inbox", "--unread", "--page-size", "2", "--page", "4")["messages"] == []
    assert "Showing 5-5 of 5" in bob.ok("inbox", "--unread", "--page-size", "2", "--page", "3").out

    assert contents(bob.json("inbox", "--unread", "--limit", "3")) == ["m4", "m3", "m2"]
    assert contents(bob.json("inbox", "--unread", "--limit", "2", "--oldest")) == ["m0", "m1"]

    # A page of a listing reads only what it showed.
    bob.ok("inbox", "--limit", "2")
    assert contents(peek(bob)) == ["m2", "m1", "m0"]


def test_inbox_page_flags_need_positive_numbers(pair):
    repo, alice, bob = pair
    assert_error(bob.run("inbox", "--page-size", "0"), "--page-size")
    assert_error(bob.run("inbox", "--page", "x"), "--page")


def test_message_read_all_then_nothing_left(pair):
    repo, alice, bob = pair
    for text in ("a", "b", "c"):
        send(alice, text, "--to", "@bob")
    assert bob.ok("message", "read", "--all").out == "✓ Marked 3 messages as read\n"
    assert bob.ok("message", "read", "--all").out == "No unread messages.\n"
    assert peek(bob)["unread"] == 0
    assert bob.ok("inbox", "--unread").out == "No unread messages.\n"


def test_message_read_all_ignores_messages_deleted_by_their_author(pair):
    repo, alice, bob = pair
    mid = send(alice, "sent by mistake", "--to", "@bob")
    alice.ok("message", "delete", mid, "--force")
    assert peek(bob)["unread"] == 0
    # Nothing unread is visible to bob, so there is nothing to mark.
    assert bob.ok("message", "read", "--all").out == "No unread messages.\n"


def test_message_read_by_id_marks_only_that_one(pair):
    repo, alice, bob = pair
    keep = send(alice, "keep unread", "--to", "@bob")
    done = send(alice, "mark me", "--to", "@bob")
    assert bob.ok("message", "read", done).out == "✓ Marked 1 message as read\n"
    unread = peek(bob)
    assert [m["message_id"] for m in unread["messages"]] == [keep]
    assert deliveries(alice, done)["bob"]["state"] == "read"
    # A message that is not in my inbox cannot be marked.
    mine = send(bob, "bob's own", "--to", "@alice")
    assert_error(bob.run("message", "read", mine), mine)
    assert_error(bob.run("message", "read"), "--all")


# -- addressing ------------------------------------------------------------------------------------


def test_send_to_a_name_reaches_only_that_agent(pair):
    repo, alice, bob = pair
    carol = repo.agent("carol", "tester")
    send(alice, "for bob only", "--to", "@bob")
    assert contents(peek(bob)) == ["for bob only"]
    assert peek(carol)["messages"] == []


def test_send_to_a_role_reaches_every_holder_of_it(pair):
    repo, alice, bob = pair
    carol = repo.agent("carol", "reviewer")
    dave = repo.agent("dave", "tester")
    r = alice.ok("send", "reviewers, please look", "--to", "@reviewer")
    assert r.out.splitlines()[0].endswith("→ @bob, @carol")
    assert contents(peek(bob)) == ["reviewers, please look"]
    assert contents(peek(carol)) == ["reviewers, please look"]
    assert peek(dave)["messages"] == []
    # A sender holding the role does not mail itself.
    send(bob, "fellow reviewers", "--to", "@reviewer")
    assert contents(peek(bob)) == ["reviewers, please look"]
    assert contents(peek(carol))[0] == "fellow reviewers"


def test_everyone_and_broadcast_reach_all_but_the_sender(pair):
    repo, alice, bob = pair
    carol = repo.agent("carol", "tester")
    send(alice, "via --to @everyone", "--to", "@everyone")
    send(alice, "via --broadcast", "--broadcast")
    for agent in (bob, carol):
        assert contents(peek(agent)) == ["via --broadcast", "via --to @everyone"]
        assert all(m["broadcast"] for m in peek(agent)["messages"])
    assert peek(alice)["messages"] == []
    assert alice.json("inbox")["total"] == 0


def test_an_agent_registered_after_a_broadcast_does_not_inherit_it(pair):
    repo, alice, bob = pair
    send(alice, "before dave", "--broadcast")
    dave = repo.agent("dave", "tester")
    assert dave.json("inbox")["total"] == 0
    assert peek(dave)["unread"] == 0
    send(alice, "after dave", "--broadcast")
    assert contents(dave.json("inbox")) == ["after dave"]
    assert contents(peek(bob)) == ["after dave", "before dave"]


def test_duplicate_recipients_get_one_copy(pair):
    repo, alice, bob = pair
    r = alice.json("send", "once", "--to", "@bob", "--to", "bob", "--to", "@reviewer")
    assert list(deliveries(alice, r["message_id"])) == ["bob"]
    assert peek(bob)["total"] == 1


# -- wait ------------------------------------------------------------------------------------------


def test_wait_wakes_up_when_another_agent_sends(pair):
    repo, alice, bob = pair
    with background(bob, "wait", "--timeout", "20s", "--json") as proc:
        sent: list[str] = []
        deadline = time.monotonic() + 15
        # The waiter registers asynchronously; a send that beats it is simply not "new",
        # so keep nudging until the waiter has been woken (bounded).
        while time.monotonic() < deadline:
            sent.append(send(alice, f"wake up {len(sent)}", "--to", "@bob"))
            if finished(proc, 0.5):
                break
        assert finished(proc, 20)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    doc = assert_pretty_json(out)
    assert doc["status"] == "received"
    [msg] = doc["messages"]
    assert msg["message_id"] in sent
    assert msg["agent_id"] == "alice"
    assert msg["body"]["content"].startswith("wake up")


def test_wait_prints_the_message_for_humans(pair):
    repo, alice, bob = pair
    send(alice, "already here", "--to", "@bob")
    r = bob.run("wait", "--timeout", "5s", "--after", "-30s")
    assert r.code == 0, r.err
    assert "@alice → @bob" in r.out
    assert "  already here" in r.out


def test_wait_never_returns_my_own_sends(pair):
    repo, alice, bob = pair
    with background(bob, "wait", "--timeout", "2s", "--json") as proc:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and proc.poll() is None:
            send(bob, "talking to myself", "--to", "@alice")
            send(bob, "and to the team", "--broadcast")
            time.sleep(0.2)
        assert finished(proc, 30)
        out, _err = proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert json.loads(out)["status"] == "timeout"
    # With a look-back window too.
    r = bob.run("wait", "--timeout", "1s", "--after", "-30s")
    assert r.code == 1


def test_wait_after_a_negative_offset_returns_a_message_sent_just_before(pair):
    repo, alice, bob = pair
    mid = send(alice, "sent before you waited", "--to", "@bob")
    r = bob.run("wait", "--timeout", "5s", "--after", "-30s", "--json")
    assert r.code == 0, r.err
    doc = assert_pretty_json(r.out)
    assert doc["status"] == "received"
    assert [m["message_id"] for m in doc["messages"]] == [mid]
    # The wait counts as seen, not read.
    assert deliveries(alice, mid)["bob"]["state"] == "seen"


def test_wait_from_filter_ignores_other_senders(pair):
    repo, alice, bob = pair
    carol = repo.agent("carol", "tester")
    send(alice, "from alice", "--to", "@bob")
    assert bob.run("wait", "--timeout", "1s", "--after", "-30s", "--from", "@carol").code == 1
    mid = send(carol, "from carol", "--to", "@bob")
    doc = bob.json("wait", "--timeout", "5s", "--after", "-30s", "--from", "@carol")
    assert [m["message_id"] for m in doc["messages"]] == [mid]


def test_wait_times_out_with_exit_1(pair):
    repo, alice, bob = pair
    r = bob.run("wait", "--timeout", "1s")
    assert r.code == 1
    assert r.out == ""
    assert "1s" in r.err and "Error" not in r.err
    r = bob.run("wait", "--timeout", "1s", "--json")
    assert r.code == 1
    doc = assert_pretty_json(r.out)
    assert doc["status"] == "timeout"
    assert doc["messages"] == []


def test_wait_with_a_bad_duration_exits_2(pair):
    repo, alice, bob = pair
    assert_error(bob.run("wait", "--timeout", "soon"), "--timeout", code=2)
    assert_error(bob.run("wait", "--after", "yesterday"), "--after", code=2)


def test_wait_with_an_unknown_flag_exits_2(pair):
    """CLI.md: `wait` uses exit 1 for a timeout only; any error is 2, so scripts can tell them apart."""
    repo, alice, bob = pair
    assert_error(bob.run("wait", "--timeout", "1s", "--bogus"), "unknown flag: --bogus", code=2)


# -- message get / edit / delete -------------------------------------------------------------------


def test_message_get_shows_one_message(pair):
    repo, alice, bob = pair
    mid = send(alice, "line one\nline two", "--to", "@bob")
    out = bob.ok("message", "get", mid).out
    assert out.startswith(mid + "  @alice → @bob")
    assert "  line one\n  line two\n" in out
    msg = bob.json("message", "get", mid)["message"]
    assert msg["message_id"] == mid
    assert msg["body"]["content"] == "line one\nline two"
    # Getting is not reading.
    assert peek(bob)["unread"] == 1
    assert_error(bob.run("message", "get", "msg_nope"), "msg_nope")
    assert_error(bob.run("message", "get", "msg_" + "0" * 26), "msg_" + "0" * 26)


def test_only_the_author_can_edit_a_message(pair):
    repo, alice, bob = pair
    mid = send(alice, "meet at 3", "--to", "@bob")
    assert_error(bob.run("message", "edit", mid, "meet at 4"), "@alice")
    assert bob.json("message", "get", mid)["message"]["body"]["content"] == "meet at 3"

    assert alice.ok("message", "edit", mid, "meet at 5").out == f"✓ Message edited: {mid}\n"
    msg = bob.json("message", "get", mid)["message"]
    assert msg["body"]["content"] == "meet at 5"
    assert msg["updated_at"]
    assert contents(peek(bob)) == ["meet at 5"]


def test_only_the_author_can_delete_and_only_with_force(pair):
    repo, alice, bob = pair
    mid = send(alice, "oops, wrong person", "--to", "@bob")
    assert_error(bob.run("message", "delete", mid, "--force"), "@alice")
    assert_error(alice.run("message", "delete", mid), "--force")
    assert contents(peek(bob)) == ["oops, wrong person"]

    assert alice.ok("message", "delete", mid, "--force").out == f"✓ Message deleted: {mid}\n"
    assert peek(bob)["messages"] == []
    assert bob.json("inbox")["total"] == 0
    gone = bob.json("message", "get", mid)["message"]
    assert gone["deleted"] is True
    assert gone["body"]["content"] == ""
    assert_error(alice.run("message", "edit", mid, "resurrect"), "deleted")


# -- durability ------------------------------------------------------------------------------------


def test_everything_survives_a_daemon_restart(pair):
    repo, alice, bob = pair
    bob.ok("session", "set-intent", "reviewing auth")
    parent = send(alice, "please review", "--to", "@bob")
    reply = bob.json("reply", parent, "on it")
    unread = send(alice, "still unread", "--to", "@bob")
    peek(bob)
    bob.ok("message", "read", parent)
    before = {
        "bob_inbox": bob.json("inbox", "--unread"),
        "sent": alice.json("sent"),
        "agents": alice.json("agent", "list"),
        "sessions": alice.json("session", "list"),
        "parent": alice.json("message", "get", parent),
    }
    old_pid = repo.daemon_pid()

    r = repo.run("daemon", "restart")
    assert r.code == 0, r.err
    assert repo.daemon_pid() != old_pid

    assert bob.json("inbox", "--unread") == before["bob_inbox"]
    assert contents(before["bob_inbox"]) == ["still unread"]
    assert alice.json("sent") == before["sent"]
    assert {
        d["recipient"]: d["state"] for d in alice.json("sent", "show", parent)["message"]["deliveries"]
    } == {"bob": "replied"}
    assert deliveries(alice, unread)["bob"]["state"] == "seen"
    assert alice.json("agent", "list") == before["agents"]
    assert alice.json("session", "list") == before["sessions"]
    assert alice.json("message", "get", parent) == before["parent"]
    assert before["parent"]["message"]["thread_id"] == reply["thread_id"]
    sessions = {s["agent_id"]: s for s in alice.json("session", "list", "--active")["sessions"]}
    assert sessions["bob"]["intent"] == "reviewing auth"
    # The thread continues after the restart.
    assert alice.json("reply", reply["message_id"], "thanks")["thread_id"] == reply["thread_id"]
    # And the identities still work without re-running quickstart.
    assert alice.json("whoami")["name"] == "alice"


# -- bad input -------------------------------------------------------------------------------------


def test_unknown_recipient_is_refused_and_nothing_is_stored(pair):
    repo, alice, bob = pair
    assert_error(alice.run("send", "hello?", "--to", "@x"), "unknown recipient: @x")
    assert alice.json("sent")["messages"] == []
    assert bob.json("inbox")["total"] == 0


def test_a_list_with_one_unknown_recipient_is_refused_whole(pair):
    repo, alice, bob = pair
    line = assert_error(alice.run("send", "hello all", "--to", "@bob", "--to", "@ghost"), "unknown recipient")
    assert "@ghost" in line and "@bob" not in line
    assert bob.json("inbox")["total"] == 0
    assert alice.json("sent")["messages"] == []
    # An unknown mention is refused the same way.
    assert_error(alice.run("send", "hey", "--to", "@bob", "--mention", "@ghost"), "@ghost")
    assert bob.json("inbox")["total"] == 0


def test_unknown_flag_is_named(pair):
    repo, alice, bob = pair
    assert_error(alice.run("send", "hi", "--to", "@bob", "--x"), "unknown flag: --x")
    assert_error(alice.run("inbox", "--frmo", "@bob"), "unknown flag: --frmo")
    assert bob.json("inbox")["total"] == 0


def test_broadcast_and_to_are_mutually_exclusive(pair):
    repo, alice, bob = pair
    assert_error(alice.run("send", "hi", "--broadcast", "--to", "@bob"), "mutually exclusive")
    assert bob.json("inbox")["total"] == 0


def test_stdin_and_text_are_mutually_exclusive(pair):
    repo, alice, bob = pair
    assert_error(alice.run("send", "typed", "--to", "@bob", "--stdin", input="piped"), "mutually exclusive")
    assert bob.json("inbox")["total"] == 0
    # Either alone works.
    r = alice.json("send", "--to", "@bob", "--stdin", input="piped body\nwith two lines\n")
    assert (
        bob.json("message", "get", r["message_id"])["message"]["body"]["content"]
        == "piped body\nwith two lines\n"
    )


def test_inbox_limit_and_page_size_are_mutually_exclusive(pair):
    repo, alice, bob = pair
    assert_error(bob.run("inbox", "--limit", "2", "--page-size", "2"), "mutually exclusive")


def test_a_message_needs_a_recipient_and_a_body(pair):
    repo, alice, bob = pair
    assert_error(alice.run("send", "to whom?"), "recipient")
    assert_error(alice.run("send", "--to", "@bob"), "body")
    assert_error(alice.run("send", "   ", "--to", "@bob"), "empty")
    assert_error(alice.run("send", "{not json", "--to", "@bob", "--format", "json"), "JSON")
    assert bob.json("inbox")["total"] == 0


def test_body_over_the_configured_cap_is_refused(pair):
    repo, alice, bob = pair
    config = repo.path / ".thrum" / "config.json"
    current = json.loads(config.read_text() or "{}")
    current["messages"] = {"max_body_bytes": 100}
    config.write_text(json.dumps(current))
    assert repo.run("daemon", "restart").code == 0

    line = assert_error(alice.run("send", "x" * 101, "--to", "@bob"), "101", "100")
    assert "max_body_bytes" in line
    assert bob.json("inbox")["total"] == 0
    # Multi-byte characters count as bytes: 34 × "✓" is 102 bytes.
    assert_error(alice.run("send", "✓" * 34, "--to", "@bob"), "102")
    assert bob.json("inbox")["total"] == 0

    mid = send(alice, "x" * 100, "--to", "@bob")
    assert_error(alice.run("message", "edit", mid, "y" * 101), "100")
    assert_error(bob.run("reply", mid, "z" * 101), "100")
    assert contents(bob.json("inbox")) == ["x" * 100]


def test_body_cap_from_the_environment_when_the_engine_starts(pair):
    repo, alice, bob = pair
    repo.stop()
    r = alice.run("send", "y" * 101, "--to", "@bob", THRUM_MESSAGES__MAX_BODY_BYTES="100")
    assert_error(r, "100")
    assert bob.json("inbox")["total"] == 0  # the engine keeps the cap it started with
    assert_error(alice.run("send", "y" * 101, "--to", "@bob"), "100")
    send(alice, "short enough", "--to", "@bob")
    assert bob.json("inbox")["total"] == 1


def test_shell_metacharacters_are_stored_literally_and_never_run(pair, tmp_path):
    repo, alice, bob = pair
    marker = tmp_path / "pwned"
    bodies = [
        f"$(touch {marker}1)",
        f"`touch {marker}2`",
        f"hello; touch {marker}3",
        f"a && touch {marker}4 | cat > {marker}5",
        "'single' \"double\" $HOME ${PATH} \\n *.py ~",
    ]
    ids = [send(alice, body, "--to", "@bob") for body in bodies]
    ids.append(alice.json("send", "--to", "@bob", "--stdin", input=f"$(touch {marker}6)")["message_id"])
    inbox = bob.json("inbox", "--oldest")
    assert contents(inbox) == bodies + [f"$(touch {marker}6)"]
    assert [m["message_id"] for m in inbox["messages"]] == ids
    assert f"  $(touch {marker}1)" in bob.ok("message", "get", ids[0]).out

    # Metacharacters in addresses are just unknown names.
    assert_error(alice.run("send", "x", "--to", f"@$(touch {marker}7)"), "unknown recipient")
    r = bob.json("reply", ids[2], f"`touch {marker}8`")
    assert alice.json("message", "get", r["message_id"])["message"]["body"]["content"] == f"`touch {marker}8`"
    assert not list(tmp_path.glob("pwned*"))


def test_escape_sequences_from_another_agent_never_reach_the_terminal(pair):
    """A body is printed to the operator's terminal: an OSC 52 in it wrote the clipboard, a CSI
    cleared the screen, a CR overwrote the line with a forged one. Human output shows them as
    visible pictures; `--json` keeps the exact text (escaped, as JSON does)."""
    repo, alice, bob = pair
    body = "hi \x1b]52;c;ZXZpbA==\x07 \x1b[2J\rfrom @operator: ok \x9b1m end\nline two\ttab"
    mid = send(alice, body, "--to", "@bob")
    shown = "hi ␛]52;c;ZXZpbA==␇ ␛[2J␍from @operator: ok \\x9b1m end"
    outs = {
        "inbox": bob.ok("inbox", "--unread").out,
        "message get": bob.ok("message", "get", mid).out,
        "wait": bob.ok("wait", "--timeout", "5s", "--after", "-60s").out,
        "prime": bob.ok("prime").out,
        "sent": alice.ok("sent").out,
        "sent show": alice.ok("sent", "show", mid).out,
    }
    for what, out in outs.items():
        assert not any(c in out for c in "\x1b\x07\r\x9b"), what
    for what in ("inbox", "message get", "wait"):
        assert shown in outs[what] and "line two\ttab" in outs[what], what
    assert bob.json("message", "get", mid)["message"]["body"]["content"] == body


# -- purge -----------------------------------------------------------------------------------------


def test_purge_previews_then_deletes_with_confirm(pair):
    repo, alice, bob = pair
    send(alice, "old news", "--to", "@bob")
    send(alice, "older news", "--to", "@bob")

    assert alice.ok("purge", "--before", "1h").out == "No messages to purge.\n"
    preview = alice.json("purge", "--before", "0s")
    assert (preview["messages"], preview["purged"]) == (2, False)
    out = alice.ok("purge", "--before", "0s").out
    assert "2 messages" in out and "--confirm" in out
    assert bob.json("inbox", "--unread")["total"] == 2  # a preview deletes nothing

    assert_error(alice.run("purge", "--before", "0s", "--confirm"), "only the operator")  # it hits everyone
    r = repo.ok("purge", "--before", "0s", "--confirm")  # the main checkout's caller is the operator
    assert r.out.startswith("✓ Purged 2 messages")
    assert bob.json("inbox")["total"] == 0
    assert alice.json("sent")["messages"] == []
    assert alice.ok("purge", "--before", "0s").out == "No messages to purge.\n"


def test_purge_needs_a_cutoff(pair):
    repo, alice, bob = pair
    send(alice, "keep", "--to", "@bob")
    assert_error(alice.run("purge"), "--before")
    assert_error(alice.run("purge", "--before", "someday"), "--before")
    assert bob.json("inbox", "--unread")["total"] == 1


def test_purge_refuses_a_cutoff_in_the_future(pair):
    """A future cutoff would take the messages sent after the purge too: refused, nothing written."""
    repo, alice, bob = pair
    send(alice, "keep", "--to", "@bob")
    events = repo.json("doctor")["journal"]["events"]
    for when in ("2099-01-01", "2099-01-01T00:00:00Z"):
        for confirm in ((), ("--confirm",)):
            assert_error(repo.run("purge", "--before", when, *confirm), "in the future")
    assert repo.json("doctor")["journal"]["events"] == events
    assert bob.json("inbox", "--unread")["total"] == 1


def test_purge_before_and_all_are_mutually_exclusive(pair):
    repo, alice, bob = pair
    send(alice, "keep", "--to", "@bob")
    assert_error(alice.run("purge", "--before", "1d", "--all", "--confirm"), "mutually exclusive")
    assert bob.json("inbox", "--unread")["total"] == 1


def test_peeking_again_writes_nothing_new_to_the_journal(pair):
    repo, alice, bob = pair
    alice.ok("send", "peek at me", "--to", "@bob")
    bob.ok("inbox", "--unread")  # first peek: the message is now `seen`
    events = bob.json("doctor")["journal"]["events"]
    for _ in range(3):
        assert [m["body"]["content"] for m in bob.json("inbox", "--unread")["messages"]] == ["peek at me"]
    assert bob.json("doctor")["journal"]["events"] == events


def test_the_fields_an_inbox_may_ask_for_are_the_keys_of_a_message_view():
    """`model.MessageField` names every key `message_view` can give (a new key is askable the day it
    is added), and the human inbox asks only for keys that exist (`cli.messaging.SHOWN`)."""
    import typing

    from thrum_engine.cli.messaging import SHOWN
    from thrum_engine.messaging import message_view
    from thrum_engine.model import MessageField

    row = {
        "id": "msg_1", "thread_id": "thr_1", "reply_to": None, "author": "alice", "format": "markdown",
        "content": "hi", "structured": '{"a": 1}', "created_at": "t", "updated_at": None, "deleted": 0,
        "broadcast": 0, "addressed": '["@bob"]', "mentions": "[]", "scopes": "[]",
        "refs": '[{"type": "bd", "value": "bd-1"}]', "meta": "{}", "read_at": None,
    }  # fmt: skip
    view = message_view(row)
    assert "tasks" in view and "meta" in view and "is_read" in view  # every optional key is present
    assert set(view) == set(typing.get_args(MessageField))
    assert set(SHOWN) <= set(typing.get_args(MessageField))


def test_a_valued_flag_given_twice_with_two_values_is_refused(pair):
    """The last one winning silently dropped what the caller meant (walk C, C1); the same value
    twice is harmless."""
    repo, alice, bob = pair
    assert_error(
        alice.run("send", "hi", "--to", "@bob", "--format", "plain", "--format", "markdown"),
        "--format given twice ('plain' and 'markdown'): give it once",
    )
    assert bob.json("inbox")["total"] == 0
    alice.ok("send", "hi", "--to", "@bob", "--format", "plain", "--format=plain")
    assert bob.json("inbox")["messages"][0]["body"]["format"] == "plain"


def test_message_edit_takes_no_format(pair):
    """An edit keeps the message's format (the event carries the text only): `--format` was accepted
    and ignored, even `--format bogus` (walk C, B4)."""
    repo, alice, bob = pair
    sent = alice.json("send", "first", "--to", "@bob")
    assert_error(
        alice.run("message", "edit", sent["message_id"], "second", "--format", "json"),
        "unknown flag: --format",
    )
    assert alice.json("message", "get", sent["message_id"])["message"]["body"]["content"] == "first"
    assert "--format" not in alice.ok("message", "edit", "--help").out


def test_a_page_past_the_last_says_so(pair):
    """`inbox --page 999` said "No unread messages." with mail unread (walk C, C7)."""
    repo, alice, bob = pair
    for i in range(3):
        alice.ok("send", f"m{i}", "--to", "@bob")
    out = bob.ok("inbox", "--page", "999", "--page-size", "2").out
    assert out == "Nothing from 1997 on: 3 messages in all · 3 unread\n", out
    assert bob.json("inbox", "--unread")["unread"] == 3  # nothing on the page: nothing marked read


def test_a_filter_naming_nobody_is_an_error_not_an_empty_answer(pair):
    """`inbox --from @nosuch` answered "No messages." and `wait --from @nosuch` waited out its whole
    timeout (walk C, B3): a name no agent has and no message was from (or to) is refused at once.
    A deleted agent's history still filters."""
    repo, alice, bob = pair
    alice.ok("send", "hello", "--to", "@bob")
    for args, code in (
        (("inbox", "--from", "@nosuch"), 1),
        (("sent", "--to", "@nosuch"), 1),
        (("wait", "--from", "@nosuch", "--timeout", "60"), 2),  # wait keeps exit 1 for its timeout
        (("wait", "--mention", "@nosuch", "--timeout", "60"), 2),
    ):
        assert_error(bob.run(*args), "@nosuch: no agent by that name", code=code)
    assert bob.json("inbox", "--unread")["unread"] == 1  # nothing was marked
    alice.ok("agent", "delete", "alice", "--force")
    assert [m["body"]["content"] for m in bob.json("inbox", "--from", "@alice")["messages"]] == ["hello"]

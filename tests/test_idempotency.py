"""Idempotent sends (issue 16, item 3): the same key stores one message, across a restart, a
rebuild, the MCP tool, and a kill -9 between the journal write and the answer (the CLI's retry)."""

from __future__ import annotations

import asyncio
import json

import pytest

from conftest import assert_error, is_alive, projection_rows, shard_file, start_inproc_engine, wait_for
from test_mcp import mcp_client, text
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.writer import encode
from thrum_engine.store.apply import ops_for
from thrum_engine.store.lines import _PLAIN_MESSAGE, ops_for_lines
from thrum_engine.store.validate import EventCheck


def creates(repo, author: str, body: str) -> list[dict]:
    lines = [json.loads(x) for x in shard_file(repo.path, author).read_text().splitlines()]
    return [e for e in lines if e["type"] == "message.create" and e["data"]["content"] == body]


def bodies(agent) -> list[str]:
    return [m["body"]["content"] for m in agent.json("inbox", "--page-size", "100")["messages"]]


def test_the_same_key_twice_stores_one_message(pair):
    repo, alice, bob = pair
    first = alice.json("send", "--to", "@bob", "--idempotency-key", "deploy-42", "deployed")
    again = alice.json("send", "--to", "@bob", "--idempotency-key", "deploy-42", "deployed")
    assert again["message_id"] == first["message_id"] and again["duplicate"] is True
    assert "duplicate" not in first
    assert (
        "nothing new stored"
        in alice.ok("send", "--to", "@bob", "--idempotency-key", "deploy-42", "deployed").out
    )
    assert bodies(bob) == ["deployed"]
    (line,) = creates(repo, "alice", "deployed")
    assert line["data"]["idempotency_key"] == "deploy-42"
    # the key is the sender's: bob may use the same one
    assert (
        bob.json("send", "--to", "@alice", "--idempotency-key", "deploy-42", "ok")["message_id"]
        != first["message_id"]
    )
    # a reply with a key, twice
    r1 = bob.json("reply", first["message_id"], "--idempotency-key", "re-1", "thanks")
    r2 = bob.json("reply", first["message_id"], "--idempotency-key", "re-1", "thanks")
    assert r1["message_id"] == r2["message_id"] and r2["duplicate"] is True
    assert len(creates(repo, "bob", "thanks")) == 1
    # without a key every send is its own message (the CLI makes a key per invocation)
    a = alice.json("send", "--to", "@bob", "twice")
    b = alice.json("send", "--to", "@bob", "twice")
    assert a["message_id"] != b["message_id"]
    keys = {e["data"]["idempotency_key"] for e in creates(repo, "alice", "twice")}
    assert len(keys) == 2 and all(k.startswith("cli-") and k[4:].isalpha() for k in keys)
    raw = [x for x in shard_file(repo.path, "alice").read_bytes().splitlines() if b'"twice"' in x]
    assert len(raw) == 2 and all(_PLAIN_MESSAGE(x.decode()) is not None for x in raw)  # the fast rebuild path
    assert_error(
        alice.run("send", "--to", "@bob", "--idempotency-key", "has space", "x"), "invalid idempotency key"
    )
    assert_error(
        alice.run("send", "--to", "@bob", "--idempotency-key", "k" * 201, "x"), "invalid idempotency key"
    )


def test_a_key_reused_for_another_text_is_refused_and_a_repeat_is_not_called_sent(pair):
    repo, alice, bob = pair
    first = alice.json("send", "--to", "@bob", "--idempotency-key", "k1", "hello")
    r = alice.run("send", "--to", "@bob", "--idempotency-key", "k1", "a different message")
    assert_error(r, "already used for another message")
    assert first["message_id"] in r.err
    assert_error(alice.run("reply", first["message_id"], "--idempotency-key", "k1", "re"), "already used")
    assert bodies(bob) == ["hello"]
    assert not creates(repo, "alice", "a different message")
    # the repeat's answer is the first message, whose delivery it does not know: not "sent"
    out = alice.ok("send", "--to", "@bob", "--idempotency-key", "k1", "hello").out
    assert out.startswith("✓ Already stored with this key: " + first["message_id"]), out
    assert "Message sent" not in out and "nothing new stored" in out
    re1 = bob.json("reply", first["message_id"], "--idempotency-key", "r1", "ok")
    out = bob.ok("reply", first["message_id"], "--idempotency-key", "r1", "ok").out
    assert out.startswith("✓ Already stored with this key: " + re1["message_id"]), out


def test_keys_survive_a_restart_and_a_rebuild(pair):
    repo, alice, bob = pair
    first = alice.json("send", "--to", "@bob", "--idempotency-key", "nightly", "report")
    repo.stop()
    assert alice.json("send", "--to", "@bob", "--idempotency-key", "nightly", "report")["duplicate"] is True
    repo.ok("doctor", "rebuild")
    again = alice.json("send", "--to", "@bob", "--idempotency-key", "nightly", "report")
    assert again["message_id"] == first["message_id"] and again["duplicate"] is True
    assert bodies(bob) == ["report"]
    assert len(creates(repo, "alice", "report")) == 1


def test_a_kill_between_the_journal_write_and_the_answer_then_the_cli_retry_stores_one(pair, tmp_path):
    repo, alice, bob = pair
    trigger = tmp_path / "exit-after-fsync"
    fault = {"THRUM_FAULT_EXIT_AFTER_FSYNC": str(trigger)}
    repo.stop()
    alice.ok("daemon", "start", **fault)
    pid = repo.daemon_pid()
    assert pid and is_alive(pid)
    trigger.write_text("")  # the engine's cue: exit right after the next batch's journal fsync
    r = alice.run("send", "--to", "@bob", "--json", "release is tagged", **fault)
    assert r.code == 0, r.err
    assert not trigger.exists()  # it was the engine that died, mid-request
    wait_for(lambda: not is_alive(pid), what="the first engine gone")
    assert repo.daemon_pid() not in (None, pid)  # the CLI's retry started another
    (line,) = creates(repo, "alice", "release is tagged")  # one line: the retry stored nothing
    assert r.json["message_id"] == line["data"]["message_id"] and r.json["duplicate"] is True
    assert bodies(bob) == ["release is tagged"]


def test_a_keyed_line_takes_the_fast_rebuild_path_and_projects_like_json(tmp_path):
    ev = {
        "v": 1,
        "id": "evt_01M8W0CFD152TVJS1QKWZCNN5A",
        "type": "message.create",
        "author": "alice",
        "ts": "2026-12-02T18:31:02.817802Z",
        "data": {
            "content": "hello",
            "format": "markdown",
            "idempotency_key": "cli-0123456789abcdef01234567",
            "message_id": "msg_01M8W0CFD152TVJS1QKWZCNN5A",
            "recipients": ["bob", "carol"],
            "thread_id": "thr_01M8W0CFD152TVJS1QKWZCNN5B",
        },
    }
    line = encode(ev)[:-1]
    assert _PLAIN_MESSAGE(line.decode()) is not None
    runs, count, bad = ops_for_lines([line], EventCheck())
    assert (count, bad) == (1, [])
    # the plain path binds only the columns that are not their defaults: the rows are the same
    assert projection_rows(tmp_path / "a.sqlite", runs) == projection_rows(
        tmp_path / "b.sqlite", ops_for([ev])
    )
    unkeyed = {**ev, "data": {k: v for k, v in ev["data"].items() if k != "idempotency_key"}}
    runs = ops_for_lines([encode(unkeyed)[:-1]], EventCheck())[0]
    assert projection_rows(tmp_path / "c.sqlite", runs) == projection_rows(
        tmp_path / "d.sqlite", ops_for([unkeyed])
    )


@pytest.fixture
async def engine(tmp_path, monkeypatch):
    e = await start_inproc_engine(tmp_path, monkeypatch, "idem")
    for n in ("alice", "bob"):
        await e.call("agent.register", {"name": n, "role": "worker"}, Caller.trusted())
    yield e
    await e.stop()


async def test_concurrent_sends_with_one_key_store_one_and_the_window_ends(engine):
    alice = Caller.trusted("alice")
    params = {"to": ["@bob"], "body": "once", "idempotency_key": "k1"}
    got = await asyncio.gather(*(engine.call("message.send", params, alice) for _ in range(10)))
    assert len({g["message_id"] for g in got}) == 1
    assert sum(not g.get("duplicate") for g in got) == 1
    engine.settings.messages.idempotency_window_seconds = 0.2
    await asyncio.sleep(0.3)  # past the window (an outcome, not a timing, is asserted)
    later = await engine.call("message.send", params, alice)
    assert later["message_id"] != got[0]["message_id"] and "duplicate" not in later


async def test_mcp_send_message_takes_an_idempotency_key(pair):
    _repo, alice, bob = pair
    async with mcp_client(alice.cwd, alice.env) as s:
        args = {"to": ["@bob"], "body": "from mcp", "idempotency_key": "mcp-1", "refs": ["bd:7"]}
        r1 = await s.call_tool("send_message", args)
        r2 = await s.call_tool("send_message", args)
        assert not r1.is_error and not r2.is_error, text(r1) + text(r2)
        assert r1.structured_content["message_id"] == r2.structured_content["message_id"]
        assert r2.structured_content["duplicate"] is True
    (m,) = bob.json("inbox")["messages"]
    assert m["body"]["content"] == "from mcp" and m["tasks"] == ["bd-7"]


def test_a_key_reused_for_another_request_of_the_same_text_is_refused(make_repo):
    """A key names one request: another recipient, format, broadcast, scope, ref, mention, structured
    part, thread or ask under it was answered `Already stored` (exit 0) and never sent."""
    repo = make_repo()
    alice = repo.agent("alice", "implementer")
    bob = repo.agent("bob", "reviewer")
    carol = repo.agent("carol", "tester")
    first = alice.json(
        "send",
        "notify",
        "--to",
        "@bob",
        "--idempotency-key",
        "rk1",
        "--scope",
        "module:auth",
        "--ref",
        "bd:7",
    )
    same = ["notify", "--idempotency-key", "rk1"]
    base = ["--to", "@bob", "--scope", "module:auth", "--ref", "bd:7"]
    other = alice.json("send", "other", "--to", "@bob")["message_id"]
    thread = bob.json("reply", other, "noted")["thread_id"]  # a real thread: an invented one is refused
    for changed, what in (
        (["--to", "@carol", "--scope", "module:auth", "--ref", "bd:7"], "recipients"),
        (["--to", "@bob", "--to", "@carol", "--scope", "module:auth", "--ref", "bd:7"], "recipients"),
        (["--broadcast", "--scope", "module:auth", "--ref", "bd:7"], "recipients"),
        ([*base, "--format", "plain"], "--format"),
        (["--to", "@bob", "--scope", "module:auth"], "--ref"),
        (["--to", "@bob", "--scope", "module:db", "--ref", "bd:7"], "--scope"),
        ([*base, "--structured", '{"a": 1}'], "--structured"),
        ([*base, "--mention", "@carol"], "--mention"),
        ([*base, "--thread", thread], "--thread"),
        ([*base, "--ask"], "--ask"),
    ):
        r = alice.run("send", *same, *changed)
        assert_error(r, "already used for another message", first["message_id"], what)
    # the same request again, in another order and spelling: the first answer
    again = alice.json("send", *same, "--ref", "bd:7", "--scope", "module:auth", "--to", "bob")
    assert again["message_id"] == first["message_id"] and again["duplicate"] is True
    assert bodies(carol) == []
    assert bodies(bob) == ["other", "notify"]
    assert len(creates(repo, "alice", "notify")) == 1
    # a reply's key names its parent too
    other = alice.json("send", "second", "--to", "@bob")["message_id"]
    bob.ok("reply", first["message_id"], "--idempotency-key", "re-9", "thanks")
    assert_error(bob.run("reply", other, "--idempotency-key", "re-9", "thanks"), "message replied to")
    assert_error(
        bob.run("reply", first["message_id"], "--idempotency-key", "re-9", "--format", "plain", "thanks"),
        "--format",
    )
    assert bob.json("reply", first["message_id"], "--idempotency-key", "re-9", "thanks")["duplicate"] is True
    assert len(creates(repo, "bob", "thanks")) == 1


async def test_mcp_send_message_refuses_a_key_reused_for_another_recipient(pair):
    repo, alice, bob = pair
    carol = repo.agent("carol", "tester")
    async with mcp_client(alice.cwd, alice.env) as s:
        r1 = await s.call_tool("send_message", {"to": ["@bob"], "body": "hey", "idempotency_key": "m-2"})
        r2 = await s.call_tool("send_message", {"to": ["@carol"], "body": "hey", "idempotency_key": "m-2"})
        r3 = await s.call_tool(
            "send_message", {"to": ["@bob"], "body": "hey", "idempotency_key": "m-2", "format": "plain"}
        )
        assert not r1.is_error, text(r1)
        assert r2.is_error and "already used" in text(r2), text(r2)
        assert r3.is_error and "--format" in text(r3), text(r3)
    assert bodies(carol) == []

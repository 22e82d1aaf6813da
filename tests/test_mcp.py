"""`thrum mcp serve` through the SDK's own stdio client (mcp.client.stdio), against a real engine."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp import types
from mcp.client.extension import NotificationBinding
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from pydantic import BaseModel

from conftest import THRUM, assert_error, base_env, run_thrum
from thrum_engine.layout import Layout
from thrum_engine.rpc.client import Client

TOOLS = {
    "send_message",
    "check_messages",
    "wait_for_message",
    "reply",
    "list_agents",
    "team",
    "who_has",
    "broadcast_message",
    "set_intent",
    "open_asks",
    "ack",
}


class ChannelEvent(BaseModel):
    content: str
    meta: dict[str, str]


@asynccontextmanager
async def mcp_client(cwd: Path, env: dict, *args: str, client: str = "test-client", events=None):
    """An initialised ClientSession on `thrum mcp serve ARGS` run in `cwd`; `events` (a list) collects
    the channel notifications the server pushes."""
    server = StdioServerParameters(
        command=THRUM[0], args=[*THRUM[1:], "mcp", "serve", *args], env=env, cwd=cwd
    )

    async def on_channel(ev: ChannelEvent) -> None:
        assert events is not None
        events.append(ev)

    bindings = (
        [
            NotificationBinding(
                method="notifications/claude/channel", params_type=ChannelEvent, handler=on_channel
            )
        ]
        if events is not None
        else []
    )
    async with (
        stdio_client(server) as (read, write),
        ClientSession(
            read,
            write,
            client_info=types.Implementation(name=client, version="1.0"),
            notification_bindings=bindings,
        ) as session,
    ):
        session.init = await session.initialize()  # type: ignore[attr-defined]
        yield session


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def engine(repo) -> Client:
    return Client(Layout.discover(str(repo.path)).socket_path, 10).connect()


async def until(cond, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = await asyncio.to_thread(cond)
        if v:
            return v
        await anyio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_tools_are_listed_with_typed_schemas(pair):
    _repo, alice, _bob = pair
    async with mcp_client(alice.cwd, alice.env) as s:
        listed = {t.name: t for t in (await s.list_tools()).tools}
        assert set(listed) == TOOLS
        send = listed["send_message"].input_schema
        assert send["type"] == "object"
        assert set(send["required"]) == {"to", "body"}
        assert send["properties"]["to"]["type"] == "array"
        assert listed["wait_for_message"].input_schema["properties"]["timeout"]["type"] == "number"
        # Not Claude Code: no channel offered.
        assert not (s.init.capabilities.experimental or {}).get("claude/channel")  # type: ignore[attr-defined]


async def test_send_check_reply_and_team(pair):
    _repo, alice, bob = pair
    async with mcp_client(alice.cwd, alice.env) as s:
        r = await s.call_tool("send_message", {"to": ["@bob"], "body": "review auth.py please"})
        assert not r.is_error, text(r)
        assert r.structured_content["recipients"] == ["bob"]
        inbox = bob.json("inbox")
        assert [m["body"]["content"] for m in inbox["messages"]] == ["review auth.py please"]

        sent = bob.json("send", "done, two nits", "--to", "@alice")
        r = await s.call_tool("check_messages", {})
        assert not r.is_error, text(r)
        msgs = r.structured_content["messages"]
        assert [m["message_id"] for m in msgs] == [sent["message_id"]]
        assert r.structured_content["unread"] == 0
        assert alice.json("inbox", "--unread")["messages"] == []  # check_messages marked it read

        r = await s.call_tool("reply", {"message_id": sent["message_id"], "body": "thanks"})
        assert not r.is_error, text(r)
        assert r.structured_content["recipients"] == ["bob"]

        r = await s.call_tool("set_intent", {"text": "fixing the nits"})
        assert not r.is_error, text(r)
        r = await s.call_tool("team", {})
        assert not r.is_error, text(r)
        me = next(m for m in r.structured_content["members"] if m["name"] == "alice")
        assert me["intent"] == "fixing the nits"
        r = await s.call_tool("list_agents", {"role": "reviewer"})
        assert [a["name"] for a in r.structured_content["agents"]] == ["bob"]
        r = await s.call_tool("who_has", {"path": "README.md"})
        assert not r.is_error and r.structured_content["holders"] == []
        r = await s.call_tool("broadcast_message", {"body": "standup in 5"})
        assert r.structured_content["recipients"] == ["bob"]
        # models often send one recipient as a string where the schema says a list (walk, session 18)
        r = await s.call_tool("send_message", {"to": "@bob", "body": "one string", "refs": "bd:7"})
        assert not r.is_error, text(r)
        assert r.structured_content["recipients"] == ["bob"]
        r = await s.call_tool("send_message", {"to": "@bob, @alice", "body": "two in one string"})
        assert not r.is_error and sorted(r.structured_content["recipients"]) == ["alice", "bob"], text(r)


async def test_open_asks_and_ack_over_mcp(pair):
    """An agent on MCP only sees the asks waiting for it and closes one without a reply, as
    `thrum asks --to-me` and `thrum ack` do."""
    _repo, alice, bob = pair
    ask = bob.json("send", "can you own the migration?", "--to", "@alice", "--ask")
    plain = bob.json("send", "fyi", "--to", "@alice")
    async with mcp_client(alice.cwd, alice.env) as s:
        r = await s.call_tool("open_asks", {})
        assert not r.is_error, text(r)
        assert [a["message_id"] for a in r.structured_content["asks"]] == [ask["message_id"]]
        r = await s.call_tool("ack", {"message_id": ask["message_id"], "note": "after lunch"})
        assert not r.is_error and r.structured_content["acked"], text(r)
        assert (await s.call_tool("open_asks", {})).structured_content["asks"] == []
        r = await s.call_tool("ack", {"message_id": ask["message_id"]})
        assert not r.is_error and not r.structured_content["acked"]  # already answered: nothing new
        r = await s.call_tool("ack", {"message_id": plain["message_id"]})
        assert r.is_error and "not an ask addressed to you" in text(r)
        mine = bob.json("asks")["asks"]
        assert mine == []
        docs = bob.json("send", "and the docs?", "--to", "@alice", "--ask")
        assert (await s.call_tool("open_asks", {"mine": True})).structured_content["asks"] == []
        # The note's bound is the CLI's (4,000 characters), not 500 (walk, session 21).
        r = await s.call_tool("ack", {"message_id": docs["message_id"], "note": "n" * 600})
        assert not r.is_error and r.structured_content["acked"], text(r)
        r = await s.call_tool("ack", {"message_id": docs["message_id"], "note": "n" * 4001})
        assert r.is_error and "4000" in text(r)
    [d] = bob.json("sent", "show", ask["message_id"])["message"]["deliveries"]
    assert d["state"] == "acked" and d["ack_note"] == "after lunch"


async def channel_open(repo, agent: str) -> None:
    """Until the engine's best path to `agent` is its MCP channel."""
    paths = engine(repo)
    try:
        await until(
            lambda: paths.call("delivery.paths", {"agent": agent})["agents"][0]["best"] == "channel",
            what=f"{agent}'s channel to register",
        )
    finally:
        paths.close()


async def woken_by_a_send(s: ClientSession, repo, sender, to: str = "alice") -> tuple:
    """`wait_for_message` blocked in the engine, then `sender` sends "wake up" to `to`: (the tool's
    result, the send's answer, seconds from the send to the wake-up)."""
    result: list = []

    async def wait() -> None:
        result.append(await s.call_tool("wait_for_message", {"timeout": 60}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        paths = engine(repo)
        try:
            await until(
                lambda: paths.call("delivery.paths", {"agent": to})["agents"][0]["waiting"],
                what=f"{to}'s wait to be blocked in the engine",
            )
        finally:
            paths.close()
        started = time.monotonic()
        sent = sender.json("send", "wake up", "--to", f"@{to}")
    return result[0], sent, time.monotonic() - started


async def test_wait_for_message_is_woken_by_a_cli_send(pair):
    repo, alice, bob = pair
    async with mcp_client(alice.cwd, alice.env) as s:
        r, sent, took = await woken_by_a_send(s, repo, bob)
        assert took < 30  # woken by the send, not by the 60 s timeout
        assert not r.is_error, text(r)
        assert r.structured_content["status"] == "received"
        assert r.structured_content["message"]["message_id"] == sent["message_id"]
        delivery = bob.json("sent", "show", sent["message_id"])["message"]["deliveries"][0]
        assert delivery["via"] == "wait"

        r = await s.call_tool("wait_for_message", {"timeout": 0.2})
        assert r.structured_content["status"] == "timeout"


async def test_tool_errors_are_clear(pair):
    repo, alice, _bob = pair
    async with mcp_client(alice.cwd, alice.env) as s:
        r = await s.call_tool("send_message", {"to": ["@nobody"], "body": "hello"})
        assert r.is_error and text(r) == "Error: unknown recipient: @nobody"
        r = await s.call_tool("send_message", {"to": [], "body": "hello"})
        assert r.is_error and "invalid to for send_message" in text(r)
        r = await s.call_tool("reply", {"message_id": "not-an-id", "body": "x"})
        assert r.is_error and "invalid message id" in text(r)
        r = await s.call_tool("no_such_tool", {})
        assert r.is_error and "unknown tool" in text(r)
        assert alice.json("sent")["messages"] == []  # nothing was sent

        repo.stop()
        r = await s.call_tool("send_message", {"to": ["@bob"], "body": "anyone?"})
        assert r.is_error and text(r).startswith("Error: engine down:")


async def test_no_identity_is_a_tool_error_and_a_foreign_identity_is_refused(pair):
    repo, alice, bob = pair
    # The main checkout has no identity file: the server starts, and tools that need one say why.
    async with mcp_client(repo.path, repo.env) as s:
        r = await s.call_tool("send_message", {"to": ["@bob"], "body": "hi"})
        assert r.is_error and text(r).startswith("Error: no identity")
        r = await s.call_tool("list_agents", {})
        assert not r.is_error and {a["name"] for a in r.structured_content["agents"]} == {"alice", "bob"}
    # In alice's worktree, claiming bob is refused by the engine (peer credentials: cwd -> worktree).
    async with mcp_client(alice.cwd, alice.env, "--agent-id", "bob") as s:
        r = await s.call_tool("send_message", {"to": ["@alice"], "body": "I am bob, honest"})
        assert r.is_error and "caller claims @bob" in text(r)
    assert bob.json("sent")["messages"] == []


async def test_outside_a_git_repository_the_server_starts_and_each_tool_says_why(tmp_path):
    """Walk (runtimes, 8): a `--user` MCP entry starts `thrum mcp serve` in every directory, and
    outside a git repository it exited at once, so the runtime showed a failed server everywhere
    else. It serves: its tools are listed, and each answers where they work."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (tmp_path / "home").mkdir()
    env = base_env(tmp_path / "home")
    why = f"Error: not inside a git repository: {plain}: Thrum's tools work in a repo where `thrum init` ran"
    for args in ((), ("--agent-id", "alice", "--channel", "on")):
        async with mcp_client(plain, env, *args, client="claude-code") as s:
            assert {t.name for t in (await s.list_tools()).tools} == TOOLS
            assert not (s.init.capabilities.experimental or {}).get("claude/channel")  # type: ignore[attr-defined]
            for name, arguments in (("team", {}), ("send_message", {"to": ["@bob"], "body": "hi"})):
                r = await s.call_tool(name, arguments)
                assert r.is_error and text(r) == why, text(r)
    # A repository named by hand is the user's input: a wrong one is still a one-line error.
    r = run_thrum(["mcp", "serve", "--repo", str(plain)], plain, env)
    assert_error(r, "not inside a git repository")


def test_bad_flags_are_one_line_errors(pair):
    _repo, alice, _bob = pair
    r = alice.run("mcp", "serve", "--channel", "sometimes")
    assert r.code == 1 and r.err.strip() == "Error: --channel 'sometimes': one of auto, on, off"
    r = alice.run("mcp", "serve", "--agent-id", "../etc")
    assert r.code == 1 and r.err.startswith("Error: ") and len(r.err.strip().splitlines()) == 1
    r = alice.run("mcp", "serve", THRUM_NAME="../etc")
    assert r.code == 1 and r.err.startswith("Error: invalid agent name") and "THRUM_NAME" in r.err


async def test_the_server_finds_an_engine_started_on_another_thrum_socket(pair, tmp_path):
    """Contract walk (session 22): an engine started by a command with THRUM_SOCKET set serves
    there; the MCP server finds it through the engine's pid file, as the CLI does."""
    repo, alice, bob = pair
    repo.stop()
    assert alice.run("team", THRUM_SOCKET=str(tmp_path / "elsewhere.sock")).code == 0
    async with mcp_client(alice.cwd, alice.env) as s:
        r = await s.call_tool("send_message", {"to": ["@bob"], "body": "over the other socket"})
        assert not r.is_error, text(r)
    assert [m["body"]["content"] for m in bob.json("inbox")["messages"]] == ["over the other socket"]


async def test_channel_push_reaches_claude_code_and_is_the_delivery_path(pair):
    repo, alice, bob = pair
    events: list[ChannelEvent] = []
    parent = alice.json("send", "is the build green?", "--to", "@bob")["message_id"]
    thread = bob.json("reply", parent, "checking")["thread_id"]  # a thread to answer in
    alice.ok("message", "read", "--all")
    async with mcp_client(alice.cwd, alice.env, "--channel", "on", client="claude-code", events=events) as s:
        assert s.init.capabilities.experimental == {"claude/channel": {}}  # type: ignore[attr-defined]
        await channel_open(repo, "alice")
        sent = bob.json("send", "the build is green", "--to", "@alice", "--thread", thread)
        await until(lambda: events, what="the channel notification")
        ev = events[0]
        assert ev.content == "the build is green"
        assert ev.meta["from"] == "bob" and ev.meta["message_id"] == sent["message_id"]
        assert ev.meta["thread_id"] == thread

        def via():
            d = bob.json("sent", "show", sent["message_id"])["message"]["deliveries"][0]
            return d["state"] == "notified" and d["via"] == "channel" and d

        await until(via, what="the delivery record to say channel")
        assert "@alice: notified (via channel)" in bob.ok("sent", "show", sent["message_id"]).out
    # The session ended: the channel is gone from the engine's paths.
    paths = engine(repo)
    try:
        await until(
            lambda: paths.call("delivery.paths", {"agent": "alice"})["agents"][0]["channel"] == [],
            what="the channel to close",
        )
    finally:
        paths.close()


async def test_channel_off_and_a_non_claude_client_get_no_push(pair):
    _repo, alice, bob = pair
    events: list[ChannelEvent] = []
    async with mcp_client(alice.cwd, alice.env, "--channel", "off", client="claude-code", events=events) as s:
        assert not (s.init.capabilities.experimental or {}).get("claude/channel")  # type: ignore[attr-defined]
        sent = bob.json("send", "ping", "--to", "@alice")
        await anyio.sleep(0.5)
        assert events == []
        d = bob.json("sent", "show", sent["message_id"])["message"]["deliveries"][0]
        assert d["via"] is None and d["state"] == "stored"


@pytest.mark.parametrize("mode", ["on"])
async def test_channel_on_pushes_to_any_client(pair, mode):
    repo, alice, bob = pair
    events: list[ChannelEvent] = []
    async with mcp_client(alice.cwd, alice.env, "--channel", mode, events=events):
        paths = engine(repo)
        try:
            await until(
                lambda: paths.call("delivery.paths", {"agent": "alice"})["agents"][0]["channel"],
                what="the channel",
            )
        finally:
            paths.close()
        bob.ok("send", "forced", "--to", "@alice")
        await until(lambda: events, what="the push")
        assert events[0].content == "forced"


async def test_check_messages_stays_under_a_clients_result_cap_and_marks_only_what_it_returned(
    pair, tmp_path
):
    """Walk (session 21): twelve unread, four of them 300 KB: one default call returned 1.2 MB (over
    Claude Code's result cap, so the agent got an error) and marked every message read."""
    _repo, alice, bob = pair
    big = tmp_path / "big.txt"
    big.write_text("B" * 300_000)
    for i in range(8):
        bob.ok("send", f"small {i}", "--to", "@alice")
    for _ in range(4):
        bob.ok("send", "--to", "@alice", "--body-file", str(big))
    async with mcp_client(alice.cwd, alice.env) as s:
        first = (await s.call_tool("check_messages", {})).structured_content
        assert len(text_of(first)) < 100_000, len(text_of(first))
        assert first["more"] and first["unread"] == 12 - len(first["messages"])
        cut = [m for m in first["messages"] if m["body"].get("cut")]
        for m in cut:
            assert f"`thrum message get {m['message_id']}`" in m["body"]["content"]
        assert alice.json("inbox", "--unread")["unread"] == first["unread"]  # the rest: still unread
        seen = len(first["messages"])
        while True:
            page = (await s.call_tool("check_messages", {})).structured_content
            seen += len(page["messages"])
            if not page.get("more"):
                break
        assert seen == 12 and page["unread"] == 0


def text_of(result: dict) -> str:
    return json.dumps(result, ensure_ascii=False)

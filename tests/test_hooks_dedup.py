"""A hook shows only mail no delivery path has surfaced to the agent yet, whichever path that was (a
channel push, `thrum wait` or MCP `wait_for_message`, an earlier hook), and that holds across an engine
restart. Real engine, `thrum hook EVENT --runtime claude` as a subprocess with Claude's JSON on stdin,
the MCP server through the SDK's stdio client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import anyio

from conftest import THRUM, run_python, wait_for
from test_mcp import ChannelEvent, channel_open, engine, mcp_client, text, until, woken_by_a_send


def hook(agent, event: str) -> dict | None:
    """What Claude Code runs for EVENT in the agent's worktree; its parsed answer (None: nothing)."""
    name = {"prompt-submit": "UserPromptSubmit", "stop": "Stop", "session-start": "SessionStart"}[event]
    payload = {
        "session_id": "s1",
        "cwd": str(agent.cwd),
        "hook_event_name": name,
        "prompt": "go on",
        "stop_hook_active": False,
    }
    r = agent.run("hook", event, "--runtime", "claude", input=json.dumps(payload))
    assert r.code == 0 and r.err == "", r
    return json.loads(r.out) if r.out.strip() else None


def shown(answer: dict | None) -> str:
    if answer is None:
        return ""
    return answer.get("reason") or answer["hookSpecificOutput"]["additionalContext"]


async def test_mail_pushed_over_the_channel_is_not_shown_again_by_a_hook(pair):
    repo, alice, bob = pair
    events: list[ChannelEvent] = []
    async with mcp_client(alice.cwd, alice.env, "--channel", "on", client="claude-code", events=events):
        await channel_open(repo, "alice")
        sent = bob.json("send", "pushed once", "--to", "@alice")
        await until(lambda: events, what="the channel push")
        await until(
            lambda: "@alice: notified (via channel)" in bob.ok("sent", "show", sent["message_id"]).out,
            what="the delivery record to say channel",
        )
        assert await anyio.to_thread.run_sync(hook, alice, "prompt-submit") is None
        assert await anyio.to_thread.run_sync(hook, alice, "stop") is None
    # The session ended (no channel): the next message is the hooks' to show, once.
    later = bob.json("send", "after the channel", "--to", "@alice")
    first = shown(hook(alice, "prompt-submit"))
    assert later["message_id"] in first and sent["message_id"] not in first and "1 new message" in first
    assert hook(alice, "prompt-submit") is None and hook(alice, "stop") is None


async def test_a_push_to_a_session_that_may_drop_it_delivers_nothing_the_hooks_still_do(pair):
    """Walk (session 21): `thrum mcp serve` as `init` installs it (`--channel auto`) offered the
    channel to every Claude Code session and recorded each push as delivered, so the hooks skipped
    the message; a session started without `--channels` drops the events silently, and the message
    was never shown. Under `auto` the push is an extra: the ledger, the hooks and routing go on
    without it."""
    repo, alice, bob = pair
    events: list[ChannelEvent] = []
    async with mcp_client(alice.cwd, alice.env, client="claude-code", events=events) as s:
        assert s.init.capabilities.experimental == {"claude/channel": {}}  # type: ignore[attr-defined]
        paths = engine(repo)
        try:
            await until(
                lambda: paths.call("delivery.paths", {"agent": "alice"})["agents"][0]["channel"],
                what="the channel to register",
            )
            (view,) = paths.call("delivery.paths", {"agent": "alice"})["agents"]
            assert view["best"] != "channel" and view["channel"][0]["trusted"] is False, view
        finally:
            paths.close()
        sent = bob.json("send", "pushed, maybe seen", "--to", "@alice")
        await until(lambda: events, what="the channel push")
        await anyio.sleep(0.5)  # the server's ack has reached the engine
        d = bob.json("sent", "show", sent["message_id"])["message"]["deliveries"][0]
        assert d["via"] != "channel", d
        answer = await anyio.to_thread.run_sync(hook, alice, "stop")
        assert sent["message_id"] in shown(answer)  # the hook shows it: the push proved nothing
        assert await anyio.to_thread.run_sync(hook, alice, "stop") is None  # once


def waiting(repo, agent: str) -> bool:
    paths = engine(repo)
    try:
        return paths.call("delivery.paths", {"agent": agent})["agents"][0]["waiting"]
    finally:
        paths.close()


def test_a_killed_wait_takes_nothing_the_next_hook_shows_it(pair):
    """Walk (session 21): a `thrum wait` killed (a Bash tool's timeout) stayed registered until its
    own timeout; the next message was marked `seen (via wait)` for nobody, and no hook showed it."""
    repo, alice, bob = pair
    proc = subprocess.Popen(
        [*THRUM, "wait", "--timeout", "60s"], cwd=alice.cwd, env=alice.env, stdout=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: waiting(repo, "alice"), what="the wait to block in the engine")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    wait_for(lambda: not waiting(repo, "alice"), what="the engine to drop the killed wait")
    sent = bob.json("send", "after the wait died", "--to", "@alice")
    time.sleep(0.3)
    (d,) = bob.json("sent", "show", sent["message_id"])["message"]["deliveries"]
    assert d["state"] == "stored" and d["via"] is None, d
    assert sent["message_id"] in shown(hook(alice, "stop"))


HALF_CLOSED_WAIT = r"""
import json, socket, sys
from thrum_engine.layout import Layout
s = socket.socket(socket.AF_UNIX)
s.connect(Layout.discover().socket_path)
req = {"jsonrpc": "2.0", "id": 1, "method": "message.wait", "params": {"caller": sys.argv[1], "timeout": 20}}
s.sendall((json.dumps(req) + "\n").encode())
s.shutdown(socket.SHUT_WR)  # nothing more to say: the answer is still read (nc -N, socat)
buf = b""
while b"\n" not in buf:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
print(buf.decode())
"""


def test_a_client_that_half_closes_still_gets_its_wait_answered(pair):
    """Review of session 21: the end of a client's input was taken for its hang-up, so a wait from a
    client that half-closes after its request (as `nc -N` and socat do) returned at once."""
    repo, alice, bob = pair
    proc = subprocess.Popen(
        [sys.executable, "-c", HALF_CLOSED_WAIT, "alice"], cwd=alice.cwd, env=alice.env,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: waiting(repo, "alice"), what="the wait to block in the engine")
        time.sleep(0.3)  # past the end of its input
        assert waiting(repo, "alice")
        sent = bob.json("send", "for a half-closed wait", "--to", "@alice")
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    answer = json.loads(out)["result"]
    assert answer["status"] == "received" and answer["messages"][0]["message_id"] == sent["message_id"]


async def test_a_cancelled_wait_for_message_takes_nothing(pair):
    """The same through MCP: `notifications/cancelled` ended the tool call, not the engine's wait."""
    repo, alice, bob = pair
    async with mcp_client(alice.cwd, alice.env) as s:
        with anyio.move_on_after(30) as scope:
            async with anyio.create_task_group() as tg:

                async def blocked() -> None:
                    await s.call_tool("wait_for_message", {"timeout": 60})

                tg.start_soon(blocked)
                await until(lambda: waiting(repo, "alice"), what="the wait to block in the engine")
                tg.cancel_scope.cancel()  # the client sends notifications/cancelled
        assert not scope.cancelled_caught
        await until(lambda: not waiting(repo, "alice"), what="the engine to drop the cancelled wait")
        sent = bob.json("send", "after the cancel", "--to", "@alice")
        await anyio.sleep(0.3)
        (d,) = bob.json("sent", "show", sent["message_id"])["message"]["deliveries"]
        assert d["state"] == "stored" and d["via"] is None, d
        r = await s.call_tool("check_messages", {})
        assert sent["message_id"] in text(r)


def test_a_hook_that_gave_up_records_nothing_the_next_one_shows_it(pair):
    """Walk (session 21): with the engine stopped (SIGSTOP) a hook gave up after its 4 s; resumed,
    the engine ran the request anyway and recorded the mail as shown by that hook."""
    repo, alice, bob = pair
    sent = bob.json("send", "while the engine hangs", "--to", "@alice")
    pid = repo.json("daemon", "status")["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        assert hook(alice, "stop") is None  # gave up: says nothing, exit 0
    finally:
        os.kill(pid, signal.SIGCONT)
    time.sleep(0.5)  # the engine reads the late request (and the hang-up) now
    (d,) = bob.json("sent", "show", sent["message_id"])["message"]["deliveries"]
    assert d["state"] == "stored", d
    assert sent["message_id"] in shown(hook(alice, "stop"))


async def test_mail_a_wait_returned_is_not_shown_again_by_a_hook(pair):
    repo, alice, bob = pair
    # MCP wait_for_message, blocked when the message arrives (the delivery record says `wait`).
    async with mcp_client(alice.cwd, alice.env) as s:
        r, woke, _took = await woken_by_a_send(s, repo, bob)
        assert r.structured_content["status"] == "received", text(r)
    assert bob.json("sent", "show", woke["message_id"])["message"]["deliveries"][0]["via"] == "wait"
    assert hook(alice, "prompt-submit") is None
    assert hook(alice, "stop") is None


def test_mail_a_cli_wait_returned_is_not_shown_again_by_a_hook(pair):
    repo, alice, bob = pair
    # `thrum wait` on the command line, blocked when the message arrives.
    proc = subprocess.Popen(
        [*THRUM, "wait", "--timeout", "60", "--json"],
        cwd=alice.cwd,
        env=alice.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        paths = engine(repo)
        try:
            wait_for(
                lambda: paths.call("delivery.paths", {"agent": "alice"})["agents"][0]["waiting"],
                what="alice's `thrum wait`",
            )
        finally:
            paths.close()
        queued = bob.json("send", "for the cli wait", "--to", "@alice")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    got = json.loads(out)
    assert proc.returncode == 0 and got["status"] == "received", err
    assert got["message"]["message_id"] == queued["message_id"]
    assert hook(alice, "prompt-submit") is None
    assert hook(alice, "stop") is None


def test_what_a_hook_showed_stays_shown_across_an_engine_restart(pair):
    repo, alice, bob = pair
    ids = [bob.json("send", f"note {i}", "--to", "@alice")["message_id"] for i in range(3)]
    block = shown(hook(alice, "stop"))
    assert "3 new messages" in block and all(i in block for i in ids)
    assert hook(alice, "stop") is None  # blocked once, then silent
    alice.ok("daemon", "stop")
    assert hook(alice, "stop") is None  # the engine is down: silent, exit 0
    alice.ok("daemon", "start")
    assert hook(alice, "stop") is None
    assert hook(alice, "prompt-submit") is None
    new = bob.json("send", "after the restart", "--to", "@alice")["message_id"]
    block = shown(hook(alice, "stop"))
    assert "1 new message" in block and new in block and not any(i in block for i in ids)
    assert hook(alice, "stop") is None


# Hooks of one agent fired at the same moment (two sessions, a prompt and a stop racing), each on its
# own connection, as `thrum hook` makes them: the engine's answers, one JSON line per hook.
RACE = """
import json, sys, threading
from thrum_engine.layout import Layout
from thrum_engine.rpc.client import Client

n, event = int(sys.argv[1]), sys.argv[2]
path = Layout.discover(".").socket_path
clients = [Client(path, 10).connect() for _ in range(n)]
go = threading.Barrier(n)
out = [None] * n

def fire(i):
    go.wait()
    out[i] = clients[i].call("hooks.fire", {"event": event, "runtime": "claude", "caller": "alice"}, 10)

threads = [threading.Thread(target=fire, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(out))
"""


def test_hooks_fired_at_once_show_a_message_once(pair):
    repo, alice, bob = pair
    for event, field in (("prompt-submit", "context"), ("stop", "block")):
        mid = bob.json("send", f"race for the {event}", "--to", "@alice")["message_id"]
        proc = run_python(alice, RACE, "8", event)
        assert proc.returncode == 0, proc.stderr
        answers = json.loads(proc.stdout)
        showing = [a for a in answers if mid in (a[field] or "")]
        assert len(showing) == 1, answers


def test_a_note_to_yourself_is_not_shown_by_a_hook_and_does_not_block_the_stop(pair):
    """CLI.md: a note to yourself is never nudged; a Stop hook that showed it would block every turn
    the agent ends after writing itself a note (walk C, A2)."""
    _repo, alice, bob = pair
    alice.ok("send", "remember the migration", "--to", "@me")
    alice.ok("send", "and the changelog", "--to", "@alice")
    assert hook(alice, "stop") is None
    assert hook(alice, "prompt-submit") is None
    mail = bob.json("send", "from bob", "--to", "@alice")
    answer = shown(hook(alice, "stop"))
    assert (
        mail["message_id"] in answer and "remember the migration" not in answer and "1 new message" in answer
    )
    assert alice.json("inbox", "--unread")["unread"] == 3  # the notes are still in the inbox, unread

"""JSON-RPC over the engine's Unix socket, spoken directly with `socket`: malformed
frames of every shape, oversize frames, notifications, the socket's permissions,
and peer-credential checks (forged callers, callers outside every worktree)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from conftest import Agent, Repo, base_env, git, run_thrum
from thrum_engine.layout import Layout
from thrum_engine.rpc import protocol as P

PARSE, INVALID_REQUEST, NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
MAX_FRAME = P.max_frame(1048576)


# -- raw socket helpers ------------------------------------------------------------------------------------------


def sock_path(repo) -> str:
    return Layout(str(repo.path)).socket_path


def frame(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def req(method: str, params=None, rid=1) -> dict:
    r = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        r["params"] = params
    return r


def read_all(s: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = s.recv(1 << 16)
        except ConnectionResetError:  # the server closed with our unread bytes queued: data first, then reset
            break
        if not chunk:
            break
        data += chunk
    return data


def parse_replies(data: bytes) -> list[dict]:
    assert data == b"" or data.endswith(b"\n"), f"reply frames must end with a newline: {data[-80:]!r}"
    return [json.loads(line) for line in data.split(b"\n") if line.strip()]


def exchange(path: str, payload: bytes, timeout: float = 20.0) -> list[dict]:
    """Send raw bytes, half-close, and collect every reply frame until the server closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return parse_replies(read_all(s))


def call(path: str, method: str, params=None, timeout: float = 20.0) -> dict:
    replies = exchange(path, frame(req(method, params, rid=7)), timeout)
    assert len(replies) == 1, replies
    return replies[0]


def info_pid(path: str) -> int:
    r = call(path, "engine.info")
    assert "result" in r, r
    return r["result"]["pid"]


def assert_error(reply: dict, code: int, rid=None) -> dict:
    assert set(reply) == {"jsonrpc", "id", "error"}, reply
    assert reply["jsonrpc"] == "2.0"
    assert reply["id"] == rid
    err = reply["error"]
    assert isinstance(err, dict), reply
    assert err["code"] == code, reply
    assert isinstance(err["message"], str) and err["message"], reply
    return err


def assert_result(reply: dict, rid) -> dict:
    assert set(reply) == {"jsonrpc", "id", "result"}, reply
    assert reply["jsonrpc"] == "2.0" and reply["id"] == rid
    return reply["result"]


# -- a shared engine for the malformed-frame cases -----------------------------------------------------------------


class Shared:
    def __init__(self, repo: Repo, alice: Agent, bob: Agent) -> None:
        self.repo, self.alice, self.bob = repo, alice, bob
        self.path = sock_path(repo)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    base = tmp_path_factory.mktemp("rpc")
    home = base / "home"
    home.mkdir()
    path = base / "repo"
    path.mkdir()
    env = base_env(home)
    git(path, "init", "-q", "-b", "main", env=env)
    (path / "README.md").write_text("hello\n")
    git(path, "add", "README.md", env=env)
    git(path, "commit", "-q", "-m", "init", env=env)
    repo = Repo(path, env)
    try:
        alice = repo.agent("alice", "implementer", module="auth")
        bob = repo.agent("bob", "reviewer")
        yield Shared(repo, alice, bob)
    finally:
        repo.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def engine(shared):
    """The shared engine, (re)started if an earlier case took it down; yields its pid."""
    shared.alice.ok("daemon", "start")
    pid = info_pid(shared.path)
    yield pid
    # whatever the case did, the same engine still serves a fresh connection
    assert info_pid(shared.path) == pid, "the engine died (or was replaced) after this frame"


# -- malformed frames -------------------------------------------------------------------------------------------

INFO = {"jsonrpc": "2.0", "id": 1, "method": "engine.info"}

# (payload, expected code, expected reply id)
MALFORMED = {
    "invalid json": (b'{"jsonrpc": "2.0", "id": 1, "method": \n', PARSE, None),
    "truncated object": (b'{"jsonrpc": "2.0", "id": 1\n', PARSE, None),
    "bare word": (b"hello\n", PARSE, None),
    "trailing garbage": (b'{"jsonrpc": "2.0", "id": 1, "method": "engine.info"} xyz\n', PARSE, None),
    "batch array": (frame([INFO, INFO]), INVALID_REQUEST, None),
    "empty array": (b"[]\n", INVALID_REQUEST, None),
    "number": (b"42\n", INVALID_REQUEST, None),
    "string": (b'"engine.info"\n', INVALID_REQUEST, None),
    "null": (b"null\n", INVALID_REQUEST, None),
    "true": (b"true\n", INVALID_REQUEST, None),
    "missing jsonrpc": (frame({"id": 1, "method": "engine.info"}), INVALID_REQUEST, 1),
    "jsonrpc 1.0": (frame({"jsonrpc": "1.0", "id": 1, "method": "engine.info"}), INVALID_REQUEST, 1),
    "jsonrpc as number": (frame({"jsonrpc": 2.0, "id": 1, "method": "engine.info"}), INVALID_REQUEST, 1),
    "missing method": (frame({"jsonrpc": "2.0", "id": 1}), INVALID_REQUEST, 1),
    "method is a number": (frame({"jsonrpc": "2.0", "id": 1, "method": 5}), INVALID_REQUEST, 1),
    "method is a list": (frame({"jsonrpc": "2.0", "id": 1, "method": ["engine.info"]}), INVALID_REQUEST, 1),
    "method is null": (frame({"jsonrpc": "2.0", "id": 1, "method": None}), INVALID_REQUEST, 1),
    "empty method": (frame({"jsonrpc": "2.0", "id": 1, "method": ""}), INVALID_REQUEST, 1),
    "unknown method": (frame(req("engine.explode")), NOT_FOUND, 1),
    "rpc-internal method": (frame(req("rpc.discover")), NOT_FOUND, 1),
    "python dunder method": (frame(req("__class__")), NOT_FOUND, 1),
    "params as list": (frame(req("engine.info", [1, 2])), INVALID_PARAMS, 1),
    "params as string": (frame(req("engine.info", "x")), INVALID_PARAMS, 1),
    "params as number": (frame(req("engine.info", 3)), INVALID_PARAMS, 1),
    "id as object": (
        frame({"jsonrpc": "2.0", "id": {"a": 1}, "method": "engine.info"}),
        INVALID_REQUEST,
        None,
    ),
    "id as list": (frame({"jsonrpc": "2.0", "id": [1], "method": "engine.info"}), INVALID_REQUEST, None),
    "id as bool": (frame({"jsonrpc": "2.0", "id": True, "method": "engine.info"}), INVALID_REQUEST, None),
    "unknown param key": (frame(req("engine.info", {"bogus": 1})), INVALID_PARAMS, 1),
    "caller not a string": (frame(req("engine.info", {"caller": 5})), INVALID_PARAMS, 1),
    "wrong type: bool param": (frame(req("team.list", {"all": [1]})), INVALID_PARAMS, 1),
    "wrong type: list param": (frame(req("agent.list", {"role": ["a"]})), INVALID_PARAMS, 1),
    "missing required param": (frame(req("message.get", {})), INVALID_PARAMS, 1),
    "wrong type: required param": (frame(req("message.get", {"message_id": 17})), INVALID_PARAMS, 1),
    "invalid utf-8 in method": (
        b'{"jsonrpc": "2.0", "id": 1, "method": "engine.info\xff\xfe"}\n',
        PARSE,
        None,
    ),
    "invalid utf-8 bytes": (b"\xc3\x28\xa0\xa1\n", PARSE, None),
    "lone surrogate escape": (b'{"jsonrpc": "2.0", "id": 1, "method": "\\ud800"}\n', NOT_FOUND, 1),
    "NaN id": (b'{"jsonrpc": "2.0", "id": NaN, "method": "engine.info"}\n', INVALID_REQUEST, None),
    "string id kept": (frame({"jsonrpc": "2.0", "id": "abc", "method": "engine.bogus"}), NOT_FOUND, "abc"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_frame_gets_a_json_rpc_error_and_the_engine_survives(shared, engine, name):
    payload, code, rid = MALFORMED[name]
    replies = exchange(shared.path, payload)
    assert info_pid(shared.path) == engine  # a fresh connection is served by the same engine
    assert len(replies) == 1, replies
    assert_error(replies[0], code, rid)


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_frame_does_not_poison_the_connection(shared, engine, name):
    """After a bad frame (that is not an oversize one) the same connection still answers good ones."""
    payload, code, rid = MALFORMED[name]
    good = frame({"jsonrpc": "2.0", "id": "next", "method": "engine.info"})
    replies = exchange(shared.path, payload + good)
    assert info_pid(shared.path) == engine
    by_id = {json.dumps(r["id"]): r for r in replies}
    assert len(replies) == 2, replies
    assert assert_result(by_id['"next"'], "next")["pid"] == engine
    bad = [r for r in replies if r.get("id") != "next" or "error" in r]
    assert len(bad) == 1
    assert_error(bad[0], code, rid)


@pytest.mark.parametrize("depth", [100, 10_000, 200_000])
def test_deeply_nested_json(shared, engine, depth):
    nested = ("[" * depth + "]" * depth).encode()
    # nested as the whole frame ...
    replies = exchange(shared.path, nested + b"\n")
    assert info_pid(shared.path) == engine
    assert len(replies) == 1, f"no reply to a {depth}-deep frame"
    assert replies[0]["error"]["code"] in (PARSE, INVALID_REQUEST), replies
    assert_error(replies[0], replies[0]["error"]["code"], None)
    # ... and inside the params of a well-formed request
    body = b'{"jsonrpc": "2.0", "id": 3, "method": "engine.info", "params": {"x": ' + nested + b"}}\n"
    replies = exchange(shared.path, body)
    assert info_pid(shared.path) == engine
    assert len(replies) == 1, f"no reply to {depth}-deep params"
    err = replies[0].get("error")
    assert err and err["code"] in (PARSE, INVALID_REQUEST, INVALID_PARAMS), replies
    assert replies[0]["id"] in (None, 3)


def test_valid_requests_get_results_with_their_ids(shared, engine):
    frames = b"".join(frame(req("engine.info", rid=i)) for i in range(1, 11))
    frames += frame({"jsonrpc": "2.0", "id": "s", "method": "engine.info", "params": None})
    frames += frame({"jsonrpc": "2.0", "id": 0, "method": "team.list"})
    replies = exchange(shared.path, frames)
    assert sorted(json.dumps(r["id"]) for r in replies) == sorted(
        [json.dumps(i) for i in range(1, 11)] + ['"s"', "0"]
    )
    for r in replies:
        assert_result(r, r["id"])


def test_blank_lines_are_ignored(shared, engine):
    replies = exchange(shared.path, b"\n\r\n   \n" + frame(req("engine.info", rid=9)) + b"\n\n")
    assert len(replies) == 1
    assert_result(replies[0], 9)


def test_notification_gets_no_reply(shared, engine):
    payload = (
        frame({"jsonrpc": "2.0", "method": "engine.info"})
        + frame({"jsonrpc": "2.0", "method": "engine.info", "params": {}})
        + frame({"jsonrpc": "2.0", "method": "no.such.method"})
        + frame({"jsonrpc": "2.0", "method": "engine.info", "params": {"bogus": 1}})
        + frame(req("engine.info", rid="after"))
    )
    replies = exchange(shared.path, payload)
    assert [r["id"] for r in replies] == ["after"], replies
    assert_result(replies[0], "after")


def test_notification_of_a_write_is_performed_silently(shared, engine, monkeypatch):
    monkeypatch.chdir(shared.alice.cwd)
    body = f"notified-{time.time_ns()}"
    payload = frame(
        {
            "jsonrpc": "2.0",
            "method": "message.send",
            "params": {"caller": "alice", "to": ["@bob"], "body": body},
        }
    )
    payload += frame(req("engine.info", rid="probe"))
    replies = exchange(shared.path, payload)
    assert [r["id"] for r in replies] == ["probe"], replies
    inbox = shared.bob.json("inbox", "--all", "--page-size", "1000")
    assert body in [m["body"]["content"] for m in inbox["messages"]]


# -- frames over the limit, frames cut short ---------------------------------------------------------------------


def _send_in_background(s: socket.socket, data: bytes) -> threading.Thread:
    def run() -> None:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server hung up on us mid-frame: expected

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("newline", [False, True], ids=["no-newline", "with-newline"])
def test_oversize_frame_is_answered_with_an_error_and_the_connection_closed(shared, engine, newline):
    assert MAX_FRAME == 1048576 * 6 + 256 * 1024
    padding = b"x" * (MAX_FRAME + 1024)
    data = b'{"jsonrpc": "2.0", "id": 1, "method": "engine.info", "params": {"pad": "' + padding + b'"}}'
    if newline:
        data += b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(shared.path)
        sender = _send_in_background(s, data)
        raw = read_all(s)  # returns only once the server closes the connection
        sender.join(30)
    assert info_pid(shared.path) == engine
    replies = parse_replies(raw)
    assert len(replies) == 1, replies
    err = assert_error(replies[0], INVALID_REQUEST, None)
    assert str(MAX_FRAME) in err["message"]


def test_frame_just_under_the_limit_is_parsed(shared, engine):
    pad = "x" * (MAX_FRAME - 200)
    data = frame({"jsonrpc": "2.0", "id": 5, "method": "engine.info", "params": {"pad": pad}})
    assert len(data) <= MAX_FRAME
    replies = exchange(shared.path, data, timeout=60)
    assert len(replies) == 1
    assert_error(replies[0], INVALID_PARAMS, 5)  # parsed fine; `pad` is simply not a parameter


def test_frame_without_newline_then_eof_is_not_executed(shared, engine, monkeypatch):
    monkeypatch.chdir(shared.alice.cwd)
    body = f"cut-short-{time.time_ns()}"
    data = json.dumps(req("message.send", {"caller": "alice", "to": ["@bob"], "body": body})).encode()
    replies = exchange(shared.path, data)  # no trailing newline, then EOF
    assert len(replies) <= 1
    for r in replies:
        assert_error(r, PARSE, None)
    inbox = shared.bob.json("inbox", "--all", "--page-size", "1000")
    assert body not in [m["body"]["content"] for m in inbox["messages"]]


def test_half_a_frame_then_silence_does_not_block_others(shared, engine):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as slow:
        slow.connect(shared.path)
        slow.sendall(b'{"jsonrpc": "2.0", "id": 1, "meth')
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        idle.connect(shared.path)
        try:
            for _ in range(5):
                assert info_pid(shared.path) == engine
        finally:
            idle.close()


def test_client_hanging_up_mid_request(shared, engine):
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(shared.path)
        s.sendall(frame(req("team.list")) * 5)
        s.close()  # gone before the replies are written
    assert info_pid(shared.path) == engine


def test_many_requests_in_flight_on_one_connection(shared, engine):
    n = 300
    replies = exchange(shared.path, b"".join(frame(req("engine.info", rid=i)) for i in range(n)), timeout=60)
    assert sorted(r["id"] for r in replies) == list(range(n))
    assert all("result" in r for r in replies)


def test_oversize_body_within_the_frame_is_invalid_params_and_stores_nothing(shared, engine, monkeypatch):
    monkeypatch.chdir(shared.alice.cwd)
    body = "y" * (1048576 + 1)
    r = call(shared.path, "message.send", {"caller": "alice", "to": ["@bob"], "body": body}, timeout=60)
    err = assert_error(r, INVALID_PARAMS, 7)
    assert err.get("data", {}).get("kind") == "too_large"
    inbox = shared.bob.json("inbox", "--all", "--page-size", "1000")
    assert all(len(m["body"]["content"]) < 1048576 for m in inbox["messages"])


WRITE_CASES = {
    "body is a number": ({"caller": "alice", "to": ["@bob"], "body": 5}, INVALID_PARAMS),
    "to is a string": ({"caller": "alice", "to": "@bob", "body": "x"}, INVALID_PARAMS),
    "to holds a number": ({"caller": "alice", "to": [7], "body": "x"}, INVALID_PARAMS),
    "format unknown": ({"caller": "alice", "to": ["@bob"], "body": "x", "format": "html"}, INVALID_PARAMS),
    "missing body": ({"caller": "alice", "to": ["@bob"]}, INVALID_PARAMS),
    "unknown key": ({"caller": "alice", "to": ["@bob"], "body": "x", "cc": ["@bob"]}, INVALID_PARAMS),
    "empty body": ({"caller": "alice", "to": ["@bob"], "body": "   "}, INVALID_PARAMS),
    "json format, not json": (
        {"caller": "alice", "to": ["@bob"], "body": "{", "format": "json"},
        INVALID_PARAMS,
    ),
    "bad thread id": ({"caller": "alice", "to": ["@bob"], "body": "x", "thread_id": "nope"}, INVALID_PARAMS),
    "unknown recipient": ({"caller": "alice", "to": ["@bob", "@zed"], "body": "x"}, -32000),
    "no recipient": ({"caller": "alice", "to": [], "body": "x"}, INVALID_PARAMS),
    "unregistered caller": ({"caller": "carol", "to": ["@bob"], "body": "x"}, -32000),
    "no caller": ({"to": ["@bob"], "body": "x"}, -32000),
}


def test_bad_sends_are_refused_and_store_nothing(shared, engine, monkeypatch):
    monkeypatch.chdir(shared.alice.cwd)
    journal = Path(Layout(str(shared.repo.path)).journal_dir)
    before = {p.name: p.read_bytes() for p in journal.glob("*.jsonl")}
    for name, (params, code) in WRITE_CASES.items():
        r = call(shared.path, "message.send", params)
        assert "error" in r, (name, r)
        assert_error(r, code, 7)
    after = {p.name: p.read_bytes() for p in journal.glob("*.jsonl")}
    assert after == before


# -- the socket file ------------------------------------------------------------------------------------------------


def test_socket_file_is_0600_and_owned_by_us(pair):
    repo, alice, _ = pair
    st = os.stat(sock_path(repo))
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.getuid()
    # still 0600 after a restart under a permissive umask
    alice.ok("daemon", "stop")
    old = os.umask(0)
    try:
        alice.ok("daemon", "start")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(sock_path(repo)).st_mode) == 0o600


# -- peer credentials -----------------------------------------------------------------------------------------------


def _journal_bytes(repo) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in Path(Layout(str(repo.path)).journal_dir).glob("*.jsonl")}


def test_forged_caller_is_refused_and_nothing_is_stored(pair, monkeypatch):
    repo, alice, bob = pair
    path = sock_path(repo)
    before = _journal_bytes(repo)
    monkeypatch.chdir(alice.cwd)  # this process now runs in alice's worktree
    r = call(path, "message.send", {"caller": "bob", "to": ["@alice"], "body": "forged by alice"})
    err = assert_error(r, -32000, 7)
    assert err["data"]["kind"] == "forbidden"
    for method, params in (
        ("message.inbox", {"caller": "bob"}),
        ("message.read", {"caller": "bob", "all": True}),
        ("session.set_intent", {"caller": "bob", "text": "hijacked"}),
        ("agent.set_status", {"caller": "bob", "status": "blocked"}),
        ("session.end", {"caller": "bob"}),
    ):
        r = call(path, method, params)
        assert r.get("error", {}).get("data", {}).get("kind") == "forbidden", (method, r)
    # a nested subdirectory of alice's worktree is still alice's worktree
    sub = alice.cwd / "src" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    r = call(path, "message.send", {"caller": "bob", "to": ["@alice"], "body": "forged from a subdir"})
    assert r["error"]["data"]["kind"] == "forbidden"
    # the real alice, same place, is fine
    r = call(path, "message.send", {"caller": "alice", "to": ["@bob"], "body": "genuine"})
    assert r["result"]["message_id"].startswith("msg_")
    monkeypatch.chdir(repo.path.parent)
    assert _journal_bytes(repo) != before  # only the genuine one went in
    assert [m["body"]["content"] for m in alice.json("inbox", "--page-size", "1000")["messages"]] == []
    assert bob.json("sent")["messages"] == []
    [bob_member] = [m for m in alice.json("team", "--all")["members"] if m["name"] == "bob"]
    assert bob_member["intent"] != "hijacked" and bob_member["status"] != "blocked"
    assert bob_member["session_id"] is not None
    assert [m["body"]["content"] for m in bob.json("inbox")["messages"]] == ["genuine"]
    journal = b"".join(_journal_bytes(repo).values())
    assert b"forged" not in journal and b"hijacked" not in journal


def test_forged_caller_from_the_main_checkout_is_refused(pair, monkeypatch):
    repo, _alice, _bob = pair
    before = _journal_bytes(repo)
    monkeypatch.chdir(repo.path)  # the main checkout: a worktree, but neither alice's nor bob's
    r = call(sock_path(repo), "message.send", {"caller": "alice", "to": ["@bob"], "body": "from main"})
    assert r["error"]["data"]["kind"] == "forbidden"
    assert _journal_bytes(repo) == before


@pytest.mark.parametrize("where", ["outside-git", "other-repo"])
def test_caller_outside_every_worktree_may_only_read(pair, make_repo, tmp_path, monkeypatch, where):
    repo, alice, bob = pair
    path = sock_path(repo)
    sent = alice.json("send", "readable", "--to", "@bob")["message_id"]
    before = _journal_bytes(repo)
    if where == "outside-git":
        cwd = tmp_path / "elsewhere"
        cwd.mkdir()
    else:
        cwd = make_repo("other").path
    monkeypatch.chdir(cwd)

    team = call(path, "team.list", {"all": True})
    assert sorted(m["name"] for m in assert_result(team, 7)["members"]) == ["alice", "bob"]
    assert "result" in call(path, "agent.list", {})
    assert "result" in call(path, "engine.info", {})
    got = call(path, "message.get", {"message_id": sent})
    assert assert_result(got, 7)["message"]["body"]["content"] == "readable"

    for method, params in (
        ("message.send", {"caller": "alice", "to": ["@bob"], "body": "from outside"}),
        ("message.send", {"to": ["@bob"], "body": "from outside, anonymous"}),
        ("message.reply", {"caller": "bob", "message_id": sent, "body": "from outside"}),
        ("message.inbox", {"caller": "bob"}),
        ("message.read", {"caller": "bob", "all": True}),
        ("agent.register", {"name": "mallory", "role": "intruder"}),
        ("agent.delete", {"name": "bob", "force": True}),
        ("session.set_intent", {"caller": "alice", "text": "outside"}),
        ("message.purge", {"all": True, "confirm": True}),
        ("doctor.rebuild", {}),
    ):
        r = call(path, method, params)
        assert "error" in r, (method, r)
        assert r["error"]["data"]["kind"] == "forbidden", (method, r)
    monkeypatch.chdir(alice.cwd)
    assert _journal_bytes(repo) == before
    assert sorted(m["name"] for m in alice.json("team", "--all")["members"]) == ["alice", "bob"]
    assert [m["body"]["content"] for m in bob.json("inbox")["messages"]] == ["readable"]


def test_cli_from_outside_with_repo_flag_can_read_but_not_write(pair, tmp_path):
    repo, alice, bob = pair
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**alice.env, "THRUM_NAME": "alice"}
    r = run_thrum(["--repo", str(repo.path), "team", "--all", "--json"], outside, env)
    assert r.code == 0, r.err
    assert sorted(m["name"] for m in json.loads(r.out)["members"]) == ["alice", "bob"]
    r = run_thrum(["--repo", str(repo.path), "send", "sneaky", "--to", "@bob"], outside, env)
    assert r.code == 1
    assert r.err.startswith("Error: ") and len(r.err.strip().splitlines()) == 1
    assert bob.json("inbox")["messages"] == []


# -- text that is not valid Unicode -------------------------------------------------------------------------------------

# `\ud800` is a lone surrogate: valid JSON, but not encodable as UTF-8. A CLI argument holding an invalid
# UTF-8 byte reaches the engine exactly like this (Python decodes argv with surrogateescape).
SURROGATE_CASES = {
    "send body": ("message.send", {"caller": "alice", "to": ["@bob"], "body": "bad \ud800 body"}),
    "send scope": (
        "message.send",
        {"caller": "alice", "to": ["@bob"], "body": "ok", "scopes": ["module:\udcff"]},
    ),
    "send ref": ("message.send", {"caller": "alice", "to": ["@bob"], "body": "ok", "refs": ["pr:\udcff"]}),
    "unknown recipient": ("message.send", {"caller": "alice", "to": ["@b\udcffb"], "body": "ok"}),
    "intent": ("session.set_intent", {"caller": "alice", "text": "bad \udcff intent"}),
    "caller name": ("message.send", {"caller": "al\udcffice", "to": ["@bob"], "body": "ok"}),
}


def _short_request_timeout(agent) -> None:
    """Restart the engine with a 5 s request timeout so a stuck request fails fast."""
    agent.ok("daemon", "stop")
    agent.ok("daemon", "start", THRUM_ENGINE__REQUEST_TIMEOUT_SECONDS="5")
    cfg = assert_result(call(sock_path_of_agent(agent), "config.show"), 7)["config"]
    assert cfg["engine"]["request_timeout_seconds"] == 5


def sock_path_of_agent(agent) -> str:
    return Layout.discover(str(agent.cwd)).socket_path


@pytest.mark.parametrize("name", list(SURROGATE_CASES))
def test_unencodable_text_gets_an_answer_and_never_wedges_the_engine(pair, monkeypatch, name):
    repo, alice, bob = pair
    path = sock_path(repo)
    method, params = SURROGATE_CASES[name]
    _short_request_timeout(alice)
    monkeypatch.chdir(alice.cwd)
    replies = exchange(path, json.dumps(req(method, params, rid=1)).encode() + b"\n", timeout=60)
    assert len(replies) == 1, f"no reply at all: {replies}"
    assert replies[0]["id"] == 1
    if "error" in replies[0]:
        assert replies[0]["error"]["code"] in (INVALID_PARAMS, -32000), replies[0]
    # writes still work, promptly, and the journal stays valid UTF-8 JSON lines
    r = call(path, "message.send", {"caller": "alice", "to": ["@bob"], "body": "still writable"})
    assert "result" in r, r
    r = call(path, "session.set_intent", {"caller": "alice", "text": "fine"})
    assert "result" in r, r
    for shard in Path(Layout(str(repo.path)).journal_dir).glob("*.jsonl"):
        for line in shard.read_bytes().splitlines():
            json.loads(line.decode("utf-8"))
    assert "still writable" in [m["body"]["content"] for m in bob.json("inbox")["messages"]]


def test_invalid_utf8_in_a_cli_argument_never_wedges_the_engine(pair):
    _repo, alice, bob = pair
    _short_request_timeout(alice)
    env = dict(alice.env)
    r = run_thrum(["session", "set-intent", "bad \udcff byte"], alice.cwd, env, timeout=90)
    if r.code != 0:
        assert r.err.startswith("Error: ") and len(r.err.strip().splitlines()) == 1, r.err
    alice.ok("send", "after the bad byte", "--to", "@bob")
    assert "after the bad byte" in [m["body"]["content"] for m in bob.json("inbox")["messages"]]

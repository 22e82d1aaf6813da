"""Bounds on what one request may ask for or store (F10, F16, F18): pages, NaN, `to` lists, bodies
of control characters, and listings paged by bytes as well as by count."""

from __future__ import annotations

import json

from conftest import assert_error, run_python, shard_file

# Raw frames over the engine's real socket, from inside the agent's worktree (so the caller is verified).
RAW = r"""
import json, socket, sys
from thrum_engine.layout import Layout
layout = Layout.discover()
s = socket.socket(socket.AF_UNIX)
s.connect(layout.socket_path)
f = s.makefile("rb")
out = []
for frame in json.loads(sys.stdin.read()):
    s.sendall(frame.encode() + b"\n")
    reply = json.loads(f.readline())
    if "result" in reply:
        r = reply["result"]
        out.append({"result": r, "bytes": len(json.dumps(r, ensure_ascii=False).encode())})
    else:
        out.append({"error": reply["error"]})
print(json.dumps(out))
"""


# Every page of bob's inbox, oldest first, each request at the offset the last page gave.
INBOX_PAGES = r"""
import json, socket, sys
from thrum_engine.layout import Layout
s = socket.socket(socket.AF_UNIX)
s.connect(Layout.discover().socket_path)
f = s.makefile("rb")
pages, offset, rid = [], 0, 0
while offset is not None:
    rid += 1
    params = {"caller": "bob", "page_size": 100, "offset": offset, "peek": True, "oldest": True}
    s.sendall(json.dumps({"jsonrpc": "2.0", "id": rid, "method": "message.inbox", "params": params}).encode() + b"\n")
    r = json.loads(f.readline())["result"]
    pages.append({"result": r, "bytes": len(json.dumps(r, ensure_ascii=False).encode())})
    offset = r["next_offset"]
print(json.dumps(pages))
"""


def raw(agent, *frames: str, script: str = RAW) -> list[dict]:
    proc = run_python(agent, script, input=json.dumps(frames))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def frame(method: str, params: str, rid: int = 1) -> str:
    return f'{{"jsonrpc": "2.0", "id": {rid}, "method": "{method}", "params": {params}}}'


def test_pages_and_nan_are_invalid_params_not_internal_errors(pair):
    """F16: `--page 10**21` and RPC `page: 10**18` were OverflowErrors; `after: NaN` a ValueError."""
    _repo, alice, bob = pair
    alice.ok("send", "hi", "--to", "@bob")
    for flag, value in (
        ("--page", "1000000000000000000000"),
        ("--page", "0"),
        ("--page", "x"),
        ("--page-size", "1001"),
        ("--page-size", "0"),
        ("--page", "-3"),
    ):
        line = assert_error(bob.run("inbox", f"{flag}={value}"), flag)
        assert "internal" not in line
    replies = raw(
        bob,
        frame("message.inbox", '{"caller": "bob", "page": 1000000000000000000}'),
        frame("message.inbox", '{"caller": "bob", "page_size": 1001}'),
        frame("message.inbox", '{"caller": "bob", "offset": -1}'),
        frame("message.wait", '{"caller": "bob", "after": NaN, "timeout": 0}'),
        frame("message.wait", '{"caller": "bob", "timeout": Infinity}'),
        frame("agent.cleanup", '{"caller": "bob", "threshold_days": NaN}'),
    )
    for r in replies:
        assert r["error"]["code"] == -32602, r
        assert "internal" not in r["error"]["message"]
    assert bob.json("inbox", "--page-size", "1000")["total"] == 1


def test_duplicate_recipients_collapse_and_huge_to_lists_are_refused(pair):
    """F18: `to: ["@bob"] * 100000` was accepted and journaled as a 700 KB event."""
    repo, alice, bob = pair
    mid = alice.json("send", "once", *["--to", "@bob"] * 50, "--to", "bob", "--to", " @bob")["message_id"]
    assert alice.json("message", "get", mid)["message"]["to"] == ["@bob"]
    many = json.dumps({"caller": "alice", "body": "x", "to": ["@bob"] * 100_000})
    distinct = json.dumps({"caller": "alice", "body": "x", "to": [f"@nobody{i}" for i in range(300)]})
    [dup, wide] = raw(alice, frame("message.send", many), frame("message.send", distinct, 2))
    assert "result" in dup and dup["result"]["recipients"] == ["bob"]
    assert wide["error"]["code"] == -32602 and "too many --to" in wide["error"]["message"]
    journal = shard_file(repo.path, "alice")
    assert max(len(line) for line in journal.read_bytes().splitlines()) < 2000
    # Message ids too: repeats collapse, and a list past what one SQL statement may hold is refused.
    ids = json.dumps({"caller": "bob", "message_ids": [mid] * 50_000})
    wide = json.dumps({"caller": "bob", "message_ids": [f"msg_{i:026d}" for i in range(20_000)]})
    [read, too_many] = raw(bob, frame("message.read", ids), frame("message.read", wide, 2))
    assert read["result"]["message_ids"] == [mid]
    assert too_many["error"]["code"] == -32602 and "too many message id" in too_many["error"]["message"]


def test_the_body_cap_is_on_the_stored_size_so_control_characters_cannot_amplify(pair, tmp_path):
    """F18: a 1 MiB body of \\u0001 was 6.3 MB in the journal and in every response."""
    repo, alice, bob = pair
    cap = 4096
    repo.stop()
    env = {"THRUM_MESSAGES__MAX_BODY_BYTES": str(cap)}
    for who in (alice, bob):
        who.env.update(env)
    repo.env.update(env)
    body = tmp_path / "ctl.txt"
    body.write_text("\x01" * (cap - 16))
    line = assert_error(alice.run("send", "--body-file", str(body), "--to", "@bob"), "as stored", str(cap))
    assert "internal" not in line
    body.write_text("\x01" * (cap // 6 - 2))  # fits once escaped
    alice.ok("send", "--body-file", str(body), "--to", "@bob")
    body.write_text("é" * (cap // 2 - 8) + "\n")  # non-ASCII is stored as UTF-8, not escaped
    alice.ok("send", "--body-file", str(body), "--to", "@bob")
    journal = shard_file(repo.path, "alice")
    assert max(len(line) for line in journal.read_bytes().splitlines()) < cap + 1024
    assert bob.json("inbox")["total"] == 2


def test_listings_are_paged_by_bytes_and_paging_returns_every_message(make_repo):
    """F10: `inbox --page-size 100` over 100 bodies of ~1 MiB built a 629 MB response (2 GB peak).
    The same shape at 1/16 the size: bodies of 64 KiB and a page budget of 256 KiB (the default is
    4 MiB), so a page still holds about four bodies and paging takes 25 pages or more."""
    repo = make_repo()
    body_size = 64 * 1024
    budget = 4 * body_size
    slack = budget // 16  # the page's JSON around the bodies (256 KiB on the default 4 MiB)
    repo.env["THRUM_MESSAGES__MAX_PAGE_BYTES"] = str(budget)
    alice = repo.agent("alice", "implementer", module="auth")
    bob = repo.agent("bob", "reviewer")
    sends = [
        frame(
            "message.send",
            json.dumps({"caller": "alice", "body": f"{i:03d}" + "x" * (body_size - 64), "to": ["@bob"]}),
            i + 1,
        )
        for i in range(100)
    ]
    assert all("result" in r for r in raw(alice, *sends))
    seen: list[str] = []
    pages = 0
    for r in raw(bob, script=INBOX_PAGES):  # one connection, every page in turn
        page = r["result"]
        assert 1 <= len(page["messages"]) and r["bytes"] < budget + slack, (
            len(page["messages"]),
            r["bytes"],
        )
        assert page["total"] == 100 and page["truncated"] == (page["next_offset"] is not None)
        seen += [m["body"]["content"][:3] for m in page["messages"]]
        pages += 1
    assert seen == [f"{i:03d}" for i in range(100)] and pages >= 25
    [sent] = raw(alice, frame("message.sent", '{"caller": "alice", "limit": 100}'))
    assert sent["bytes"] < budget + slack and sent["result"]["truncated"] is True
    [feed] = raw(alice, frame("message.feed", '{"caller": "alice", "limit": 100}'))
    assert feed["bytes"] < budget + slack and feed["result"]["truncated"] is True
    out = bob.ok("inbox", "--page-size", "100").out
    assert "--offset" in out


def test_the_cap_covers_the_whole_message_not_only_its_body(pair, tmp_path):
    """A tiny body with a 100 KB `--structured` or big `--scope`s/`--ref`s was accepted past a
    1000-byte limit (raw RPC stored 5 MB structured parts): the cap is on all that is stored."""
    repo, alice, bob = pair
    cap = 1000
    repo.stop()
    env = {"THRUM_MESSAGES__MAX_BODY_BYTES": str(cap)}
    for who in (alice, bob):
        who.env.update(env)
    repo.env.update(env)
    first = alice.json("send", "x" * cap, "--to", "@bob")["message_id"]  # a body at the cap still fits
    big = json.dumps({"blob": "y" * 100_000})
    for extra in (
        ["--structured", big],
        ["--scope", "t1:" + "v" * 600, "--scope", "t2:" + "v" * 600],
        ["--ref", "bd:" + "r" * 1200],
        ["--structured", json.dumps({"k": "z" * 600}), "--scope", "t:" + "v" * 500],
    ):
        line = assert_error(alice.run("send", "tiny", "--to", "@bob", *extra), str(cap), "max_body_bytes")
        assert "internal" not in line
    assert_error(alice.run("send", "x" * 900, "--to", "@bob", "--scope", "t:" + "v" * 200), "max_body_bytes")
    # the same through raw RPC (as much as a frame takes), and an edit that would push a kept structured part over it
    (r,) = raw(
        alice,
        frame(
            "message.send",
            json.dumps({"caller": "alice", "to": ["@bob"], "body": "tiny", "structured": "s" * 200 * cap}),
        ),
    )
    assert "max_body_bytes" in r["error"]["message"], r
    half = alice.json("send", "ok", "--to", "@bob", "--structured", json.dumps({"k": "z" * 600}))[
        "message_id"
    ]
    assert_error(alice.run("message", "edit", half, "w" * 600), "max_body_bytes")
    assert_error(alice.run("reply", first, "r" * (cap + 1)), "max_body_bytes")
    journal = shard_file(repo.path, "alice")
    assert max(len(line) for line in journal.read_bytes().splitlines()) < cap + 1024
    assert [m["message_id"] for m in bob.json("inbox")["messages"]] == [half, first]


# Frames with start-by times, read on the engine's clocks.
START_BY = r"""
import json, socket, sys, time
from thrum_engine.layout import Layout
s = socket.socket(socket.AF_UNIX)
s.connect(Layout.discover().socket_path)
f = s.makefile("rb")
out = []
for i, (field, delta) in enumerate(json.loads(sys.argv[1])):
    clock = time.monotonic() if field == "start_by_mono" else time.time()
    frame = {"jsonrpc": "2.0", "id": i, "method": "agent.whoami", "params": {"caller": "alice"}, field: clock + delta}
    s.sendall((json.dumps(frame) + "\n").encode())
    reply = json.loads(f.readline())
    out.append("result" in reply or reply["error"]["data"]["kind"])
print(json.dumps(out))
"""


def test_a_request_expires_on_the_monotonic_clock_that_a_wall_clock_step_leaves_alone(pair):
    """The start-by time was on the wall clock: a step between client and engine (NTP, a resumed VM)
    answered `request expired before it could start` (walk B, 14). Clients send `start_by_mono`;
    an older client's wall-clock `start_by` still counts."""
    _repo, alice, _bob = pair
    cases = [("start_by_mono", 30), ("start_by_mono", -1), ("start_by", 30), ("start_by", -1)]
    r = run_python(alice, START_BY, json.dumps(cases))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [True, "expired", True, "expired"]


def test_a_structured_part_a_reader_could_not_take_back_is_refused(pair):
    """Reliability probe (session 22, R1): a `--structured` 198 levels deep was stored, and every
    later `inbox` of its reader (and `sent` of its author) failed to parse the answer, after marking
    the page read; NaN and Infinity went into the journal as lines that are not JSON."""
    _repo, alice, bob = pair
    first = alice.json("send", "before", "--to", "@bob")["message_id"]
    for value, words in (
        ("[" * 198 + "]" * 198, "nested more than 32 levels"),
        ("[" * 33 + "]" * 33, "nested more than 32 levels"),
        ("NaN", "NaN and infinities"),
        ('{"a": [1, -Infinity]}', "NaN and infinities"),
    ):
        assert_error(alice.run("send", "deep", "--to", "@bob", "--structured", value), words)
    kept = alice.json("send", "ok", "--to", "@bob", "--structured", "[" * 32 + "]" * 32)["message_id"]
    assert [m["message_id"] for m in bob.json("inbox")["messages"]] == [kept, first]
    assert len(alice.json("sent")["messages"]) == 2

"""Every numeric, duration and time option, given NaN, an infinity, a huge or a negative value, is one
line `Error: ...` and exit 1 (`wait`: 2, its exit 1 is a timeout), never a traceback; and the same
values in raw RPC params are invalid params, never the engine's internal error."""

from __future__ import annotations

import json

import pytest

from conftest import assert_error
from test_cli_errors import frame, raw

# (argv before the value, the flag; whether a negative value means something: `--after -30s`,
# `purge --before 7d` / `-7d` and `logs --since` count back from now)
OPTIONS = [
    (["send", "x", "--to", "@bob", "--due"], False),
    (["reply", "{mid}", "x", "--due"], False),
    (["wait", "--timeout"], False),
    (["wait", "--timeout", "0", "--after"], True),
    (["schedule", "create", "x", "--to", "@bob", "--in"], False),
    (["schedule", "create", "x", "--to", "@bob", "--at"], True),
    (["inbox", "--page-size"], False),
    (["inbox", "--page"], False),
    (["inbox", "--offset"], False),
    (["inbox", "--limit"], False),
    (["sent", "--limit"], False),
    (["purge", "--before"], True),
    (["agent", "cleanup", "--threshold"], False),
    (["tmux", "capture", "s1", "--lines"], False),
    (["tmux", "queue", "s1", "echo", "--timeout"], False),
    (["tmux", "queue", "s1", "echo", "--silence"], False),
    (["monitor", "start", "--name", "m", "--match", "x", "--to", "@bob", "--debounce"], False),
    (["monitor", "logs", "mon_01M98EPZQ13FT2KHGXS9EX1H8Z", "--limit"], False),
    (["review", "history", "--limit"], False),
    (["daemon", "logs", "--lines"], False),
    (["daemon", "logs", "--since"], True),
]
BAD = ["nan", "NaN", "inf", "-inf", "1e400", "1e308", "99999999999h", "99999999999999999999999", "abc"]


@pytest.fixture(scope="module")
def duo(make_module_repo):
    repo = make_module_repo()
    alice = repo.agent("alice", "implementer")
    bob = repo.agent("bob", "reviewer")
    mid = alice.json("send", "hello", "--to", "@bob")["message_id"]
    alice.ok("daemon", "logs")  # a log to read
    return repo, alice, bob, mid


CASES = [
    pytest.param(argv, value, id=f"{' '.join(argv)} {value}")
    for argv, negative_ok in OPTIONS
    for value in BAD + ([] if negative_ok else ["-5"])
]


@pytest.mark.parametrize(("argv", "value"), CASES)
def test_a_bad_number_is_one_error_line(duo, argv, value):
    repo, alice, bob, mid = duo
    args = [a.replace("{mid}", mid) for a in argv]
    if args[:2] == ["tmux", "queue"]:  # the command goes after the flags
        args = [*args[:3], *args[4:], value, "--", "echo"]
    else:
        args.append(value)
    if args[0] == "monitor" and args[1] == "start":
        args += ["--", "true"]
    r = bob.run(*args, timeout=60)
    line = assert_error(r, code=2 if args[0] == "wait" else 1)
    assert "internal" not in line and "Traceback" not in r.err


def test_nothing_was_stored_by_the_refused_values(duo):
    repo, alice, bob, mid = duo
    assert [m["message_id"] for m in bob.json("inbox", "--unread")["messages"]] in ([mid], [])
    assert alice.json("sent")["messages"][0]["message_id"] == mid
    assert len(alice.json("sent")["messages"]) == 1
    assert alice.json("schedule", "list")["schedules"] == []
    assert alice.json("monitor", "list") == []


RPC = [
    ("message.wait", {"timeout": 0, "after": "X"}),
    ("message.wait", {"timeout": "X"}),
    ("message.send", {"to": ["@bob"], "body": "x", "due": "X"}),
    ("agent.cleanup", {"threshold_days": "X"}),
    ("schedule.create", {"to": ["@bob"], "body": "x", "in_seconds": "X"}),
    ("message.inbox", {"page": "X"}),
    ("message.inbox", {"page_size": "X"}),
    ("message.purge", {"before": "X"}),
    ("tmux.queue", {"session": "s1", "command": "echo", "timeout": "X"}),
]
RAW_BAD = ["NaN", "Infinity", "-Infinity", "1e400", "1e308", "-1e308", "100000000000000000000000000"]


@pytest.mark.parametrize("value", RAW_BAD)
@pytest.mark.parametrize(("method", "params"), RPC, ids=lambda x: x if isinstance(x, str) else "")
def test_a_bad_number_in_rpc_params_is_invalid_params(duo, method, params, value):
    repo, alice, bob, mid = duo
    text = json.dumps({"caller": "bob", **params})
    # a timestamp field takes the value as a string; the others as the bare JSON number
    text = text.replace('"X"', json.dumps(value) if method == "message.purge" else value)
    (r,) = raw(bob, frame(method, text))
    assert "error" in r, r
    assert r["error"]["code"] in (-32602, -32000), r
    assert "internal" not in r["error"]["message"], r

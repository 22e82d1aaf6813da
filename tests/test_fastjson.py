"""orjson in the engine writes exactly the bytes the stdlib encoder wrote: journal lines written by a
real engine, the answers it gives, and the values where the two libraries differ; and it reads
what the stdlib read, with the stdlib's errors."""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

import pytest

from conftest import start_inproc_engine
from thrum_engine import fastjson
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.writer import encode

_stdlib = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_stdlib_sorted = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def stdlib_line(ev: dict) -> bytes:
    """The journal line as the writer encoded it before orjson."""
    return (_stdlib_sorted.encode(ev) + "\n").encode()


BODIES = [
    "plain",
    "caf\u00e9 \u2603 \U0001f600 \u2028\u2029",
    'quotes " and \\ backslashes / slashes',
    "controls \x00\x01\x08\x0b\x0c\x1f\x7f \t\n\r",
    "x" * 5000,
]
STRUCTURED = [
    {"n": 1, "ok": True, "none": None, "list": [1, "a", [2, {"b": []}]]},
    {"f": 0.1, "tiny": 1.5e-05, "big": 1e16, "neg": -0.0, "exp": 1e-300},
    {"nan": math.nan, "inf": math.inf, "ninf": -math.inf},
    {"huge": 2**70, "neg_huge": -(2**70), "u64": 2**64 - 1},
    {"z": 1, "a": 2, "\u00e9": 3, "\U0001f600": 4, "A": 5},
]


@pytest.fixture
async def engine(tmp_path, monkeypatch):
    e = await start_inproc_engine(tmp_path, monkeypatch, "fastjson")
    yield e
    await e.stop()


async def test_journal_lines_and_answers_of_a_real_engine_are_the_stdlib_bytes(engine):
    answers = []

    async def call(method: str, params: dict, who: str | None = None) -> dict:
        r = await engine.call(method, params, Caller.trusted(who))
        answers.append({"jsonrpc": "2.0", "id": len(answers), "result": r})
        return r

    for n in ("alice", "bob", "carol"):
        await call("agent.register", {"name": n, "role": "worker"})
    sent = []
    for body in BODIES:
        sent.append(await call("message.send", {"body": body, "to": ["@bob", "@carol"]}, "alice"))
    for s in STRUCTURED:
        if "nan" in s:  # a send refuses what JSON has no words for (session 22): tested on its own below
            continue
        await call("message.send", {"body": "data", "to": ["@bob"], "structured": s}, "alice")
    await call("message.send", {"body": "all", "to": ["@everyone"], "scopes": ["module:auth"]}, "carol")
    await call("message.reply", {"message_id": sent[0]["message_id"], "body": "re \u00e9"}, "bob")
    await call("message.edit", {"message_id": sent[1]["message_id"], "body": "edited \x01"}, "alice")
    await call("message.inbox", {"page_size": 50}, "bob")
    await call("message.inbox", {"page_size": 50, "unread": True}, "carol")
    await call("message.sent", {}, "alice")
    await call("message.read", {"all": True}, "carol")
    await call("engine.info", {})
    await call("team.list", {})

    lines = []
    for shard in Path(engine.layout.journal_dir).glob("*.jsonl"):
        lines += shard.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 18
    for line in lines:
        ev = json.loads(line)
        assert line == stdlib_line(ev)  # what the engine wrote with orjson in the loop
        assert encode(ev) == stdlib_line(ev)
        assert fastjson.loads(line) == json.loads(line) or "NaN" in line.decode()
    for frame in answers:
        assert fastjson.dumps(frame) == _stdlib.encode(frame).encode()


@pytest.mark.parametrize("value", [*STRUCTURED, {"t": (1, "a")}, {"deep": [[[[{"x": [0.5]}]]]]}])
def test_values_where_the_libraries_differ_are_written_by_the_stdlib(value):
    assert fastjson.dumps(value) == _stdlib.encode(value).encode()
    assert fastjson.dumps(value, sort_keys=True) == _stdlib_sorted.encode(value).encode()


@pytest.mark.parametrize(
    "value,error",
    [
        ({"s": "\ud800"}, UnicodeEncodeError),
        ({"d": datetime.date(2026, 1, 1)}, TypeError),
        ({"o": object()}, TypeError),
        ({1: "int key"}, None),
        ({(1, 2): "tuple key"}, TypeError),
    ],
)
def test_what_the_stdlib_refuses_is_refused_alike(value, error):
    def stdlib():
        return _stdlib.encode(value).encode()

    if error is None:
        assert fastjson.dumps(value) == stdlib()
        return
    with pytest.raises(error):
        stdlib()
    with pytest.raises(error):
        fastjson.dumps(value)


def test_nesting_past_the_stack_fails_as_the_stdlib_does():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RecursionError):
        _stdlib.encode({"d": deep})
    with pytest.raises(RecursionError):
        fastjson.dumps({"d": deep})


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":2}',
        b'{"n":18446744073709551616,"m":-18446744073709551617}',
        b'{"n":18446744073709551615,"f":0.1000000000000000055511151231257827}',
        b'{"x":NaN,"y":Infinity,"z":-Infinity}',
        b'{"big":1E400}',
        b'{"s":"\\ud83d\\ude00","t":"\\u00e9\\n"}',
        b'{"lone":"\\ud800"}',
        '{"utf16":1}'.encode("utf-16"),
        b" [1, 2.5, true, null] \n",
    ],
)
def test_loads_reads_what_the_stdlib_reads(raw):
    expected = json.loads(raw)
    got = fastjson.loads(raw)
    assert repr(got) == repr(expected)
    assert fastjson.loads(raw.decode("utf-8", "surrogatepass") if b"\x00" not in raw else raw) is not None


@pytest.mark.parametrize("raw", [b"", b"{", b'{"a":1}x', b"[1,]", b'"\x01"', b"\xff", b"01"])
def test_loads_fails_with_the_stdlib_error(raw):
    with pytest.raises((ValueError, UnicodeDecodeError)) as stdlib_error:
        json.loads(raw)
    with pytest.raises(type(stdlib_error.value)) as ours:
        fastjson.loads(raw)
    assert str(ours.value) == str(stdlib_error.value)


def test_a_vouched_answer_is_still_made_terminal_safe():
    """The console filters every engine answer by walking its dicts, lists and strings; an answer
    the engine vouched for is a dict subclass (`Plain`), and once slipped through that walk whole:
    an agent's ESC and OSC 52 reached the operator's terminal. Every subclass is walked."""
    from thrum_engine.terminal_text import terminal_safe_data

    class Line(str):
        pass

    evil = "hi \x1b]52;c;ZXZpbA==\x07 \x1b[2J\rboss \x9b1m"
    shown = "hi ␛]52;c;ZXZpbA==␇ ␛[2J␍boss \\x9b1m"
    answer = fastjson.Plain(messages=[fastjson.Plain(body=evil)], note=Line(evil), tags=(evil,))
    assert terminal_safe_data(answer) == {"messages": [{"body": shown}], "note": shown, "tags": [shown]}
    assert answer["messages"][0]["body"] == evil  # the engine's own object is not touched


@pytest.mark.parametrize(
    "raw",
    [
        b'{"n": 123456789012345678901}',  # a 21-digit int: orjson would read a float
        b'{"n": -12345678901234567890, "m": 1}',
        b'{"a": "2026-12-03T17:31:03.442762Z", "b": 1234567890, "c": 12345678901}',  # many digits, no run of 20
        b'{"s": "01234567890123456789"}',  # a run of 20 digits inside a string
        b"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]",
        b'{"n": 1e400}',
    ],
)
def test_loads_reads_long_numbers_as_the_stdlib_does(raw):
    """The digit-count shortcut in front of the long-number check changes no result."""
    got, want = fastjson.loads(raw), json.loads(raw)
    assert got == want
    assert type(got) is type(want)

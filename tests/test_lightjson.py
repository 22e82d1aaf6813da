"""The CLI's JSON codec agrees with the json module on what it accepts, refuses and produces."""

from __future__ import annotations

import json
import math
import random

import pytest

from thrum_engine.rpc import lightjson

ALPHABET = [
    "a",
    " ",
    '"',
    "\\",
    "\n",
    "\t",
    "\x00",
    "\x1f",
    "é",
    "😀",
    "\u2028",
    "\ud800",
    "\udcff",
    "/",
    "\x7f",
]


def _string(rnd: random.Random) -> str:
    return "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 8)))


def _value(rnd: random.Random, depth: int = 0):
    k = rnd.randint(0, 8 if depth < 4 else 4)
    if k == 0:
        return None
    if k == 1:
        return rnd.choice([True, False])
    if k == 2:
        return rnd.randint(-(10**20), 10**20)
    if k == 3:
        return rnd.choice([0.0, -0.0, 1.5, 1e300, -2.5e-300, rnd.random() * 1e6, math.inf, -math.inf])
    if k == 4:
        return _string(rnd)
    if k in (5, 6):
        return [_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return {_string(rnd): _value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


def _json_verdict(text: str):
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


def _light_verdict(text: str):
    try:
        return True, lightjson.loads(text)
    except ValueError:  # the only error it raises
        return False, None


def test_random_documents_and_their_corruptions_read_as_json_reads_them():
    rnd = random.Random(7)
    for _ in range(1500):
        value = _value(rnd)
        for text in (
            json.dumps(value),
            json.dumps(value, ensure_ascii=False, indent=2),
            lightjson.dumps(value),
        ):
            assert _same(lightjson.loads(text), json.loads(text)), text
        assert _same(json.loads(lightjson.dumps(value)), json.loads(json.dumps(value)))
        lightjson.dumps(value).encode("utf-8")  # lone surrogates are escaped, so this never fails
        text = json.dumps(value)
        for _ in range(3):
            p = rnd.randrange(len(text))
            c = rnd.choice('{}[]",:0-.eE\\u tfn1x\x01')
            broken = rnd.choice([text[:p] + c + text[p:], text[:p] + text[p + 1 :], text[:p]])
            (ok_j, got_j), (ok_l, got_l) = _json_verdict(broken), _light_verdict(broken)
            assert ok_j == ok_l, broken
            assert not ok_j or _same(got_j, got_l), broken


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "-",
        "01",
        "1.",
        ".5",
        "+1",
        "1e",
        "1e+",
        "1_0",
        "0x10",
        "nul",
        "[1,]",
        '{"a":1,}',
        "[1,",
        '"abc',
    ]
    + ['"\\u12"', '"\\x"', '"\\u+123"', '"\\u 123"', '"a\x01"', "[" * 1000 + "]" * 1000, "{} {}"],
)
def test_what_json_refuses_is_a_value_error(text):
    assert _json_verdict(text)[0] is False or text.startswith("[[")
    with pytest.raises(ValueError):
        lightjson.loads(text)


@pytest.mark.parametrize(
    "text",
    [" 1 ", "-0", "-1.5e-3", "NaN", "-Infinity", '"\\ud83d\\ude00"', '"\\ud83d"', '"\\/"', '{"a":[{},[]]}'],
)
def test_what_json_accepts_reads_the_same(text):
    assert _same(lightjson.loads(text), json.loads(text))


def test_a_large_answer_is_read_by_json_and_agrees():
    doc = json.dumps([{"body": "line\n" * 50, "n": i} for i in range(500)])
    assert len(doc) > lightjson.C_ABOVE
    assert lightjson.loads(doc) == json.loads(doc)
    with pytest.raises(ValueError):
        lightjson.loads(doc[:-1])

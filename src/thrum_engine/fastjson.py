"""orjson for the engine's hot paths (journal lines, RPC frames), byte for byte what the stdlib wrote.

orjson's output is the stdlib's (compact separators, UTF-8 unescaped, the same string escapes)
except for floats: NaN and infinities (orjson writes `null`, the stdlib `NaN`) and magnitudes
below 1e-4 (`0.000015` against `1.5e-05`); and it writes what the stdlib refuses (dates,
dataclasses) or raises where the stdlib writes (an int past 64 bits, a key that is not a string).
Every value holding a float or a type other than str, int, bool, None, dict, list and tuple goes to
the stdlib encoder, and so does whatever orjson refuses, so every journal line and frame is exactly
what it was. Parsing: orjson first; what it refuses (NaN, UTF-16 bytes, a lone surrogate escape,
too deep) and numbers of 20 digits or more (orjson reads an int past 64 bits as a float) are read
by the stdlib, with its results and its errors.

Engine side only: the CLI path stays on the stdlib's `_json` (import hygiene, `lightjson`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson


class Plain(dict):
    """A dict whose builder vouches that it holds only str, int, bool, None, dicts, lists and
    tuples (no float, no other type): `dumps` takes it as checked instead of walking it (~25 us of
    a 20-message inbox page). orjson and the stdlib write a dict subclass as a dict."""

    __slots__ = ()


_SCALARS = frozenset({str, bool, int, type(None), Plain})  # a Plain is checked: no walk into it
_WALKABLE = _SCALARS | {dict, list, tuple}
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_compact_sorted = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True)
_SORTED = orjson.OPT_SORT_KEYS
_LONG_NUMBER = re.compile(rb"[0-9]{20}").search
_DIGITS = b"0123456789"
_LONG_NUMBER_TEXT = re.compile(r"[0-9]{20}").search


def _plain(values) -> bool:
    """Whether these values hold only str, int, bool, None, dicts, lists and tuples (no float, no
    other type): then orjson writes them as the stdlib does. One C-level pass over each container's
    value types; only nested non-empty containers are visited in Python (~27 us for a page of 20
    messages, where the stdlib takes ~52 us to encode it and orjson ~4 us)."""
    types = set(map(type, values))
    if types <= _SCALARS:
        return True
    if not types <= _WALKABLE:
        return False
    for v in values:
        t = type(v)
        if t is dict:
            if v and not _plain(v.values()):
                return False
        elif (t is list or t is tuple) and v and not _plain(v):
            return False
    return True


def dumps(obj: Any, *, sort_keys: bool = False) -> bytes:
    """`obj` as compact UTF-8 JSON, exactly as `json.dumps(obj, separators=(",", ":"),
    ensure_ascii=False, sort_keys=sort_keys).encode()` writes it, raising what that raises
    (UnicodeEncodeError for a lone surrogate, TypeError, ValueError)."""
    try:
        plain = type(obj) is dict and _plain(obj.values())
    except RecursionError:  # nested past the stack (or circular): the stdlib's error, or its output
        plain = False
    if plain:
        try:
            return orjson.dumps(obj, option=_SORTED) if sort_keys else orjson.dumps(obj)
        except orjson.JSONEncodeError:
            pass  # a non-string key, a lone surrogate, an int past 64 bits, too deep: the stdlib's say
    return (_compact_sorted if sort_keys else _compact).encode(obj).encode()


def _no_long_number(data: bytes) -> bool:
    """No run of 20 digits: fewer than 20 digits in all (a C pass, ~0.35 us for a send request), or
    else the regex (~3 us a request, as much as orjson's whole parse, when it ran on every frame).
    Text keeps the regex alone: its inputs are short stored lists, where the regex is cheaper
    (0.20 us) than encoding to count (0.34 us)."""
    return len(data) - len(data.translate(None, _DIGITS)) < 20 or not _LONG_NUMBER(data)


def loads(data: bytes | str) -> Any:
    """`json.loads(data)`: the same value, or the same error."""
    if (isinstance(data, bytes) and _no_long_number(data)) or (
        isinstance(data, str) and not _LONG_NUMBER_TEXT(data)
    ):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def is_plain(value: Any) -> bool:
    """Whether `value` holds only str, int, bool, None, dicts, lists and tuples (what `Plain` vouches)."""
    try:
        return type(value) in _SCALARS or _plain([value])
    except RecursionError:
        return False

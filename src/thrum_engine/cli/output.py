"""Printing: `--json` documents (2-space indent, sorted keys) and one-line errors.

The JSON writer is hand-rolled over `lightjson.encode_str` so printing does
not import the `json` package (and `re` with it) on the hot path.
"""

import os
import sys

from thrum_engine.rpc.lightjson import encode_str as _enc  # keeps non-ASCII readable
from thrum_engine.terminal_text import terminal_safe

_INF = float("inf")


def to_json(obj, indent: int = 0) -> str:
    pad = "  " * (indent + 1)
    end = "  " * indent
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, str):
        return _enc(obj)
    if isinstance(obj, int):
        return int.__repr__(obj)
    if isinstance(obj, float):
        if not -_INF < obj < _INF:  # NaN and the infinities are not JSON
            return "null"
        return float.__repr__(obj)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{_enc(str(k))}: {to_json(obj[k], indent + 1)}" for k in sorted(obj, key=str)]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        return "[\n" + ",\n".join(pad + to_json(v, indent + 1) for v in obj) + "\n" + end + "]"
    return _enc(str(obj))


def print_json(obj) -> None:
    sys.stdout.write(to_json(obj) + "\n")


def error(message: str) -> None:
    message = " ".join(terminal_safe(str(message)).split("\n"))
    sys.stderr.write(f"Error: {message}\n")


def line(text: str = "") -> None:
    """One piece of human output: what it quotes from others cannot drive the terminal."""
    sys.stdout.write(terminal_safe(text) + "\n")


def hints_wanted() -> bool:
    """THRUM_NO_HINTS=1 (CLI.md) silences every hint, in human output and under `--json` alike:
    a script that parses the output gets the result alone."""
    return os.environ.get("THRUM_NO_HINTS", "") in ("", "0")

"""JSON for the CLI's hot path, in plain Python over public str methods.

`import json` pulls in `re` and `enum`: 6.2-6.6 ms of `-X importtime` (min of 30 runs; medians
7-29 ms on this loaded machine), while the CLI's whole import (`cli.main` + `rpc.client`) is ~1.8 ms.
Agents pay start-up on every call and their answers are small, so a small answer is parsed here;
a large one goes to `json`, whose import is then a small part of the work. No private module is
used (CPython's `_json` was before; its scanner also raised SystemError on some truncated input).
"""

TYPE_CHECKING = False  # `typing` costs the CLI ~2 ms to import; the checker reads this as True
if TYPE_CHECKING:
    from typing import Any

# Above this many characters an answer goes to `json`: the pure-Python parser reads ~25 MB/s here
# (the engine's compact JSON, multi-line bodies; json's C scanner ~300 MB/s), so 64 KiB costs
# ~2.5 ms, under half of importing `json`.
C_ABOVE = 64 * 1024
# Deeper input is refused: each level costs two Python frames, and nothing Thrum sends nests past ~5.
MAX_DEPTH = 200

_WS = " \t\n\r"
_DIGITS = "0123456789"
_DIGIT_SET = frozenset(_DIGITS)
_HEX = frozenset("0123456789abcdefABCDEF")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_CONSTANTS = (
    ("true", True),
    ("false", False),
    ("null", None),
    ("NaN", float("nan")),
    ("Infinity", float("inf")),
    ("-Infinity", float("-inf")),
)


def loads(text: str) -> "Any":
    """`json.loads(text)` for what the engine sends and what a user types. Any bad input is a
    ValueError (json's JSONDecodeError is one), never another type."""
    if len(text) > C_ABOVE:
        import json

        try:
            return json.loads(text)
        except RecursionError:
            raise ValueError("not JSON: nested too deeply") from None
    try:
        return _Parser(text).document()
    except RecursionError:  # only when called from an already deep stack
        raise ValueError("not JSON: nested too deeply") from None


class _Parser:
    __slots__ = ("n", "s")

    def __init__(self, s: str) -> None:
        self.s = s
        self.n = len(s)

    def fail(self, i: int, what: str) -> ValueError:
        return ValueError(f"not JSON: {what} at character {i}")

    def ws(self, i: int) -> int:
        s, n = self.s, self.n
        while i < n and s[i] in _WS:
            i += 1
        return i

    def document(self):
        i = self.ws(0)
        value, i = self.value(i, 0)
        i = self.ws(i)
        if i != self.n:
            raise self.fail(i, "extra data")
        return value

    def value(self, i: int, depth: int):
        s = self.s
        c = s[i : i + 1]
        if c == '"':
            return self.string(i + 1)
        if c == "{":
            return self.container(i + 1, depth + 1, "}")
        if c == "[":
            return self.container(i + 1, depth + 1, "]")
        if c and (c in _DIGITS or (c == "-" and s[i + 1 : i + 2] in _DIGIT_SET)):
            return self.number(i)
        for word, value in _CONSTANTS:
            if s.startswith(word, i):
                return value, i + len(word)
        raise self.fail(i, "expected a value")

    def container(self, i: int, depth: int, close: str):
        """An object (`close` is "}") or an array ("]") from just after its opening bracket: one
        loop, with a key and a colon before each value of an object. The engine writes compact
        JSON, so whitespace is only looked for where a token is not."""
        if depth > MAX_DEPTH:
            raise self.fail(i, "nested too deeply")
        s, ws, value = self.s, self.ws, self.value
        keyed = close == "}"
        out: Any = {} if keyed else []
        i = ws(i)
        if s[i : i + 1] == close:
            return out, i + 1
        while True:
            if keyed:
                if s[i : i + 1] != '"':
                    raise self.fail(i, "expected a property name in double quotes")
                key, i = self.string(i + 1)
                if s[i : i + 1] != ":":
                    i = ws(i)
                    if s[i : i + 1] != ":":
                        raise self.fail(i, "expected ':'")
                i += 1
                if s[i : i + 1] in _WS:
                    i = ws(i)
                out[key], i = value(i, depth)
            else:
                item, i = value(i, depth)
                out.append(item)
            c = s[i : i + 1]
            if c in _WS:
                i = ws(i)
                c = s[i : i + 1]
            if c == ",":
                i += 1
                if s[i : i + 1] in _WS:
                    i = ws(i)
                continue
            if c == close:
                return out, i + 1
            raise self.fail(i, f"expected ',' or '{close}'")

    def number(self, i: int):
        """JSON's grammar exactly (int() and float() alone would take "01", "1.", "+1", "1_0")."""
        s, n = self.s, self.n
        start = i
        if s[i] == "-":
            i += 1
        i = i + 1 if s[i] == "0" else self.digits(i)
        is_float = False
        if i < n and s[i] == ".":
            i = self.digits(i + 1)
            is_float = True
        if i < n and s[i] in "eE":
            i += 1
            if i < n and s[i] in "+-":
                i += 1
            i = self.digits(i)
            is_float = True
        token = s[start:i]
        return (float(token) if is_float else int(token)), i

    def digits(self, i: int) -> int:
        """Past the run of one or more digits at `i`."""
        s, n = self.s, self.n
        start = i
        while i < n and s[i] in _DIGITS:
            i += 1
        if i == start:
            raise self.fail(i, "expected a digit")
        return i

    def string(self, i: int):
        """From just after the opening quote. Text without escapes is sliced whole (C speed); text
        with escapes is split at its backslashes once, so each escape costs a step in Python."""
        s = self.s
        end = s.find('"', i)
        if end < 0:
            raise self.fail(i - 1, "unterminated string")
        escaped = s.find("\\", i, end) >= 0
        if escaped:
            # The closing quote is the first one after an even run of backslashes.
            while True:
                k = end - 1
                while s[k] == "\\":  # stops at the opening quote at the latest
                    k -= 1
                if (end - 1 - k) % 2 == 0:
                    break
                end = s.find('"', end + 1)
                if end < 0:
                    raise self.fail(i - 1, "unterminated string")
        chunk = s[i:end]
        if not chunk.isprintable():
            self.check_controls(chunk, i)
        return (self.unescape(chunk, i) if escaped else chunk), end + 1

    def unescape(self, chunk: str, at: int) -> str:
        parts = chunk.split("\\")
        out = [parts[0]]
        n, k = len(parts), 1
        while k < n:
            p = parts[k]
            if not p:  # an escaped backslash: the text after the pair is plain
                out.append("\\")
                if k + 1 < n:
                    out.append(parts[k + 1])
                k += 2
                continue
            c = p[0]
            if c == "u":
                code = self.hex4(p[1:5], at)
                rest = p[5:]
                if 0xD800 <= code <= 0xDBFF and not rest and k + 1 < n and parts[k + 1][:1] == "u":
                    low = self.hex4(parts[k + 1][1:5], at)
                    if 0xDC00 <= low <= 0xDFFF:  # a surrogate pair is one character, as json reads it
                        out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                        out.append(parts[k + 1][5:])
                        k += 2
                        continue
                out.append(chr(code))
                out.append(rest)
            else:
                char = _ESCAPES.get(c)
                if char is None:
                    raise self.fail(at, "invalid escape in the string")
                out.append(char)
                out.append(p[1:])
            k += 1
        return "".join(out)

    def hex4(self, digits: str, at: int) -> int:
        if len(digits) != 4 or not _HEX.issuperset(digits):
            raise self.fail(at, "invalid \\u escape in the string")
        return int(digits, 16)

    def check_controls(self, chunk: str, at: int) -> None:
        """Raw control characters are not JSON (json's strict mode); other non-printables are fine."""
        for k, ch in enumerate(chunk):
            if ch < " ":
                raise self.fail(at + k, "invalid control character")


_INF = float("inf")
_CONTROL_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_CONTROL_ESCAPES.update(
    {ord('"'): '\\"', ord("\\"): "\\\\", 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}
)


def encode_str(s: str) -> str:
    """A JSON string literal. Non-ASCII text stays as it is (readable, and the wire is UTF-8); lone
    surrogates (bad bytes in argv or a file, decoded with surrogateescape) become `\\uXXXX` so the
    result always encodes to UTF-8."""
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    if not out.isprintable():  # rare: tabs, other controls, or non-printable non-ASCII
        out = s.translate(_CONTROL_ESCAPES)
        if not out.isascii():
            try:
                out.encode("utf-8")
            except UnicodeEncodeError:
                out = "".join(f"\\u{ord(c):04x}" if "\ud800" <= c <= "\udfff" else c for c in out)
    return f'"{out}"'


def _key(k) -> str:
    if isinstance(k, str):
        return encode_str(k)
    if k is True or k is False or k is None or isinstance(k, int | float):
        return f'"{dumps(k)}"'
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


def dumps(obj) -> str:
    """`json.dumps(obj, separators=(",", ":"), ensure_ascii=False)`, for a request on the wire."""
    if isinstance(obj, str):
        return encode_str(obj)
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, int):
        return int.__repr__(obj)
    if isinstance(obj, float):
        if -_INF < obj < _INF:
            return float.__repr__(obj)
        # NaN and the infinities are allowed on the wire, as json's allow_nan does.
        return "Infinity" if obj == _INF else "-Infinity" if obj == -_INF else "NaN"
    if isinstance(obj, dict):
        return "{" + ",".join(f"{_key(k)}:{dumps(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

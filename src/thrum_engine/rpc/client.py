"""A stdlib-only JSON-RPC client for the CLI's hot path.

It imports `_socket` and `_json` (the C halves of `socket` and `json`) so a
`thrum send` pays neither `enum` nor `re` at start-up (~7 ms of a ~10 ms floor).
"""

from __future__ import annotations

import _json
import _socket

MAX_RESPONSE = 256 * 1024 * 1024
# Below glibc's mmap threshold (128 KiB): `recv(1 MiB)` allocated and unmapped a fresh mapping on
# every call (~14 us of CPU, ~40 us wall per round trip here) to receive a few hundred bytes.
RECV_CHUNK = 64 * 1024


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))


_scan = _json.make_scanner(_ScanContext())
_encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",", False, False, True)


def loads(text: str):
    obj, end = _scan(text, 0)
    return obj


def dumps_compact(obj) -> str:
    return "".join(_encode(obj, 0))


class RpcError(Exception):
    def __init__(self, code: int, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.kind = kind


class EngineUnavailable(Exception):
    """No engine listens on the socket (missing, refused, or a stale file)."""


class Client:
    def __init__(self, path: str, timeout: float | None = 60.0) -> None:
        self.path = path
        self.timeout = timeout
        self._sock = None
        self._buf = bytearray()
        self._next_id = 0

    def connect(self) -> "Client":
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise EngineUnavailable(str(exc)) from None
        except OSError as exc:
            sock.close()
            raise EngineUnavailable(str(exc)) from None
        self._sock = sock
        return self

    def interrupt(self) -> None:
        """From another thread: make a call blocked on this connection return at once."""
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def call(self, method: str, params: dict | None = None, timeout: float | None = -1.0):
        if self._sock is None:
            self.connect()
        sock = self._sock
        if timeout != -1.0:
            sock.settimeout(timeout)
        self._next_id += 1
        rid = self._next_id
        frame = dumps_compact({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}) + "\n"
        try:
            sock.sendall(frame.encode())
            buf = self._buf  # a bytearray: appending chunks of a large response stays linear
            scanned = 0
            while True:
                nl = buf.find(b"\n", scanned)
                if nl >= 0:
                    line = buf[:nl]
                    del buf[:nl + 1]
                    break
                scanned = len(buf)
                chunk = sock.recv(RECV_CHUNK)
                if not chunk:
                    raise EngineUnavailable("the engine closed the connection")
                buf += chunk
                if len(buf) > MAX_RESPONSE:
                    raise EngineUnavailable("response too large")
        except (ConnectionError, BrokenPipeError) as exc:
            # Never mistaken for success: the request may or may not have been stored.
            raise EngineUnavailable(f"connection lost: {exc}") from None
        resp = loads(line.decode("utf-8"))
        err = resp.get("error")
        if err is not None:
            data = err.get("data") or {}
            raise RpcError(err.get("code", -32000), err.get("message", "engine error"), data.get("kind"))
        return resp.get("result")

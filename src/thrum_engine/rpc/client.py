"""A stdlib-only JSON-RPC client for the CLI's hot path.

It imports `_socket` (the C half of `socket`, a documented module too) and reads and writes JSON
with `lightjson`, so a `thrum send` pays neither `enum` nor `re` at start-up (~7 ms of a ~10 ms floor).
"""

import _socket
import os
import sys
import time

from thrum_engine.rpc.lightjson import dumps, loads

TYPE_CHECKING = False  # `typing` costs the CLI ~2 ms to import; the checker reads this as True
if TYPE_CHECKING:
    from typing import Any

    from thrum_engine.layout import Layout

MAX_RESPONSE = 256 * 1024 * 1024
# Below glibc's mmap threshold (128 KiB): `recv(1 MiB)` allocated and unmapped a fresh mapping on
# every call (~14 us of CPU, ~40 us wall per round trip here) to receive a few hundred bytes.
RECV_CHUNK = 64 * 1024
# A call with no answer this long asks the engine, on a second connection, whether it still serves
# at all: a stopped or wedged engine is reported within two of these, not after the call's timeout.
PROBE_AFTER = 5.0
# The engine drops a request it could not even start this long after it was sent. A client gives up
# on a silent engine after two PROBE_AFTERs at the earliest, so whatever it was told "not answering"
# about (a `daemon stop`, a `send`) is never done behind its back when the engine resumes.
START_WITHIN = 2 * PROBE_AFTER - 1.0


def start_within(timeout: float | None) -> float:
    """How long after sending a request the engine may still start it: START_WITHIN, or the caller's
    own timeout when that is shorter (walk, session 21: a hook gave up after 4 s, and the engine,
    stopped meanwhile, later recorded the mail as shown by it)."""
    return START_WITHIN if timeout is None or timeout < 0 else min(START_WITHIN, timeout)


# A full listen backlog (EAGAIN) is a burst of connects, not a dead engine: retry that long.
CONNECT_RETRY = 2.0


class RpcError(Exception):
    def __init__(self, code: int, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.kind = kind


class EngineUnavailable(Exception):
    """No engine listens on the socket (missing, refused, or a stale file)."""


class ForeignServer(EngineUnavailable):
    """Something listens on the socket, but as another user: it gets nothing from us, not even the request."""


class EngineNotAnswering(EngineUnavailable):
    """The engine accepts connections but answers nothing (stopped, wedged)."""


def peer_credentials(sock) -> tuple[int, int, int]:
    """(pid, uid, gid) of the other end, from the kernel (SO_PEERCRED's struct ucred: three C ints)."""
    data = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    return tuple(int.from_bytes(data[i : i + 4], sys.byteorder, signed=True) for i in (0, 4, 8))  # type: ignore[return-value]


class Client:
    def __init__(self, path: str, timeout: float | None = 60.0, *, probe: bool = True) -> None:
        self.path = path
        self.timeout = timeout
        self.probe = probe
        self.peer_pid: int | None = None
        self._sock = None
        self._buf = bytearray()
        self._next_id = 0

    def connect(self) -> "Client":
        give_up = time.monotonic() + CONNECT_RETRY
        delay = 0.001
        while True:
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
                break
            except BlockingIOError as exc:  # EAGAIN: the listen backlog is full
                sock.close()
                if time.monotonic() >= give_up:
                    raise EngineUnavailable(f"the engine's socket is overloaded: {exc}") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
            except OSError as exc:
                sock.close()
                raise EngineUnavailable(str(exc)) from None
        try:
            pid, uid, _gid = peer_credentials(sock)
        except OSError as exc:
            sock.close()
            raise EngineUnavailable(str(exc)) from None
        if uid != os.getuid():
            sock.close()
            raise ForeignServer(
                f"the socket {self.path} is served by another user (uid {uid}, pid {pid}), "
                f"not by your engine: refusing to talk to it"
            )
        self.peer_pid = pid
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

    def _answering(self) -> bool:
        """Whether the engine answers a trivial request on a fresh connection, in time."""
        try:
            other = Client(self.path, PROBE_AFTER, probe=False).connect()
        except EngineUnavailable:
            return False
        try:
            other.call("engine.info", {})
            return True
        except (EngineUnavailable, RpcError, OSError):
            return False
        finally:
            other.close()

    def _not_answering(self) -> EngineNotAnswering:
        who = f"the engine (pid {self.peer_pid})" if self.peer_pid else "the engine"
        return EngineNotAnswering(f"{who} is not answering on {self.path}")

    def _recv(self, sock, deadline: float | None) -> bytes:
        """One chunk, probing the engine's liveness while the answer is slow in coming."""
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("timed out")
            wait = left if not self.probe else (PROBE_AFTER if left is None else min(left, PROBE_AFTER))
            sock.settimeout(wait)
            try:
                return sock.recv(RECV_CHUNK)
            except TimeoutError:
                if left is not None and wait is not None and wait >= left:
                    raise
                if not self._answering():
                    raise self._not_answering() from None

    def _refusal(self, sock, size: int) -> RpcError | None:
        """After the engine hung up on a request being sent: its reason, when it left one (too large)."""
        try:
            sock.settimeout(1.0)
            data = bytearray()
            while b"\n" not in data and len(data) < RECV_CHUNK:
                chunk = sock.recv(RECV_CHUNK)
                if not chunk:
                    break
                data += chunk
            resp = loads(bytes(data.split(b"\n", 1)[0]).decode("utf-8"))
            err = resp["error"]
            data_ = err.get("data") or {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            return None
        if data_.get("kind") == "too_large" and data_.get("limit"):
            return RpcError(
                err.get("code", -32600),
                f"message too large ({size} bytes; limit {data_['limit']} bytes)",
                "too_large",
            )
        return RpcError(err.get("code", -32000), err.get("message", "engine error"), data_.get("kind"))

    def call(self, method: str, params: dict | None = None, timeout: float | None = -1.0) -> "Any":
        if self._sock is None:
            self.connect()
        sock = self._sock
        assert sock is not None  # connect() raises or sets it
        if timeout == -1.0:
            timeout = self.timeout
        self._next_id += 1
        rid = self._next_id
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}
        if self.probe:  # rpc.server._expired; never later than this call gives up (a hook's 4 s)
            msg["start_by_mono"] = time.monotonic() + start_within(timeout)
        data = (dumps(msg) + "\n").encode()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            sock.settimeout(timeout)
            try:
                sock.sendall(data)
            except (ConnectionError, BrokenPipeError) as exc:
                refusal = self._refusal(sock, len(data))
                if refusal is not None:
                    raise refusal from None
                raise EngineUnavailable(f"connection lost: {exc}") from None
            buf = self._buf  # a bytearray: appending chunks of a large response stays linear
            scanned = 0
            while True:
                nl = buf.find(b"\n", scanned)
                if nl >= 0:
                    line = buf[:nl]
                    del buf[: nl + 1]
                    break
                scanned = len(buf)
                chunk = self._recv(sock, deadline)
                if not chunk:
                    raise EngineUnavailable("the engine closed the connection")
                buf += chunk
                if len(buf) > MAX_RESPONSE:
                    raise RpcError(
                        -32000,
                        f"the answer is larger than this client accepts ({MAX_RESPONSE} bytes):"
                        " ask for less (a smaller --page-size)",
                        "too_large",
                    )
        except (ConnectionError, BrokenPipeError) as exc:
            # Never mistaken for success: the request may or may not have been stored.
            raise EngineUnavailable(f"connection lost: {exc}") from None
        try:
            resp = loads(line.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise EngineUnavailable(f"unreadable answer: {exc}") from None
        if not isinstance(resp, dict):
            raise EngineUnavailable("unreadable answer: not a JSON object")
        err = resp.get("error")
        if err is not None:
            data = err.get("data") or {}
            raise RpcError(err.get("code", -32000), err.get("message", "engine error"), data.get("kind"))
        return resp.get("result")


def connect_engine(layout: "Layout", timeout: float | None = 60.0) -> "Client | None":
    """A connection to the repo's engine, or None when none answers: on `layout.socket_path`, else
    on the socket its pid file names, served by the pid it names (`Layout.served_engine`)."""
    client = try_connect(layout.socket_path, timeout)
    if client is None:
        served = layout.served_engine()
        if served is not None:
            client = try_connect(served[0], timeout)
            if client is not None and client.peer_pid != served[1]:
                client.close()  # another engine took that socket since: not this repo's
                client = None
    return client


def try_connect(path: str, timeout: float | None = 60.0) -> Client | None:
    """A connection to the engine at `path`, or None when none listens. A socket served by another
    user is not "no engine": ForeignServer goes up to the caller. Here, not in daemon.control, so
    a CLI call whose engine is up never imports the spawning code (~1 ms of start-up)."""
    try:
        return Client(path, timeout).connect()
    except ForeignServer:
        raise
    except EngineUnavailable:
        return None

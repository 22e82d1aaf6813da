"""The socket server: frames, peer credentials, dispatch into `Engine.call`.

The caller's identity is checked with kernel peer credentials: the peer's pid
gives its working directory, that gives its worktree, and the engine refuses a
claimed identity registered to a different worktree.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time

from thrum_engine import fastjson
from thrum_engine.engine.core import Caller, Engine
from thrum_engine.errors import EngineBusy, InvalidInput, ThrumError, TooLarge
from thrum_engine.layout import socket_fallback_dir, worktree_of
from thrum_engine.private_fs import ensure_socket_dir
from thrum_engine.rpc import protocol as P
from thrum_engine.rpc.client import peer_credentials

log = logging.getLogger("thrum.rpc")

MAX_IN_FLIGHT_PER_CONNECTION = 64
# asyncio's socket transport reads with recv(256 KiB); glibc serves an allocation that size from a
# fresh mmap and unmaps it again, ~14 us of CPU per read here: more than all the rest of a small
# request's socket handling. Requests are small; a big one just takes a few more reads.
READ_CHUNK = 64 * 1024


def peer_worktree(pid: int, repo: str) -> str | None:
    """The worktree of this repo that process `pid` runs in, or None (outside every worktree)."""
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    return worktree_of(repo, cwd)


_SURROGATE_ESCAPE = b"\\ud"


def _encodable(obj) -> bool:
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        return False
    return True


def _plain_id(rid) -> bool:
    return rid is None or (isinstance(rid, (str, int)) and not isinstance(rid, bool) and _encodable(rid))


def _error(rid, code: int, message: str, kind: str | None = None) -> dict:
    err: dict = {"code": code, "message": message}
    if kind:
        err["data"] = {"kind": kind}
    return {"jsonrpc": "2.0", "id": rid, "error": err}


class _Conn:
    """One connection's bookkeeping: who is on the other end, and whether it is doing anything."""

    __slots__ = ("busy", "last", "pid", "writer")

    def __init__(self, pid: int, writer: asyncio.StreamWriter) -> None:
        self.pid = pid
        self.writer = writer
        self.busy = 0  # requests in flight: a long `wait` is not idleness
        self.last = time.monotonic()


def encode_frame(msg: dict) -> bytes:
    try:
        return fastjson.dumps(msg) + b"\n"
    except UnicodeEncodeError:  # a lone surrogate quoted in an error: ASCII escapes always encode
        return (json.dumps(msg, separators=(",", ":")) + "\n").encode()


class _Replies:
    """A connection's answers, written together: every request a batch completes answers in the same
    turn of the loop, and one write per connection carries them all (a `send()` per answer was a
    fifth of a pipelined send's cost). The answer to a connection's only request in flight has
    nothing to wait for and is written at once (the turn of the loop it waited cost a blocking
    client ~10 us a call). Large answers, or a peer that reads slowly, are written at once and
    drained, so memory stays bounded as it was."""

    __slots__ = ("_conn", "_frames", "_loop", "_size", "writer")

    HIGH_WATER = 256 * 1024

    def __init__(self, writer: asyncio.StreamWriter, conn: _Conn) -> None:
        self.writer = writer
        self._conn = conn
        self._frames: list[bytes] = []
        self._size = 0
        self._loop = asyncio.get_running_loop()

    def flush(self) -> None:
        frames, self._frames, self._size = self._frames, [], 0
        if frames and not self.writer.transport.is_closing():
            self.writer.write(frames[0] if len(frames) == 1 else b"".join(frames))

    async def send(self, msg: dict, *, now: bool = False) -> None:
        data = encode_frame(msg)
        if not self._frames:
            if self._conn.busy <= 1 and not now:  # this answer's request is the only one in flight
                if not self.writer.transport.is_closing():
                    self.writer.write(data)
                if self.writer.transport.get_write_buffer_size() > self.HIGH_WATER:
                    await self.writer.drain()
                return
            self._loop.call_soon(self.flush)
        self._frames.append(data)
        self._size += len(data)
        if now or self._size + self.writer.transport.get_write_buffer_size() > self.HIGH_WATER:
            self.flush()
            await self.writer.drain()


class RpcServer:
    # How often the engine checks that its socket path still is its own socket (a tmp cleaner, an
    # `rm`, a second engine started past a deleted lock file...), and binds a fresh one if not.
    CHECK_SOCKET_SECONDS = 1.0

    def __init__(self, engine: Engine, path: str) -> None:
        self.engine = engine
        self.path = path
        self.max_frame = P.max_frame(engine.settings.messages.max_body_bytes)
        self._server: asyncio.base_events.Server | None = None
        self._old_servers: list[asyncio.base_events.Server] = []
        self._bound: tuple[int, int] | None = None
        self._watch: asyncio.Task | None = None
        self._connections: set[asyncio.Task] = set()
        self._requests: set[asyncio.Task] = set()
        self._conn_count = 0
        self._conns: dict[asyncio.Task, _Conn] = {}
        self._per_pid: dict[int, int] = {}

    async def start(self) -> None:
        ensure_socket_dir(self.path, socket_fallback_dir())
        await self._bind()
        self._watch = asyncio.create_task(self._watch_socket(), name="thrum-socket-watch")

    async def _bind(self) -> None:
        try:
            os.unlink(self.path)  # stale or not ours: only reached while holding the engine lock
        except FileNotFoundError:
            pass
        old = os.umask(0o177)  # the socket is born 0600: no window where others can connect
        try:
            self._server = await asyncio.start_unix_server(
                self._handle, self.path, limit=self.max_frame, backlog=1024
            )
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        st = os.stat(self.path)
        self._bound = (st.st_dev, st.st_ino)

    def socket_is_ours(self) -> bool:
        try:
            st = os.lstat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._bound

    async def rebind_if_lost(self) -> bool:
        """Bind a fresh socket when the path no longer is ours; connections already open carry on."""
        if self._server is None or self.socket_is_ours():
            return False
        log.warning("socket %s was removed or replaced: binding it again", self.path)
        previous = self._server
        await self._bind()
        previous.close()
        self._old_servers.append(previous)
        return True

    async def _watch_socket(self) -> None:
        while True:
            await asyncio.sleep(self.CHECK_SOCKET_SECONDS)
            try:
                await self.rebind_if_lost()
            except OSError:
                log.exception("could not bind %s again", self.path)

    async def close(self, drain: float = 2.0) -> None:
        """Stop accepting, let requests in flight finish (up to `drain` seconds), then cancel the rest
        (a blocked `wait` is the usual one)."""
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()  # stops reading new requests; in-flight ones are separate tasks
            if self._requests:
                await asyncio.wait(list(self._requests), timeout=drain)
            for task in list(self._requests):
                task.cancel()
            await asyncio.gather(*self._connections, *self._requests, return_exceptions=True)
            for server in (*self._old_servers, self._server):
                await server.wait_closed()
            self._server = None
            if self.socket_is_ours():
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass

    def _make_room(self) -> bool:
        """At the global cap: close the connection idle longest, so a crowd of idle sockets can never
        lock an agent out. False when every connection is busy."""
        idle = [c for c in self._conns.values() if not c.busy]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.last)
        log.warning("connection limit reached: closing an idle connection of pid %d", victim.pid)
        victim.writer.transport.abort()
        return True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._conn_count += 1
        pid = None
        try:
            pid, uid, _gid = peer_credentials(writer.get_extra_info("socket"))
            if uid != os.getuid():
                log.warning("refused connection from uid %d (pid %d)", uid, pid)
                return
            limits = self.engine.settings.engine
            if self._per_pid.get(pid, 0) >= limits.max_connections_per_process:
                await self._send(
                    writer,
                    _error(
                        None,
                        P.INTERNAL_ERROR,
                        f"engine busy: too many connections from pid"
                        f" {pid} (limit {limits.max_connections_per_process})",
                        EngineBusy.kind,
                    ),
                )
                return
            if len(self._conns) >= limits.max_connections and not self._make_room():
                await self._send(
                    writer,
                    _error(None, P.INTERNAL_ERROR, "engine busy: too many connections", EngineBusy.kind),
                )
                return
            conn = self._conns[task] = _Conn(pid, writer)
            self._per_pid[pid] = self._per_pid.get(pid, 0) + 1
            await self._serve(reader, writer, conn)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("connection handler failed")
        finally:
            if self._conns.pop(task, None) is not None and pid is not None:
                left = self._per_pid.get(pid, 1) - 1
                if left > 0:
                    self._per_pid[pid] = left
                else:
                    self._per_pid.pop(pid, None)
            self._conn_count -= 1
            self._connections.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:  # the peer is already gone: closing was all that was left to do
                pass

    def _read_timeout(self, conn: _Conn, first: bool) -> float | None:
        """How long this connection may stay silent: a first frame must come soon after connecting,
        later ones within the idle limit; none while a request of its own is in flight."""
        if conn.busy:
            return None
        limits = self.engine.settings.engine
        allowed = limits.first_frame_timeout_seconds if first else limits.idle_timeout_seconds
        return max(0.0, conn.last + allowed - time.monotonic())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: _Conn) -> None:
        # The selector transport's recv size: an attribute since 3.4, undocumented, so not typed.
        if hasattr(writer.transport, "max_size"):
            writer.transport.max_size = READ_CHUNK  # pyright: ignore[reportAttributeAccessIssue]
        pid = conn.pid
        worktree = peer_worktree(pid, self.engine.layout.repo)
        out = _Replies(writer, conn)
        slots = asyncio.Semaphore(MAX_IN_FLIGHT_PER_CONNECTION)
        pending: set[asyncio.Task] = set()
        first = True
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        assert me is not None
        silent = False

        # One timer per connection rather than a wait on the read and every request in flight
        # (`asyncio.wait` over 64 pipelined requests added and removed 64 callbacks per frame read).
        def check_silence() -> None:
            nonlocal timer, silent
            left = self._read_timeout(conn, first)
            if left is None:  # a request of its own is in flight: look again an idle period later
                left = self.engine.settings.engine.idle_timeout_seconds
            elif left <= 0:
                silent = True
                me.cancel()
                return
            timer = loop.call_later(left, check_silence)

        timer = loop.call_later(self._read_timeout(conn, first) or 0.0, check_silence)

        def finished(t: asyncio.Task) -> None:
            pending.discard(t)
            self._requests.discard(t)
            slots.release()
            conn.busy -= 1
            conn.last = time.monotonic()

        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.CancelledError:
                    if not silent:
                        raise
                    me.uncancel()
                    log.info("closing a silent connection of pid %d", pid)
                    return
                except asyncio.IncompleteReadError as exc:
                    if exc.partial.strip():
                        await out.send(_error(None, P.PARSE_ERROR, "incomplete frame (no newline)"), now=True)
                    return
                except asyncio.LimitOverrunError:
                    err = _error(
                        None, P.INVALID_REQUEST, f"request larger than {self.max_frame} bytes", TooLarge.kind
                    )
                    err["error"]["data"]["limit"] = self.engine.settings.messages.max_body_bytes
                    await out.send(err, now=True)
                    return  # the stream is out of sync: drop the connection
                if not line.strip():
                    continue
                first = False
                conn.last = time.monotonic()
                await slots.acquire()
                conn.busy += 1
                t = asyncio.create_task(self._one(line, pid, worktree, out))
                pending.add(t)
                self._requests.add(t)
                t.add_done_callback(finished)
        finally:
            timer.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            out.flush()

    async def _one(self, line: bytes, pid: int, worktree: str | None, out: _Replies) -> None:
        response = await self.dispatch(line, pid, worktree)
        if response is not None:
            await out.send(response)

    async def dispatch(self, line: bytes, pid: int, worktree: str | None) -> dict | None:
        try:
            req = fastjson.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(None, P.PARSE_ERROR, f"parse error: {exc}")
        except RecursionError:
            return _error(None, P.PARSE_ERROR, "parse error: nested too deeply")
        if b"\\u" in line and _SURROGATE_ESCAPE in line.lower() and not _encodable(req):
            # A lone surrogate (\udXXX) is valid JSON but not text we can store or echo back.
            rid = req.get("id") if isinstance(req, dict) and _plain_id(req.get("id")) else None
            if isinstance(req, dict) and isinstance(req.get("method"), str) and not _encodable(req["method"]):
                return _error(rid, P.METHOD_NOT_FOUND, f"unknown method: {req['method']!a}", "unknown_method")
            return _error(
                rid, P.INVALID_PARAMS, "request holds text that is not valid UTF-8", InvalidInput.kind
            )
        if not isinstance(req, dict):
            return _error(
                None, P.INVALID_REQUEST, "request must be a JSON object (batches are not supported)"
            )
        rid = req.get("id")
        if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (str, int))):
            return _error(None, P.INVALID_REQUEST, "id must be a string or an integer")
        notification = "id" not in req
        if req.get("jsonrpc") != "2.0":
            return _error(rid, P.INVALID_REQUEST, 'missing "jsonrpc": "2.0"')
        name = req.get("method")
        if not isinstance(name, str) or not name:
            return _error(rid, P.INVALID_REQUEST, "method must be a non-empty string")
        params = req.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return _error(rid, P.INVALID_PARAMS, "params must be an object")
        claimed = params.pop("caller", None)
        if claimed is not None and not isinstance(claimed, str):
            return _error(rid, P.INVALID_PARAMS, "caller must be a string")
        start_by = req.get("start_by")
        if isinstance(start_by, (int, float)) and not isinstance(start_by, bool) and time.time() > start_by:
            # The client gave up on us before we could even start (we were stopped, or wedged): running
            # it now would do what the caller was told may not have happened.
            log.warning("dropped %s from pid %d: it waited past its start-by time", name, pid)
            return (
                None
                if notification
                else _error(rid, P.INTERNAL_ERROR, "request expired before it could start", "expired")
            )
        caller = Caller(name=claimed or None, worktree=worktree, pid=pid, read_only=worktree is None)
        try:
            result = await self.engine.call(name, params, caller)
        except ThrumError as exc:
            return None if notification else _error(rid, exc.code, exc.message, exc.kind)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("method %s failed", name)
            return (
                None
                if notification
                else _error(rid, P.INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")
            )
        if notification:
            return None
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    async def _send(self, writer: asyncio.StreamWriter, msg: dict) -> None:
        writer.write(encode_frame(msg))
        await writer.drain()

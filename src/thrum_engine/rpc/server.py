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
import select
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


def _late(value: object, now: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and now > value


def _expired(req: dict) -> bool:
    """Whether the client gave up on this request before it could start. `start_by_mono` is on the
    monotonic clock, which a wall-clock step (NTP, a resumed VM) leaves alone (walk B, 14);
    `start_by`, on the wall clock, is what older clients send."""
    return _late(req.get("start_by_mono"), time.monotonic()) or _late(req.get("start_by"), time.time())


def _error(rid, code: int, message: str, kind: str | None = None) -> dict:
    err: dict = {"code": code, "message": message}
    if kind:
        err["data"] = {"kind": kind}
    return {"jsonrpc": "2.0", "id": rid, "error": err}


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

    __slots__ = ("_conn", "_frames", "_loop", "_size")

    HIGH_WATER = 256 * 1024

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self._frames: list[bytes] = []
        self._size = 0
        self._loop = asyncio.get_running_loop()

    def write_now(self, data: bytes) -> None:
        transport = self._conn.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _buffered(self) -> int:
        transport = self._conn.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def flush(self) -> None:
        frames, self._frames, self._size = self._frames, [], 0
        if frames:
            self.write_now(frames[0] if len(frames) == 1 else b"".join(frames))

    async def send(self, msg: dict) -> None:
        data = encode_frame(msg)
        if not self._frames:
            if self._conn.busy <= 1:  # this answer's request is the only one in flight
                self.write_now(data)
                if self._buffered() > self.HIGH_WATER:
                    await self._conn.drain()
                return
            self._loop.call_soon(self.flush)
        self._frames.append(data)
        self._size += len(data)
        if self._size + self._buffered() > self.HIGH_WATER:
            self.flush()
            await self._conn.drain()


class _Connection(asyncio.Protocol):
    """One client: frames taken as they arrive, each request a task of its own, answers out through
    `_Replies`. A protocol, not a stream with a reading task per connection: a request starts a turn
    of the loop sooner (a no-op round trip, `bench/rpc.py --only floor`).

    What a stream's reader did is here: a frame longer than the limit is refused and the connection
    closed (the stream is out of sync); at most MAX_IN_FLIGHT_PER_CONNECTION requests run at once,
    and reading pauses while they do; at the end of input, what is already read still runs and is
    answered, a partial last frame gets an error, then the connection closes."""

    def __init__(self, server: RpcServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.pid = 0
        self.worktree: str | None = None
        self.busy = 0  # requests in flight: a long `wait` is not idleness
        self.last = time.monotonic()
        self.first = True  # no frame yet: the first-frame timeout applies
        self.replies = _Replies(self)
        self._buf = bytearray()
        self._eof = False
        self._ending = False  # no more frames are taken: close once the answers are out
        self._lost = False
        self._reading_paused = False
        self._writing_paused = False
        self._drainers: list[asyncio.Future] = []
        self._timer: asyncio.TimerHandle | None = None
        self._counted = False
        # Done once the client is gone (killed, or it gave up and closed: `_peer_closed`, or the
        # connection lost), so a request of its own still running must not take mail from the other
        # paths. A half-close is not gone: such a client still reads its answers.
        self.gone: asyncio.Future = asyncio.get_running_loop().create_future()

    # -- opening --
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        srv = self.server
        try:
            pid, uid, _gid = peer_credentials(transport.get_extra_info("socket"))
        except OSError:
            transport.abort()
            return
        if uid != os.getuid():
            log.warning("refused connection from uid %d (pid %d)", uid, pid)
            transport.close()
            return
        limits = srv.engine.settings.engine
        if srv._per_pid.get(pid, 0) >= limits.max_connections_per_process:
            self._refuse(
                f"engine busy: too many connections from pid {pid} (limit {limits.max_connections_per_process})"
            )
            return
        if len(srv._conns) >= limits.max_connections and not srv._make_room():
            self._refuse("engine busy: too many connections")
            return
        self.pid = pid
        srv._conns.add(self)
        srv._per_pid[pid] = srv._per_pid.get(pid, 0) + 1
        self._counted = True
        # The selector transport's recv size: an attribute since 3.4, undocumented, so not typed.
        if hasattr(transport, "max_size"):
            transport.max_size = READ_CHUNK  # pyright: ignore[reportAttributeAccessIssue]
        self.worktree = peer_worktree(pid, srv.engine.layout.repo)
        self._arm(srv._read_timeout(self, True) or 0.0)

    def _refuse(self, message: str) -> None:
        assert self.transport is not None
        self.transport.write(encode_frame(_error(None, P.INTERNAL_ERROR, message, EngineBusy.kind)))
        self.transport.close()  # after the error is written

    # -- frames in --
    def data_received(self, data: bytes) -> None:
        if self._ending or not self._counted:
            return
        self._buf += data
        self._take()

    def eof_received(self) -> bool:
        self._eof = True
        if self._peer_closed():
            self._hang_up()
        self._take()
        return True  # keep the transport open: what is in flight is still answered

    def _take(self) -> None:
        """Start the complete frames the buffer holds, as far as the in-flight cap allows; then pause or
        resume reading, and end the connection when its input has ended and everything is answered."""
        buf, limit, start = self._buf, self.server.max_frame, 0
        while not self._ending and self.busy < MAX_IN_FLIGHT_PER_CONNECTION:
            nl = buf.find(b"\n", start)
            if nl < 0:
                if len(buf) - start > limit:
                    self._too_large()
                break
            if nl - start > limit:
                self._too_large()
                break
            line = bytes(buf[start : nl + 1])
            start = nl + 1
            if line.strip():
                self._start(line)
        if start:
            del buf[:start]
        if self._ending:
            self._finish_if_done()
            return
        if self._eof:
            if self.busy < MAX_IN_FLIGHT_PER_CONNECTION:  # every complete frame has started
                if buf.strip():
                    err = _error(None, P.PARSE_ERROR, "incomplete frame (no newline)")
                    self._end(err)
                else:
                    self._end()
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.busy >= MAX_IN_FLIGHT_PER_CONNECTION and not self._reading_paused:
            transport.pause_reading()
            self._reading_paused = True
        elif self.busy < MAX_IN_FLIGHT_PER_CONNECTION and self._reading_paused:
            transport.resume_reading()
            self._reading_paused = False

    def _start(self, line: bytes) -> None:
        self.first = False
        self.last = time.monotonic()
        self.busy += 1
        task = asyncio.get_running_loop().create_task(self.server._one(line, self))
        self.server._requests.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self.server._requests.discard(task)
        self.busy -= 1
        self.last = time.monotonic()
        if not task.cancelled() and task.exception() is not None:  # a failed write to a gone peer
            log.debug("answering pid %d failed: %s", self.pid, task.exception())
        self._take()

    def _too_large(self) -> None:
        err = _error(
            None, P.INVALID_REQUEST, f"request larger than {self.server.max_frame} bytes", TooLarge.kind
        )
        err["error"]["data"]["limit"] = self.server.engine.settings.messages.max_body_bytes
        self._end(err)  # the stream is out of sync: drop the connection

    # -- the end --
    def _end(self, last_word: dict | None = None) -> None:
        """Take no more frames; `last_word` goes out now; the connection closes once every request in
        flight has been answered."""
        if self._ending:
            return
        self._ending = True
        self._buf.clear()
        if self.transport is not None and not self.transport.is_closing() and not self._eof:
            self.transport.pause_reading()
        if last_word is not None:
            self.replies.flush()
            self.replies.write_now(encode_frame(last_word))
        self._finish_if_done()

    def _finish_if_done(self) -> None:
        if self.busy:
            return
        self.replies.flush()
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.transport.close()

    def stop_reading(self) -> None:
        """The engine is stopping: no new requests from here; those in flight still get answers."""
        self._end()

    def _peer_closed(self) -> bool:
        """Whether the end of input is the peer gone (killed, closed) rather than a half-close
        (`shutdown(SHUT_WR)`, `nc -N`: it still reads its answers). Linux reports the first as
        POLLHUP on a Unix socket and the second as input only; where it cannot tell, not gone."""
        transport = self.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None:
            return False
        try:
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN)
            return any(mask & select.POLLHUP for _fd, mask in poller.poll(0))
        except (OSError, ValueError, AttributeError):
            return False

    def _hang_up(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._hang_up()
        if self._timer is not None:
            self._timer.cancel()
        if self._counted:
            self._counted = False
            srv = self.server
            srv._conns.discard(self)
            left = srv._per_pid.get(self.pid, 1) - 1
            if left > 0:
                srv._per_pid[self.pid] = left
            else:
                srv._per_pid.pop(self.pid, None)
        self._wake_drainers()

    # -- silence --
    def _arm(self, after: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(after, self._check_silence)

    def _check_silence(self) -> None:
        """One timer per connection rather than a wait on the read and every request in flight."""
        if self._lost or self._ending:
            return
        left = self.server._read_timeout(self, self.first)
        if left is None:  # a request of its own is in flight: look again an idle period later
            left = self.server.engine.settings.engine.idle_timeout_seconds
        elif left <= 0:
            log.info("closing a silent connection of pid %d", self.pid)
            self._end()
            return
        self._arm(left)

    # -- frames out: flow control --
    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_drainers()

    def _wake_drainers(self) -> None:
        drainers, self._drainers = self._drainers, []
        for fut in drainers:
            if not fut.done():
                fut.set_result(None)

    async def drain(self) -> None:
        """Until the peer has read enough of what was written (or is gone)."""
        if self._writing_paused and not self._lost:
            fut = asyncio.get_running_loop().create_future()
            self._drainers.append(fut)
            await fut


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
        self._requests: set[asyncio.Task] = set()
        self._conns: set[_Connection] = set()
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
            loop = asyncio.get_running_loop()
            self._server = await loop.create_unix_server(lambda: _Connection(self), self.path, backlog=1024)
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
            for conn in list(self._conns):
                conn.stop_reading()  # no new requests; in-flight ones are tasks of their own
            if self._requests:
                await asyncio.wait(list(self._requests), timeout=drain)
            for task in list(self._requests):
                task.cancel()
            await asyncio.gather(*self._requests, return_exceptions=True)
            for conn in list(self._conns):
                if conn.transport is not None:
                    conn.transport.close()
            await asyncio.sleep(0)  # each closed transport reports connection_lost on the next turn
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
        idle = [c for c in self._conns if not c.busy]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.last)
        log.warning("connection limit reached: closing an idle connection of pid %d", victim.pid)
        if victim.transport is not None:
            victim.transport.abort()
        return True

    def _read_timeout(self, conn: _Connection, first: bool) -> float | None:
        """How long this connection may stay silent: a first frame must come soon after connecting,
        later ones within the idle limit; none while a request of its own is in flight."""
        if conn.busy:
            return None
        limits = self.engine.settings.engine
        allowed = limits.first_frame_timeout_seconds if first else limits.idle_timeout_seconds
        return max(0.0, conn.last + allowed - time.monotonic())

    async def _one(self, line: bytes, conn: _Connection) -> None:
        response = await self.dispatch(line, conn.pid, conn.worktree, conn.gone)
        if response is not None:
            await conn.replies.send(response)

    async def dispatch(
        self, line: bytes, pid: int, worktree: str | None, gone: asyncio.Future | None = None
    ) -> dict | None:
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
        if _expired(req):
            # The client gave up on us before we could even start (we were stopped, or wedged): running
            # it now would do what the caller was told may not have happened.
            log.warning("dropped %s from pid %d: it waited past its start-by time", name, pid)
            return (
                None
                if notification
                else _error(rid, P.INTERNAL_ERROR, "request expired before it could start", "expired")
            )
        caller = Caller(
            name=claimed or None, worktree=worktree, pid=pid, read_only=worktree is None, gone=gone
        )
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

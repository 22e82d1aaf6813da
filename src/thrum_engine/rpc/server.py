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
import socket
import struct

from thrum_engine.engine.core import Caller, Engine
from thrum_engine.errors import ThrumError
from thrum_engine.layout import worktree_of
from thrum_engine.rpc import protocol as P

log = logging.getLogger("thrum.rpc")

MAX_IN_FLIGHT_PER_CONNECTION = 64
# asyncio's socket transport reads with recv(256 KiB); glibc serves an allocation that size from a
# fresh mmap and unmaps it again, ~14 us of CPU per read here: more than all the rest of a small
# request's socket handling. Requests are small; a big one just takes a few more reads.
READ_CHUNK = 64 * 1024
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", data)


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


class RpcServer:
    def __init__(self, engine: Engine, path: str) -> None:
        self.engine = engine
        self.path = path
        self.max_frame = P.max_frame(engine.settings.messages.max_body_bytes)
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task] = set()
        self._requests: set[asyncio.Task] = set()
        self._conn_count = 0

    async def start(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)  # stale: only reached while holding the engine lock
        old = os.umask(0o177)  # the socket is born 0600: no window where others can connect
        try:
            self._server = await asyncio.start_unix_server(self._handle, self.path, limit=self.max_frame)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self, drain: float = 2.0) -> None:
        """Stop accepting, let requests in flight finish (up to `drain` seconds), then cancel the rest
        (a blocked `wait` is the usual one)."""
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()  # stops reading new requests; in-flight ones are separate tasks
            if self._requests:
                await asyncio.wait(list(self._requests), timeout=drain)
            for task in list(self._requests):
                task.cancel()
            await asyncio.gather(*self._connections, *self._requests, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._conn_count += 1
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("connection handler failed")
        finally:
            self._conn_count -= 1
            self._connections.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except Exception:
                pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        pid, uid, _gid = peer_credentials(sock)
        if uid != os.getuid():
            log.warning("refused connection from uid %d (pid %d)", uid, pid)
            return
        if self._conn_count > self.engine.settings.engine.max_connections:
            await self._send(writer, _error(None, P.INTERNAL_ERROR, "engine busy: too many connections", "engine_busy"))
            return
        if hasattr(writer.transport, "max_size"):  # the selector transport's recv size (an attribute since 3.4)
            writer.transport.max_size = READ_CHUNK
        worktree = peer_worktree(pid, self.engine.layout.repo)
        write_lock = asyncio.Lock()
        slots = asyncio.Semaphore(MAX_IN_FLIGHT_PER_CONNECTION)
        pending: set[asyncio.Task] = set()
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as exc:
                    if exc.partial.strip():
                        await self._send(writer, _error(None, P.PARSE_ERROR, "incomplete frame (no newline)"), write_lock)
                    return
                except asyncio.LimitOverrunError:
                    await self._send(
                        writer,
                        _error(None, P.INVALID_REQUEST, f"frame larger than {self.max_frame} bytes", "too_large"),
                        write_lock,
                    )
                    return  # the stream is out of sync: drop the connection
                if not line.strip():
                    continue
                await slots.acquire()
                t = asyncio.create_task(self._one(line, pid, worktree, writer, write_lock))
                pending.add(t)
                self._requests.add(t)
                t.add_done_callback(lambda t: (pending.discard(t), self._requests.discard(t), slots.release()))
        finally:
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _one(self, line: bytes, pid: int, worktree: str | None, writer, write_lock) -> None:
        response = await self.dispatch(line, pid, worktree)
        if response is not None:
            await self._send(writer, response, write_lock)

    async def dispatch(self, line: bytes, pid: int, worktree: str | None) -> dict | None:
        try:
            req = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(None, P.PARSE_ERROR, f"parse error: {exc}")
        except RecursionError:
            return _error(None, P.PARSE_ERROR, "parse error: nested too deeply")
        if b"\\u" in line and _SURROGATE_ESCAPE in line.lower() and not _encodable(req):
            # A lone surrogate (\udXXX) is valid JSON but not text we can store or echo back.
            rid = req.get("id") if isinstance(req, dict) and _plain_id(req.get("id")) else None
            if isinstance(req, dict) and isinstance(req.get("method"), str) and not _encodable(req["method"]):
                return _error(rid, P.METHOD_NOT_FOUND, f"unknown method: {req['method']!a}", "unknown_method")
            return _error(rid, P.INVALID_PARAMS, "request holds text that is not valid UTF-8", "invalid_input")
        if not isinstance(req, dict):
            return _error(None, P.INVALID_REQUEST, "request must be a JSON object (batches are not supported)")
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
        caller = Caller(name=claimed or None, worktree=worktree, pid=pid, read_only=worktree is None)
        try:
            result = await self.engine.call(name, params, caller)
        except ThrumError as exc:
            return None if notification else _error(rid, exc.code, exc.message, exc.kind)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("method %s failed", name)
            return None if notification else _error(rid, P.INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")
        if notification:
            return None
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    async def _send(self, writer: asyncio.StreamWriter, msg: dict, lock: asyncio.Lock | None = None) -> None:
        try:
            data = (_encoder.encode(msg) + "\n").encode()
        except UnicodeEncodeError:  # a lone surrogate quoted in an error: ASCII escapes always encode
            data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        if lock is None:
            writer.write(data)
            await writer.drain()
            return
        async with lock:
            writer.write(data)
            await writer.drain()

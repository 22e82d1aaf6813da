"""The MCP server's connection to the engine: the same socket and JSON-RPC frames as the CLI's client
(rpc/client.py), but asynchronous, so a blocked `wait_for_message` or the channel's long-poll never
holds up another tool call. Many requests share one connection, matched by id.

The MCP server is a client like any other: the engine learns its worktree from the kernel (the
process's cwd, via SO_PEERCRED) and checks the claimed identity against it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from thrum_engine.rpc.client import peer_credentials, start_within

log = logging.getLogger("thrum.mcp")

# Answers can be big (an inbox page); asyncio's default line limit is 64 KiB.
LINE_LIMIT = 64 * 1024 * 1024


class EngineDown(Exception):
    """No engine answers on the socket (not started, stopped, or it went away mid-request)."""


class EngineRefused(Exception):
    """The engine answered with an error: `message` is its one-line reason, `kind` its category."""

    def __init__(self, message: str, kind: str | None = None, code: int = -32000) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.code = code


class EngineLink:
    def __init__(
        self, socket_path: str, caller: str | None, served: Callable[[], tuple[str, int] | None] | None = None
    ) -> None:
        self.socket_path = socket_path
        # Where the engine says it serves when `socket_path` does not answer (`Layout.served_engine`:
        # an engine started under another THRUM_SOCKET).
        self.served = served
        self.caller = caller
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._next_id = 0
        self._connecting = asyncio.Lock()
        self.engine_pid: int | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
        """A connection to the engine, served by this user: (reader, writer, the engine's pid)."""
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket_path, limit=LINE_LIMIT)
        except OSError as exc:
            found = await self._open_served()
            if found is None:
                raise EngineDown(
                    f"the engine is not running ({exc.strerror or exc}): start it with `thrum daemon start`"
                ) from None
            reader, writer = found
        pid, uid, _gid = peer_credentials(writer.get_extra_info("socket"))
        if uid != os.getuid():
            writer.close()
            raise EngineDown(
                f"the socket {self.socket_path} is served by another user (uid {uid}): refusing it"
            )
        return reader, writer, pid

    async def _open_served(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection on the socket the engine's pid file names, served by that pid (as
        `rpc.client.connect_engine` does for the CLI); None when there is none."""
        served = self.served() if self.served is not None else None
        if served is None:
            return None
        try:
            reader, writer = await asyncio.open_unix_connection(served[0], limit=LINE_LIMIT)
        except OSError:
            return None
        if peer_credentials(writer.get_extra_info("socket"))[0] != served[1]:
            writer.close()  # another engine took that socket since: not this repo's
            return None
        return reader, writer

    async def _connect(self) -> asyncio.StreamWriter:
        async with self._connecting:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            reader, writer, pid = await self._open()
            self.engine_pid = pid
            self._reader, self._writer = reader, writer
            self._pump = asyncio.create_task(self._read_answers(reader, writer), name="thrum-mcp-link")
            return writer

    async def _read_answers(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    resp = json.loads(line)
                except ValueError:
                    log.warning("unreadable answer from the engine: %.200r", line)
                    continue
                rid = resp.get("id") if isinstance(resp, dict) else None
                fut = self._pending.pop(rid, None) if isinstance(rid, int) else None
                if fut is not None and not fut.done():
                    fut.set_result(resp)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            if self._writer is writer:
                self._writer = None
            writer.close()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(EngineDown("lost the engine mid-request: check `thrum daemon status`"))
            self._pending.clear()

    def _frame(self, rid: int, method: str, params: dict[str, Any] | None, timeout: float) -> bytes:
        params = dict(params or {})
        if self.caller:
            params.setdefault("caller", self.caller)
        msg = {
            "jsonrpc": "2.0",
            "id": rid,
            "method": method,
            "params": params,
            "start_by_mono": time.monotonic() + start_within(timeout),  # rpc.server._expired
        }
        return (json.dumps(msg, separators=(",", ":")) + "\n").encode()

    @staticmethod
    def _result(resp: dict) -> Any:
        err = resp.get("error")
        if err is not None:
            data = err.get("data") or {}
            raise EngineRefused(err.get("message", "engine error"), data.get("kind"), err.get("code", -32000))
        return resp.get("result")

    async def call_alone(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0
    ) -> Any:
        """`method` on a connection of its own, closed when the call ends, is cancelled or times out:
        the engine sees the hang-up and stops it (a cancelled `wait_for_message` must not take the
        next message for nobody, walk session 21). For the long blocking calls."""
        reader, writer, _pid = await self._open()
        try:
            writer.write(self._frame(1, method, params, timeout))
            await writer.drain()
            async with asyncio.timeout(timeout):
                line = await reader.readline()
        except (ConnectionError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
            raise EngineDown(f"lost the engine mid-request ({exc}): check `thrum daemon status`") from None
        except TimeoutError:
            raise EngineDown(f"the engine did not answer {method} within {timeout:g}s") from None
        finally:
            writer.close()
        if not line:
            raise EngineDown("lost the engine mid-request: check `thrum daemon status`")
        try:
            resp = json.loads(line)
        except ValueError:
            raise EngineDown(f"unreadable answer from the engine: {line[:200]!r}") from None
        return self._result(resp)

    async def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0) -> Any:
        writer = await self._connect()
        self._next_id += 1
        rid = self._next_id
        frame = self._frame(rid, method, params, timeout)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            writer.write(frame)
            await writer.drain()
            async with asyncio.timeout(timeout):  # not wait_for: no extra future and callbacks per call
                resp = await fut
        except (ConnectionError, BrokenPipeError) as exc:
            raise EngineDown(f"lost the engine mid-request ({exc}): check `thrum daemon status`") from None
        except TimeoutError:
            raise EngineDown(f"the engine did not answer {method} within {timeout:g}s") from None
        finally:
            self._pending.pop(rid, None)
        return self._result(resp)

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None

"""`thrum mcp serve`: an MCP stdio server (the official `mcp` SDK, 2.x low-level `Server`) over the engine.

The tools are in tools.py. Push without typing: when the client is Claude Code (or `--channel on`), the
server declares `capabilities.experimental["claude/channel"]`, holds a channel open with the engine
(`channel.listen`, delivery_paths.py) and pushes each new message for its agent into the session as a
`notifications/claude/channel` event, then acknowledges it so the delivery record says `channel` and the
agent's pane is never typed at for it.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import anyio.abc
from mcp import types
from mcp.server import Server, ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.server.session import ServerSession
from mcp.server.stdio import stdio_server
from pydantic import ValidationError

from thrum_engine.mcp.link import LINE_LIMIT, EngineDown, EngineLink, EngineRefused
from thrum_engine.mcp.tools import TOOLS, cut_text
from thrum_engine.version import __version__

log = logging.getLogger("thrum.mcp")

CHANNEL_CAPABILITY = "claude/channel"
CHANNEL_METHOD = "notifications/claude/channel"
LISTEN_SECONDS = 25.0
ChannelMode = Literal["auto", "on", "off"]

NO_IDENTITY = (
    "no identity: this MCP server was started without one; start it with `thrum mcp serve --agent-id NAME`,"
    " set THRUM_NAME, or run `thrum quickstart --name NAME --role ROLE` in this worktree first"
)

INSTRUCTIONS = """Thrum connects you with the other agents and the human on this repository.
Messages for you arrive as <channel source="thrum" from="..." message_id="..."> events when the session
supports channels; otherwise call check_messages (or wait_for_message to block until one arrives).
Answer a message with reply(message_id, body); start one with send_message(to=["@name"], body).
team shows who is here; who_has tells you which worktrees are changing a file; set_intent tells the
team what you are doing."""


class ChannelNotification(types.Notification[dict[str, Any], Literal["notifications/claude/channel"]]):
    """Claude Code's channel event: `content` becomes the event's body, `meta` its tag's attributes."""

    method: Literal["notifications/claude/channel"] = CHANNEL_METHOD


def wants_channel(mode: ChannelMode, client_name: str) -> bool:
    """Channels are Claude Code's (clientInfo.name `claude-code`), so `auto` offers it to Claude Code
    only. Even there a session started without `--channels` drops the events and says nothing, so
    under `auto` the pushes are extras the engine does not count as delivered (the hooks and the
    nudge still deliver: walk, session 21); `on` says the session shows them."""
    if mode != "auto":
        return mode == "on"
    return client_name.lower().startswith("claude")


def channel_event(m: dict) -> ChannelNotification:
    meta = {"from": m["author"], "message_id": m["message_id"], "sent_at": m["created_at"]}
    if m.get("thread_id"):
        meta["thread_id"] = m["thread_id"]
    if m.get("broadcast"):
        meta["broadcast"] = "true"
    return ChannelNotification(
        params={"content": cut_text(m["body"]["content"], m["message_id"]), "meta": meta}
    )


def _text(result: Any) -> str:
    # Compact: with `indent`, json takes its pure-Python encoder, which was a tenth of a call's CPU.
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=f"Error: {message}")], is_error=True)


class _Lines:
    """stdin as the SDK's transport reads it (`async for line`), read on the event loop: the SDK's own
    file wrapper hands every line to a worker thread and back, which was most of a tool call's cost."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        line = await self.reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", "replace")


class _Out:
    """stdout as the SDK's transport writes it (`write`, `flush`), without a thread per line."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def write(self, text: str) -> None:
        self.writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self.writer.drain()


def _pipe_like(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


@asynccontextmanager
async def native_stdio() -> AsyncIterator[tuple[Any, Any]]:
    """The SDK's stdio transport over event-loop pipes. As the SDK does, the wire moves to private
    descriptors and fd 0/1 point at /dev/null and stderr while serving, so a stray print or a child
    process cannot corrupt the protocol. stdin or stdout that the loop cannot watch (a regular file):
    the SDK's own transport."""
    if not (_pipe_like(0) and _pipe_like(1)):
        async with stdio_server() as streams:
            yield streams
        return
    loop = asyncio.get_running_loop()
    wire_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    wire_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    reader = asyncio.StreamReader(limit=LINE_LIMIT, loop=loop)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
    )
    write_transport, write_protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), os.fdopen(wire_out, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(write_transport, write_protocol, None, loop)
    try:
        async with stdio_server(_Lines(reader), _Out(writer)) as streams:  # type: ignore[arg-type]
            yield streams
    finally:
        read_transport.close()
        write_transport.close()


@dataclass
class State:
    link: EngineLink
    agent: str | None
    mode: ChannelMode
    refusal: str = ""  # what every tool answers where none can work (outside every git repository)
    tasks: anyio.abc.TaskGroup | None = None
    channel_started: bool = False
    client_name: str = ""
    pushed: int = 0


class ThrumMcp:
    def __init__(
        self,
        socket_path: str,
        agent: str | None,
        mode: ChannelMode = "auto",
        refusal: str = "",
        served: Callable[[], tuple[str, int] | None] | None = None,
    ) -> None:
        self.state = State(EngineLink(socket_path, agent, served), agent, mode, refusal)
        self.server: Server[State] = Server(
            "thrum",
            version=__version__,
            instructions=INSTRUCTIONS,
            lifespan=self._lifespan,
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
        )
        self.server.add_notification_handler(
            "notifications/initialized", types.NotificationParams, self._initialized
        )
        self.server.middleware.append(self._declare_channel)

    # -- lifecycle --
    @asynccontextmanager
    async def _lifespan(self, _server: Server[State]) -> AsyncIterator[State]:
        async with anyio.create_task_group() as tg:
            self.state.tasks = tg
            try:
                yield self.state
            finally:
                tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            if self.state.channel_started:
                try:
                    await self.state.link.call("channel.close", {"channel_id": self.channel_id}, timeout=2)
                except (EngineDown, EngineRefused):
                    pass
            await self.state.link.close()

    async def run_stdio(self) -> None:
        async with native_stdio() as (read_stream, write_stream):
            await self.server.run(read_stream, write_stream, self.server.create_initialization_options())

    # -- the channel --
    @property
    def channel_id(self) -> str:
        return f"mcp-{os.getpid()}"

    async def _declare_channel(
        self, ctx: ServerRequestContext[State, Any], call_next: CallNext
    ) -> HandlerResult:
        """Offer the channel in the `initialize` answer, to the clients that can use it."""
        result = await call_next(ctx)
        if ctx.method == "initialize" and isinstance(result, dict):
            info = (ctx.params or {}).get("clientInfo") or {}
            name = info.get("name", "") if isinstance(info, dict) else ""
            self.state.client_name = str(name)
            if (
                wants_channel(self.state.mode, self.state.client_name)
                and self.state.agent
                and not self.state.refusal
            ):
                caps = result.setdefault("capabilities", {})
                caps.setdefault("experimental", {})[CHANNEL_CAPABILITY] = {}
        return result

    async def _initialized(
        self, ctx: ServerRequestContext[State, Any], _params: types.NotificationParams
    ) -> None:
        self._start_channel(ctx.session)

    def _start_channel(self, session: ServerSession) -> None:
        st = self.state
        if st.channel_started or st.tasks is None or not st.agent or st.refusal:
            return
        if not wants_channel(st.mode, st.client_name):
            return
        st.channel_started = True
        st.tasks.start_soon(self._channel_loop, session)

    async def _channel_loop(self, session: ServerSession) -> None:
        st = self.state
        ack: list[str] = []
        backoff = 0.2
        while True:
            try:
                r = await st.link.call(
                    "channel.listen",
                    {
                        "channel_id": self.channel_id,
                        "client": st.client_name,
                        "trusted": st.mode == "on",
                        "ack": ack,
                        "timeout": LISTEN_SECONDS,
                    },
                    timeout=LISTEN_SECONDS + 30,
                )
            except (EngineDown, EngineRefused) as exc:
                # Unacknowledged messages fall back to the other paths (the engine waits 5 s for an ack).
                log.warning("channel: %s (retrying in %.1fs)", exc, backoff)
                ack = []
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.2
            ack = []
            for m in r["messages"]:
                await session.send_notification(channel_event(m))  # pyright: ignore[reportArgumentType]
                ack.append(m["message_id"])
                st.pushed += 1

    # -- tools --
    async def list_tools(
        self, _ctx: ServerRequestContext[State, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(name=t.name, description=t.description, input_schema=t.input.model_json_schema())
                for t in TOOLS.values()
            ]
        )

    async def call_tool(
        self, ctx: ServerRequestContext[State, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        self._start_channel(ctx.session)  # a client that skipped the handshake (2026 protocol) too
        tool = TOOLS.get(params.name)
        if tool is None:
            return _error(f"unknown tool {params.name!r}: one of {', '.join(TOOLS)}")
        if self.state.refusal:
            return _error(self.state.refusal)
        if tool.identity and not self.state.agent:
            return _error(NO_IDENTITY)
        try:
            args = tool.input.model_validate(params.arguments or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first.get("loc", ())) or "arguments"
            return _error(f"invalid {where} for {tool.name}: {first.get('msg')}")
        try:
            result = await tool.run(self.state.link, args)
        except EngineDown as exc:
            return _error(f"engine down: {exc}")
        except EngineRefused as exc:
            return _error(exc.message)
        return types.CallToolResult(
            content=[types.TextContent(text=_text(result))], structured_content=result
        )

"""How the console reaches the engine: hosting it in-process, or attached to a headless daemon.

Both handles offer the same small surface to the app -- `await call(method, params)` as the
operator and `listen(callback)` for "something changed" -- so the UI never knows which one it has.
Whoever holds the engine lock hosts the engine; the console takes it when it is free so agents'
`thrum` commands keep working over the same socket while the console runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import subprocess
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from thrum_engine import names
from thrum_engine.daemon import lock
from thrum_engine.layout import Layout

log = logging.getLogger("thrum.tui")

OPERATOR_ROLE = "operator"
# Attached mode has no push bus across the socket: a short `message.wait` keeps mail to the
# operator prompt, and a team snapshot comparison catches everything else.
ATTACHED_WAIT_SECONDS = 2.0

Listener = Callable[[list[dict]], None]


class EngineCallFailed(Exception):
    """An engine call refused or failed; `message` is the one line to show the operator."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


class EngineHandle(Protocol):
    host: str  # "in-process" or "attached"
    operator: str
    layout: Layout

    async def call(self, method: str, params: dict | None = None) -> dict: ...

    def listen(self, callback: Listener) -> None: ...


def operator_name(git_user_name: str | None) -> str:
    """The operator's agent name from `git config user.name`: lower-cased, [a-z0-9_] only."""
    name = re.sub(r"[^a-z0-9_]+", "_", (git_user_name or "").strip().lower()).strip("_")
    name = (name or OPERATOR_ROLE)[: names.MAX_NAME]
    if names.agent_name_problem(name, OPERATOR_ROLE):
        name = name[: names.MAX_NAME - 2] + "_x"  # e.g. "operator" -> "operator_x": must differ from the role
    return name


def git_user_name(repo: str) -> str | None:
    try:
        proc = subprocess.run(["git", "config", "user.name"], check=False, cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None


class InProcess:
    """Hosts the engine and its socket in the console's own event loop (host "tui")."""

    host = "in-process"

    def __init__(self, layout: Layout, settings, lock_fd: int, operator: str) -> None:
        self.layout = layout
        self.settings = settings
        self.operator = operator
        self.engine = None
        self._lock_fd = lock_fd
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._listeners: list[Listener] = []

    async def start(self) -> None:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._host(ready), name="thrum-tui-engine")
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            self._task.result()  # raises why the engine could not start
            raise EngineCallFailed("the engine stopped while starting")

    async def _host(self, ready: asyncio.Event) -> None:
        from thrum_engine.daemon.host import serve

        def bind(engine) -> None:
            self.engine = engine
            if engine is not None:
                engine.bus.listen(self._publish)

        await serve(self.layout, self.settings, host="tui", ready=ready, stop=self._stop, on_engine=bind)

    def _publish(self, events: list[dict]) -> None:
        for fn in list(self._listeners):
            try:
                fn(events)
            except Exception:  # a broken listener must never break the engine's apply loop
                log.exception("console listener failed")

    def listen(self, callback: Listener) -> None:
        self._listeners.append(callback)

    async def call(self, method: str, params: dict | None = None) -> dict:
        from thrum_engine.engine.core import Caller
        from thrum_engine.errors import ThrumError

        engine = self.engine
        if engine is None:
            raise EngineCallFailed("the engine is not running (it was stopped)")
        try:
            return await engine.call(method, params or {}, Caller.trusted(self.operator))
        except ThrumError as exc:
            raise EngineCallFailed(exc.message, exc.kind) from None

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._task
        os.close(self._lock_fd)


class Attached:
    """Talks to a headless daemon's socket with the stdlib client, one worker thread per call."""

    host = "attached"

    def __init__(self, layout: Layout, operator: str) -> None:
        self.layout = layout
        self.operator = operator
        self._listeners: list[Listener] = []
        self._task: asyncio.Task | None = None
        self._closing = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="thrum-tui-watch")

    def _blocking_call(self, method: str, params: dict, timeout: float) -> dict:
        from thrum_engine.rpc.client import Client, EngineUnavailable, RpcError

        client = Client(self.layout.socket_path, timeout=timeout)
        try:
            return client.call(method, {**params, "caller": self.operator})
        except RpcError as exc:
            raise EngineCallFailed(exc.message, exc.kind) from None
        except (EngineUnavailable, OSError) as exc:
            raise EngineCallFailed(f"the engine is not reachable: {exc}", "unavailable") from None
        finally:
            client.close()

    async def call(self, method: str, params: dict | None = None, *, timeout: float = 60.0) -> dict:
        return await asyncio.to_thread(self._blocking_call, method, dict(params or {}), timeout)

    def listen(self, callback: Listener) -> None:
        self._listeners.append(callback)

    async def _watch(self) -> None:
        last_team = None
        while not self._closing:
            changed: list[dict] = []
            try:
                got = await self.call("message.wait", {"timeout": ATTACHED_WAIT_SECONDS},
                                      timeout=ATTACHED_WAIT_SECONDS + 30)
                changed += [{"type": "message.create", "author": m["author"], "data": {}}
                            for m in got.get("messages", [])]
                team = await self.call("team.list", {"all": True})
                snapshot = [(m["name"], m["state"], m["unread"], m["runtime"]) for m in team["members"]]
                if last_team is not None and snapshot != last_team:
                    changed.append({"type": "team.changed", "author": "", "data": {}})
                last_team = snapshot
            except EngineCallFailed as exc:
                log.warning("attached watch: %s", exc.message)
                await asyncio.sleep(ATTACHED_WAIT_SECONDS)
                continue
            if changed:
                for fn in list(self._listeners):
                    fn(changed)

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._task


@contextlib.asynccontextmanager
async def open_engine(layout: Layout, settings, operator: str) -> AsyncIterator[InProcess | Attached]:
    """Host the engine when its lock is free, else attach to whoever holds it; always cleans up."""
    main = Layout(layout.repo)  # the operator lives in the main checkout, whatever the cwd
    fd = lock.acquire(main.lock_path)
    handle: InProcess | Attached
    if fd is not None:
        handle = InProcess(main, settings, fd, operator)
        try:
            await handle.start()
        except BaseException:
            await handle.close()
            raise
    else:
        handle = Attached(main, operator)
        await handle.start()
    try:
        yield handle
    finally:
        await handle.close()

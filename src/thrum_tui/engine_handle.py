"""How the console reaches the engine: hosting it in-process, or attached to a headless daemon.

Both handles offer the same small surface to the app -- `await call(method, params)` as the
operator and `listen(callback)` for "something changed" -- so the UI never knows which one it has.
Whoever holds the engine lock hosts the engine; the console takes it when it is free so agents'
`thrum` commands keep working over the same socket while the console runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from thrum_engine import git, names
from thrum_engine.daemon import lock
from thrum_engine.layout import Layout
from thrum_engine.terminal_text import terminal_safe, terminal_safe_data

log = logging.getLogger("thrum.tui")

OPERATOR_ROLE = "operator"
# Attached mode long-polls `events.wait` (it answers at once when something changes).
ATTACHED_WAIT_SECONDS = 20.0
RETRY_SECONDS = 1.0

SNIPPET = 200  # characters of a new message's text a Change carries (as `events.wait` sends)


@dataclass(frozen=True, slots=True)
class Change:
    """One applied change, as much of it as the console needs. The engine's event format (the
    bus's events when hosting, `events.wait`'s briefs when attached) is read here, in `of`, and
    nowhere else in the console."""

    kind: str  # the event type ("message.create", "agent.update", ...) or "engine.reset"
    author: str = ""
    recipients: tuple[str, ...] = ()  # of a new message
    snippet: str = ""  # the start of a new message's text

    @property
    def is_message(self) -> bool:
        return self.kind.startswith("message.")

    @classmethod
    def of(cls, event: dict) -> Change:
        kind, author = event["type"], event.get("author") or ""
        if kind != "message.create":
            return cls(kind, author)
        data = event.get("data") or {}
        snippet = terminal_safe(str(data.get("content", ""))[:SNIPPET])
        return cls(kind, author, tuple(data.get("recipients") or ()), snippet)


# Everything may have changed: the daemon restarted, was unreachable, or the cursor fell behind.
RESET = Change("engine.reset")

Listener = Callable[[list[Change]], None]


class EngineCallFailed(Exception):
    """An engine call refused or failed; `message` is the one line to show the operator."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        message = terminal_safe(message)  # it may quote what was sent (a name, a body)
        super().__init__(message)
        self.message = message
        self.kind = kind


class EngineHandle(Protocol):
    host: str  # "in-process" or "attached"
    operator: str
    layout: Layout

    async def call(self, method: str, params: dict | None = None) -> dict: ...

    async def ready(self) -> None:
        """Until the engine answers; raises EngineCallFailed when it could not start."""
        ...

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
        return git.run(repo, "config", "user.name", check=False, timeout=10).strip() or None
    except git.GitFailed:
        return None


def load_console_settings(layout: Layout):
    """The settings, validated (pydantic: ~100 ms of imports, so not before the first frame), their
    log level applied to the console's log; EngineCallFailed with the line to show when bad."""
    from thrum_engine.daemon.control import local_session
    from thrum_engine.daemon.host import set_log_level
    from thrum_engine.errors import ThrumError
    from thrum_engine.settings import load_settings

    try:
        # an engine started --local and never stopped (a crash): the console's engine stays local too
        settings = load_settings(layout.config_file, local=local_session(layout) or None)
    except ThrumError as exc:  # not JSON, or a bad value (named)
        raise EngineCallFailed(exc.message, exc.kind) from None
    set_log_level(settings.engine.log_level)
    return settings


def _import_libtmux() -> None:
    """libtmux reads `sys.stdout.encoding` when imported, and while the app runs Textual's stand-in
    for stdout has none: the engine's first import of it (~60 ms, after the first frame) sees the
    real one. Called on the app's thread, the only one that writes to that stand-in."""
    if "libtmux" in sys.modules:
        return
    with contextlib.redirect_stdout(sys.__stdout__ or io.StringIO()):
        import libtmux  # noqa: F401


class Listeners:
    """The "something changed" side both handles share."""

    _listeners: list[Listener]

    def listen(self, callback: Listener) -> None:
        self._listeners.append(callback)

    def _publish(self, changes: list[Change]) -> None:
        for fn in list(self._listeners):
            try:
                fn(changes)
            except Exception:  # a broken listener must never break the engine's apply loop
                log.exception("console listener failed")

    def _publish_events(self, events: list[dict]) -> None:
        self._publish([Change.of(e) for e in events])


class InProcess(Listeners):
    """Hosts the engine and its socket on a thread of its own (host "tui").

    The engine gets its own event loop so neither side can stall the other: agents' commands are
    answered while the console is suspended for `tmux attach` or busy rendering a burst, and a
    slow engine call never freezes a keystroke. Calls cross with `run_coroutine_threadsafe`;
    events come back through listeners, which must be thread-safe (the app posts a message)."""

    host = "in-process"

    def __init__(self, layout: Layout, settings, lock_fd: int, operator: str) -> None:
        self.layout = layout
        self.settings = settings  # None: loaded on the engine's thread as it starts
        self.operator = operator
        self.engine = None
        self._lock_fd: int | None = lock_fd
        self._lock_guard = threading.Lock()  # the engine's thread and close() both release it, once
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._listeners: list[Listener] = []

    async def start(self) -> None:
        """Start the engine's thread and wait until it answers (its socket is up)."""
        await self.ready()

    def launch(self) -> None:
        """Start the engine's thread without waiting: the console paints its first frame and then
        launches it, so the operator sees the console while the engine (a third of the start-up's
        imports, the store, the socket) comes up; the first call waits for it."""
        if self._thread is None:
            _import_libtmux()
            self._thread = threading.Thread(target=self._run, name="thrum-engine", daemon=True)
            self._thread.start()

    async def ready(self) -> None:
        self.launch()
        if not self._ready.is_set():
            await asyncio.to_thread(self._ready.wait)
        if self._failure is not None:
            failure = self._failure
            if isinstance(failure, EngineCallFailed):  # the settings: already the line to show
                raise EngineCallFailed(failure.message, failure.kind)
            if isinstance(failure, OSError) and failure.strerror:
                message = f"{failure.strerror}: {failure.filename}" if failure.filename else failure.strerror
            else:
                message = getattr(failure, "message", None) or f"{type(failure).__name__}: {failure}"
            raise EngineCallFailed(f"the engine did not start: {message}", "unavailable") from failure
        if self.engine is None:
            raise EngineCallFailed("the engine is not running (it was stopped)", "unavailable")

    def _run(self) -> None:
        try:
            if self.settings is None:
                self.settings = load_console_settings(self.layout)
            asyncio.run(self._host())
        except BaseException as exc:  # reported to start(); after start the log has it
            self._failure = exc
            log.exception("in-process engine stopped")
        finally:
            self.engine = None
            # The engine is gone (stopped on request, `thrum daemon stop`, or failed): the lock
            # goes with it. Held for the console's whole life, it made `daemon stop` wait 10 s for
            # it and then SIGKILL the lock's holder, the console (walk A, 1).
            self._release_lock()
            self._ready.set()

    def _release_lock(self) -> None:
        with self._lock_guard:
            fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            lock.release(fd)

    async def _host(self) -> None:
        from thrum_engine.daemon.host import serve

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        ready = asyncio.Event()

        def bind(engine) -> None:
            self.engine = engine
            if engine is not None:
                engine.bus.listen(self._publish_events)

        async def signal_ready() -> None:
            await ready.wait()
            self._ready.set()

        waiter = asyncio.create_task(signal_ready())
        try:
            await serve(self.layout, self.settings, host="tui", ready=ready, stop=self._stop, on_engine=bind)
        finally:
            waiter.cancel()

    async def call(self, method: str, params: dict | None = None) -> dict:
        from thrum_engine.engine.core import Caller
        from thrum_engine.errors import ThrumError

        if not self._ready.is_set():
            await self.ready()
        engine, loop = self.engine, self._loop
        if engine is None or loop is None:
            raise EngineCallFailed("the engine is not running (it was stopped)")
        future = asyncio.run_coroutine_threadsafe(
            engine.call(method, params or {}, Caller.trusted(self.operator)), loop
        )
        try:
            return terminal_safe_data(await asyncio.wrap_future(future))
        except ThrumError as exc:
            raise EngineCallFailed(exc.message, exc.kind) from None

    async def close(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        self._release_lock()  # never launched, or released already by the engine's thread


class Attached(Listeners):
    """Talks to a headless daemon's socket with the stdlib client, one worker thread per call."""

    host = "attached"

    def __init__(self, layout: Layout, operator: str, settings=None) -> None:
        self.layout = layout
        self.operator = operator
        self.settings = settings  # the console's own (the daemon has its own); None: loaded by ready()
        self._listeners: list[Listener] = []
        self._task: asyncio.Task | None = None
        self._closing = False
        self._inflight: set = set()  # clients mid-call, interrupted on close (a long poll blocks 20 s)
        self.down = ""  # why the daemon is not answering, for the header; "" while it is

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="thrum-tui-watch")

    async def ready(self) -> None:
        """The daemon was answering when the console attached; a call that finds it gone says so.
        Raises EngineCallFailed when the settings are bad."""
        if self.settings is None:
            self.settings = await asyncio.to_thread(load_console_settings, self.layout)

    def _blocking_call(self, method: str, params: dict, timeout: float) -> dict:
        from thrum_engine.rpc.client import Client, EngineUnavailable, RpcError

        client = Client(self.layout.socket_path, timeout=timeout)
        self._inflight.add(client)
        try:
            if self._closing:
                raise EngineCallFailed("the console is closing", "unavailable")
            return client.call(method, {**params, "caller": self.operator})
        except RpcError as exc:
            raise EngineCallFailed(exc.message, exc.kind) from None
        except (EngineUnavailable, OSError) as exc:
            raise EngineCallFailed(f"the engine is not reachable: {exc}", "unavailable") from None
        finally:
            self._inflight.discard(client)
            client.close()

    async def call(self, method: str, params: dict | None = None, *, timeout: float = 60.0) -> dict:
        return terminal_safe_data(
            await asyncio.to_thread(self._blocking_call, method, dict(params or {}), timeout)
        )

    async def _watch(self) -> None:
        """Long-poll the daemon's change feed: each answer arrives as soon as something is applied,
        so mail and team changes show up as promptly as when hosting."""
        cursor: int | None = None
        lost = False
        while not self._closing:
            params = {} if cursor is None else {"after": cursor, "timeout": ATTACHED_WAIT_SECONDS}
            try:
                got = await self.call("events.wait", params, timeout=ATTACHED_WAIT_SECONDS + 30)
            except EngineCallFailed as exc:
                log.warning("attached watch: %s", exc.message)
                cursor = None  # the daemon may have restarted: start over, refresh everything
                if exc.kind == "unavailable" and not self._closing:
                    self.down = await asyncio.to_thread(self._revive)
                lost = True
                self._publish([RESET])
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self.down = ""
            if lost:  # what changed between the last refresh and this new cursor: refresh it all
                lost = False
                self._publish([RESET])
            if cursor is not None and (got["changes"] or got["reset"]):
                self._publish([Change.of(c) for c in got["changes"]] or [RESET])
            cursor = got["cursor"]

    def _revive(self) -> str:
        """The daemon stopped answering. Killed or crashed (its pid file outlived it): start one
        again, as any `thrum` command would, since the agents and this console need it. Stopped on
        purpose (`thrum daemon stop` removes the pid file): leave it stopped and say so. Returns
        what the header shows: "" once an engine answers again."""
        from thrum_engine.daemon import control

        if control.lock_held(self.layout):
            return "not answering"  # an engine holds the lock: starting or busy, asked again soon
        if not os.path.exists(self.layout.pid_path):
            return "stopped: thrum daemon start"
        try:
            pid, started = control.start(self.layout)
        except (control.StartFailed, OSError) as exc:
            log.error("the engine had stopped and could not be started again: %s", exc)
            return "down: could not start it again, see the log"
        if started:
            log.warning("the engine had stopped without a clean exit: started it again (pid %s)", pid)
        return ""

    async def close(self) -> None:
        self._closing = True
        for client in list(self._inflight):
            client.interrupt()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._task


@contextlib.asynccontextmanager
async def open_engine(layout: Layout, settings, operator: str) -> AsyncIterator[InProcess | Attached]:
    """Host the engine when its lock is free, else attach to whoever holds it; always cleans up.
    `settings` None: the handle loads them as the engine starts (`ready()`), after the first frame."""
    main = Layout(layout.repo)  # the operator lives in the main checkout, whatever the cwd
    from thrum_engine.daemon.control import anchor

    fd = lock.acquire(main.lock_path, anchor(main))
    handle: InProcess | Attached
    if fd is not None:
        handle = InProcess(main, settings, fd, operator)  # started by its first call, or launch()
    else:
        handle = Attached(main, operator, settings)
        await handle.start()
    try:
        yield handle
    finally:
        await handle.close()

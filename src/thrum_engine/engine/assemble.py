"""The composition root: the one place that knows every subsystem. `build` makes an `Engine`,
plugs in its subsystems and registers the method modules; `Engine` itself imports none of them.

How to add a subsystem (the MCP/channel registry, the integrations recorder, sync, ...):

1. Give it a class in its own module with `async start()` and `async stop()` that takes the
   engine (or just the pieces it needs: `engine.bus`, `engine.store`, `engine.post`, ...).
   It never imports a method module: messages go through `engine.post(author, body, to=[...])`.
2. Add a typed slot for it in `Engine.__init__` (`self.sync: SyncService | None = None`,
   the class imported under TYPE_CHECKING only) if method modules need to reach it.
3. Write a `_plug_<name>(engine)` below that builds it, fills the slot and calls
   `engine.plug(Part(name, start, stop))`; call it from `build`, in start order (a part may use
   the ones plugged before it). A part whose absence the engine survives catches its own start
   failure, logs it and leaves its slot None (see `_plug_tmux`).
4. Put its method module (the `@method` handlers: thin wrappers over plain functions) in
   `METHOD_MODULES` and in the layers contract in pyproject.toml ([tool.importlinter]).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from thrum_engine import (
    briefing,
    changes,
    delivery_paths,
    doctor,
    feed,
    hooks_log,
    identity,
    messaging,
    team,
    worktrees,
)
from thrum_engine.asks import methods as ask_methods
from thrum_engine.engine import admin
from thrum_engine.engine.core import Engine, Part
from thrum_engine.layout import Layout
from thrum_engine.monitors import methods as monitor_methods
from thrum_engine.review import methods as review_methods
from thrum_engine.review import trees as review_trees
from thrum_engine.schedules import methods as schedule_methods
from thrum_engine.settings import ThrumSettings
from thrum_engine.sync import methods as sync_methods
from thrum_engine.tmux import methods as tmux_methods
from thrum_engine.tmux.server import TmuxError

log = logging.getLogger("thrum.engine")

# Every module whose `@method` handlers the engine serves; importing one registers its methods.
METHOD_MODULES = (
    admin,
    ask_methods,
    briefing,
    changes,
    delivery_paths,
    doctor,
    feed,
    hooks_log,
    identity,
    messaging,
    monitor_methods,
    review_methods,
    review_trees,
    schedule_methods,
    sync_methods,
    team,
    tmux_methods,
    worktrees,
)


def build(
    layout: Layout,
    settings: ThrumSettings,
    *,
    host: str = "daemon",
    request_stop: Callable[[], None] | None = None,
) -> Engine:
    """An engine with every subsystem plugged in, not yet started (`await engine.start()`)."""
    engine = Engine(layout, settings, host=host, request_stop=request_stop)
    engine.post = lambda author, body, *, to, **options: messaging.create_message(
        engine, author, body, to=to, **options
    )
    engine.changes = changes.ChangeFeed(engine.bus)
    _plug_idempotency(engine)
    _plug_tmux(engine)
    _plug_monitors(engine)
    _plug_schedules(engine)
    _plug_asks(engine)
    _plug_sync(engine)
    return engine


def _plug_idempotency(engine: Engine) -> None:
    """The idempotency keys seen within the window (issue 16): first, before anything sends."""
    from thrum_engine.idempotency import IdempotencyIndex

    index = IdempotencyIndex(engine)

    async def start() -> None:
        await index.start()
        engine.idempotency = index

    async def stop() -> None:
        engine.idempotency = None
        await index.stop()

    engine.plug(Part("idempotency", start, stop))


def _plug_schedules(engine: Engine) -> None:
    """The schedules' one timer (issue 16): after tmux and monitors, so a fire's message is nudged
    like any other; before sync, whose synced schedules it then follows."""
    from thrum_engine.schedules.service import ScheduleService

    service = ScheduleService(engine)

    async def start() -> None:
        engine.schedules = service
        await service.start()

    async def stop() -> None:
        await service.stop()

    engine.plug(Part("schedules", start, stop))


def _plug_asks(engine: Engine) -> None:
    """Reminders of open asks and reports of overdue ones (asks/service.py)."""
    from thrum_engine.asks import service

    svc = service.attach(engine)
    engine.plug(Part("asks", svc.start, svc.stop))


def _plug_tmux(engine: Engine) -> None:
    """Sessions, pane streams, nudges and the command queue; messaging works without them when
    tmux is missing, so a failed start turns them off instead of failing the engine."""
    from thrum_engine.tmux.manager import TmuxManager

    async def start() -> None:
        manager = TmuxManager(engine)
        try:
            await manager.start()
        except Exception as exc:  # a boundary: any failure here only turns tmux off, and is logged
            log.warning("tmux features off: %s", exc, exc_info=not isinstance(exc, TmuxError | OSError))
            return
        engine.tmux = manager

    async def stop() -> None:
        if engine.tmux is not None:
            await engine.tmux.stop()
            engine.tmux = None

    engine.plug(Part("tmux", start, stop))


def _plug_monitors(engine: Engine) -> None:
    """Monitor rules (and the permission rule, when tmux is up): after tmux, which they watch."""
    from thrum_engine.monitors.service import MonitorService

    service = MonitorService(engine)

    async def start() -> None:
        engine.monitors = service
        await service.start()

    async def stop() -> None:
        await service.stop_all()

    engine.plug(Part("monitors", start, stop))


def _plug_sync(engine: Engine) -> None:
    """Git sync of the journal: last to start (it re-projects other clones' events through the
    engine, which everything else already listens to), first to stop."""
    from thrum_engine.sync.service import SyncService

    service = SyncService(engine)

    async def start() -> None:
        engine.sync = service
        await service.start()

    async def stop() -> None:
        await service.stop()

    engine.plug(Part("sync", start, stop))

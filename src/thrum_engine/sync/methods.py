"""`sync.status` and `sync.force`: what the sync is doing, and a cycle now."""

from __future__ import annotations

from thrum_engine.engine.core import Caller, Engine
from thrum_engine.engine.registry import method
from thrum_engine.errors import Conflict
from thrum_engine.model import Params


class SyncForceParams(Params):
    wait: bool = False


class SyncStatusParams(Params):
    pass


def _service(engine: Engine):
    if engine.sync is None:
        raise Conflict("sync has not started")
    return engine.sync


@method("sync.status", SyncStatusParams)
async def status(engine: Engine, caller: Caller, p: SyncStatusParams) -> dict:
    svc = _service(engine)
    await svc.notice_new_remote()
    return svc.status()


@method("sync.force", SyncForceParams, writes=True, timeout=False)
async def force(engine: Engine, caller: Caller, p: SyncForceParams) -> dict:
    """Concurrent calls coalesce: every request made while a cycle runs is served by the next one."""
    svc = _service(engine)
    if svc.mode.name == "off":
        raise Conflict(f"sync is off: {svc.mode.why}")
    return await svc.force(p.wait)

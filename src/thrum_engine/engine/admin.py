"""Engine-level methods: health, stop, effective settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from thrum_engine.engine.caller import Caller
from thrum_engine.engine.registry import method
from thrum_engine.errors import Forbidden
from thrum_engine.layout import current_branch
from thrum_engine.model import EmptyParams

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine


@method("engine.info", EmptyParams)
async def info(engine: Engine, caller: Caller, p: EmptyParams) -> dict:
    out = engine.info()
    out["branch"] = current_branch(engine.layout.repo)  # the main checkout's; None when detached
    out["agents"] = len(engine.agents)
    out["batches"] = engine.writer.batches
    out["events_written"] = engine.writer.events_written
    return out


@method(
    "daemon.stop", EmptyParams, writes=True
)  # any agent may stop it (it restarts on demand); not read-only callers
async def stop(engine: Engine, caller: Caller, p: EmptyParams) -> dict:
    if engine.request_stop is None:
        raise Forbidden("this engine's host does not accept stop requests")
    engine.request_stop()
    return {"stopping": True, "pid": engine.info()["pid"]}


@method("config.show", EmptyParams)
async def config_show(engine: Engine, caller: Caller, p: EmptyParams) -> dict:
    return {"config": engine.settings.model_dump(mode="json"), "config_file": engine.layout.config_file}

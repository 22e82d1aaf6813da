"""The composition root: `assemble.build` plugs the subsystems into an engine core that knows none
of them; a subsystem added the documented way starts after the core, in order, and stops in reverse."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from thrum_engine.engine.assemble import METHOD_MODULES, build
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.core import Part
from thrum_engine.engine.registry import METHODS
from thrum_engine.layout import Layout
from thrum_engine.settings import ThrumSettings


@pytest.fixture
async def layout(tmp_path, monkeypatch):
    monkeypatch.setenv("THRUM_TMUX__SOCKET_NAME", "thrum-test-assemble-unused")
    await asyncio.to_thread(subprocess.run, ["git", "init", "-q", str(tmp_path / "r")], check=True)
    (tmp_path / "r/.git/thrum-sync/a-sync/journal").mkdir(parents=True)
    return Layout(str(tmp_path / "r"))


def test_every_method_module_is_in_the_explicit_list():
    served = {
        m.handler.__module__ for m in METHODS.values() if m.handler.__module__.startswith("thrum_engine")
    }
    assert served == {m.__name__ for m in METHOD_MODULES}


async def test_a_plugged_subsystem_starts_after_the_core_and_stops_before_it(layout):
    engine = build(layout, ThrumSettings())
    seen: list[str] = []

    async def start() -> None:
        assert engine.store.is_open  # the core is up: journal, projection, writer
        seen.append("start")

    async def stop() -> None:
        assert engine.store.is_open
        seen.append("stop")

    engine.plug(Part("recorder", start, stop))
    assert [p.name for p in engine.parts] == [
        "idempotency",
        "tmux",
        "monitors",
        "schedules",
        "asks",
        "sync",
        "recorder",
    ]
    await engine.start()
    try:
        assert engine.monitors is not None and engine.changes is not None
        sent = await engine.call("agent.register", {"name": "alice", "role": "w"}, Caller.trusted())
        assert sent["created"]
    finally:
        await engine.stop()
    assert seen == ["start", "stop"] and not engine.store.is_open


async def test_a_subsystem_that_fails_to_start_stops_the_ones_before_it_and_the_core(layout):
    engine = build(layout, ThrumSettings())
    stopped: list[str] = []

    async def ok_start() -> None:
        pass

    async def ok_stop() -> None:
        stopped.append("first")

    async def bad_start() -> None:
        raise RuntimeError("no such service")

    async def never() -> None:
        stopped.append("never started")

    engine.plug(Part("first", ok_start, ok_stop))
    engine.plug(Part("broken", bad_start, never))
    with pytest.raises(RuntimeError, match="no such service"):
        await engine.start()
    assert stopped == ["first"] and not engine.store.is_open

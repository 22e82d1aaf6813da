"""The engine façade in-process: per-request deadlines and ordering, on a real repo and real files."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from thrum_engine.engine.assemble import build
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.registry import METHODS, method
from thrum_engine.errors import EngineTimeout
from thrum_engine.layout import Layout
from thrum_engine.model import Params
from thrum_engine.settings import ThrumSettings


@pytest.fixture
async def engine(tmp_path, monkeypatch):
    monkeypatch.setenv("THRUM_TMUX__SOCKET_NAME", "thrum-test-core-unused")
    await asyncio.to_thread(subprocess.run, ["git", "init", "-q", str(tmp_path / "r")], check=True)
    (tmp_path / "r/.git/thrum-sync/a-sync/journal").mkdir(parents=True)
    settings = ThrumSettings(engine={"request_timeout_seconds": 0.6})
    e = build(Layout(str(tmp_path / "r")), settings)
    await e.start()
    yield e
    await e.stop()


async def test_a_request_past_its_deadline_fails_and_the_engine_keeps_serving(engine):
    @method("test.slow", Params)
    async def slow(engine, caller, p):
        await asyncio.sleep(30)
        return {}

    try:
        with pytest.raises(EngineTimeout, match="took longer than 0.6s"):
            await engine.call("test.slow", {}, Caller.trusted())
        assert (await engine.call("engine.info", {}, Caller.trusted()))["running"] is True
    finally:
        METHODS.pop("test.slow", None)


async def test_message_ids_and_their_events_sort_in_send_order(engine):
    for n in ("alice", "bob"):
        await engine.call("agent.register", {"name": n, "role": "w"}, Caller.trusted())
    ids = [
        (await engine.call("message.send", {"body": f"m{i}", "to": ["@bob"]}, Caller.trusted("alice")))[
            "message_id"
        ]
        for i in range(20)
    ]
    assert ids == sorted(ids)
    inbox = await engine.call("message.inbox", {"oldest": True, "page_size": 50}, Caller.trusted("bob"))
    assert [m["message_id"] for m in inbox["messages"]] == ids


async def test_while_several_clients_send_a_batch_waits_for_requests_on_their_way(engine, monkeypatch):
    """Requests arriving a few turns of the loop apart (as from sockets) make fewer, larger batches
    when the writer gathers (`Writer._gather`); every send is still acknowledged and stored."""
    from thrum_engine.engine import writer as writer_mod

    monkeypatch.setattr(writer_mod, "GATHER_SECONDS", 60.0)  # turns only: no clock in this test
    for n in ("alice", "bob"):
        await engine.call("agent.register", {"name": n, "role": "w"}, Caller.trusted())

    async def clients(tag: str) -> int:
        async def client(k: int) -> None:
            for i in range(15):
                await engine.call(
                    "message.send", {"body": f"{tag}{k}-{i}", "to": ["@bob"]}, Caller.trusted("alice")
                )
                for _ in range(k % 4):  # the next request comes a few turns later, as off a socket
                    await asyncio.sleep(0)

        before = engine.writer.batches
        await asyncio.gather(*(client(k) for k in range(8)))
        return engine.writer.batches - before

    monkeypatch.setattr(writer_mod, "GATHER_TURNS", 0)
    alone = await clients("a")
    monkeypatch.setattr(writer_mod, "GATHER_TURNS", 16)
    gathered = await clients("g")
    assert gathered < alone * 0.75, (gathered, alone)
    inbox = await engine.call("message.inbox", {"page_size": 500, "peek": True}, Caller.trusted("bob"))
    assert inbox["total"] == 240


async def test_with_two_people_identities_the_main_checkout_is_the_one_seen_last(engine):
    """Walk (session 18): a console started once without HOME registered "operator_x" beside the
    real operator, and from then on every `thrum send`/`inbox` in the main checkout said "no
    identity" (the mapping wanted exactly one person), even with the real console attached."""
    repo = engine.layout.repo
    await engine.call("agent.register", {"name": "alice", "role": "worker"}, Caller())
    await engine.call("agent.register", {"name": "ada", "role": "operator", "kind": "user"}, Caller())
    await engine.call("agent.register", {"name": "operator_x", "role": "operator", "kind": "user"}, Caller())
    me = Caller(worktree=repo)
    sent = await engine.call("message.send", {"body": "from the main checkout", "to": ["@alice"]}, me)
    assert sent["message_id"]
    got = await engine.call("message.inbox", {"page_size": 5}, Caller.trusted("alice"))
    assert [m["author"] for m in got["messages"]] == ["operator_x"]  # registered last
    await engine.call("agent.register", {"name": "ada", "role": "operator", "kind": "user"}, Caller())
    await engine.call("message.send", {"body": "again", "to": ["@alice"]}, me)  # ada's console is back
    got = await engine.call("message.inbox", {"page_size": 5}, Caller.trusted("alice"))
    assert [m["author"] for m in got["messages"]] == ["ada", "operator_x"]  # newest first

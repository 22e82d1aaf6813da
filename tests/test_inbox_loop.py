"""The inbox read on the event loop's own connection (issue 17): the counts it reads equal the slow
counts through every kind of change, a rebuild and a restart; its answer is byte for byte the one
the reader's thread gives; it steps aside while reads are paused and follows a rebuilt database."""

from __future__ import annotations

import json

import pytest

from conftest import start_inproc_engine
from test_unread_counts import NAMES, _journal  # the random journal: sends, reads, deletes, purges
from thrum_engine import fastjson
from thrum_engine.doctor import rebuild_projection
from thrum_engine.engine.caller import Caller
from thrum_engine.store import Store, queries

VISIBLE = (
    "SELECT COUNT(*) FROM agents a JOIN deliveries d ON d.recipient = a.name AND d.deleted = 0"
    " AND d.created_at >= a.registered_at WHERE a.name = ?"
)
UNREAD = VISIBLE + " AND d.read_at IS NULL"


async def _agree(store: Store) -> dict[str, tuple[int, int]]:
    """Every registered agent's (total, unread) as the page reads them, checked against COUNT(*)."""
    out = {}
    for (name,) in [tuple(r.values()) for r in await store.all("SELECT name FROM agents")]:
        slow = (await store.scalar(VISIBLE, [name]), await store.scalar(UNREAD, [name]))
        assert await queries.inbox_counts(store, name) == slow, name
        out[name] = slow
    return out


@pytest.mark.parametrize("seed", range(3))
async def test_the_page_counts_are_the_slow_counts_through_every_change(tmp_path, seed):
    events = _journal(seed, 500)
    path = str(tmp_path / "live.sqlite")
    store = Store(path)
    await store.open()
    try:
        for i in range(0, len(events), 7):
            await store.apply(events[i : i + 7], {"x": i})
            if i % 49 == 0:
                await _agree(store)
        live = await _agree(store)
    finally:
        await store.close()
    assert any(unread for _total, unread in live.values()), "the journal leaves some mail unread"
    again = Store(path)  # a restart: the same counts from the file
    await again.open()
    try:
        assert await _agree(again) == live
    finally:
        await again.close()
    rebuilt = Store(str(tmp_path / "rebuilt.sqlite"))
    await rebuilt.open(bulk=True)
    try:
        await rebuilt.apply(events, {"x": len(events)})
        await rebuilt.finish_bulk()
    finally:
        await rebuilt.close()
    reopened = Store(str(tmp_path / "rebuilt.sqlite"))
    await reopened.open()
    try:
        assert await _agree(reopened) == live
    finally:
        await reopened.close()


async def _engine_with_mail(tmp_path, monkeypatch):
    engine = await start_inproc_engine(tmp_path, monkeypatch, "inboxloop")
    for name in NAMES:
        await engine.call("agent.register", {"name": name, "role": "worker"}, Caller.trusted())
    for i in range(30):
        author, to = NAMES[i % 4], NAMES[(i + 1) % 4]
        params: dict = {"body": f"note {i} " + "é" * (i % 5), "to": ["@" + to]}
        if i % 7 == 0:
            params["structured"] = {"n": i, "ok": True}
        if i == 14:
            params["structured"] = {"small": 1.5e-05, "nan": None}  # orjson writes 1.5e-05 otherwise
        if i % 5 == 0:
            params["refs"] = ["bd:bd-12"]
        await engine.call("message.send", params, Caller.trusted(author))
    return engine


VARIANTS = [
    {"page_size": 5},
    {"page_size": 5, "page": 2},
    {"unread": True, "page_size": 4},
    {"oldest": True, "page_size": 6},
    {"peek": True},
]


async def test_the_loop_read_answers_byte_for_byte_what_the_reader_thread_answers(tmp_path, monkeypatch):
    """Two engines on the same history, one reading on the loop and one made to read through the
    reader's thread (its loop connection refusing): every answer, markers included, is the same."""
    loop = await _engine_with_mail(tmp_path / "a", monkeypatch)
    thread = await _engine_with_mail(tmp_path / "b", monkeypatch)
    monkeypatch.setattr(thread.store, "now", lambda sql, params=(): None)
    try:
        for me in NAMES:
            for kw in VARIANTS:
                got = [await e.call("message.inbox", kw, Caller.trusted(me)) for e in (loop, thread)]
                for page in got:  # the ids and times differ between the two histories: not the shape
                    for m in page["messages"]:
                        m["message_id"] = m["created_at"] = ""
                assert fastjson.dumps(got[0]) == fastjson.dumps(got[1]), (me, kw)
    finally:
        await loop.stop()
        await thread.stop()


async def test_paused_reads_go_through_the_reader_and_a_rebuild_is_followed(tmp_path, monkeypatch):
    engine = await _engine_with_mail(tmp_path, monkeypatch)
    try:
        before = await engine.call("message.inbox", {"peek": True}, Caller.trusted("bob"))
        assert before["messages"]
        engine.store._readable.clear()  # as pause_reads leaves it while a rebuild swaps the file
        assert engine.store.now("SELECT 1") is None
        engine.store.resume_reads()
        assert engine.store.now("SELECT 1 AS one") == [{"one": 1}]
        await rebuild_projection(engine)
        after = await engine.call("message.inbox", {"peek": True}, Caller.trusted("bob"))
        assert fastjson.dumps(after) == fastjson.dumps(before)
        await engine.call(
            "message.send", {"body": "after the rebuild", "to": ["@bob"]}, Caller.trusted("alice")
        )
        newest = await engine.call("message.inbox", {"page_size": 1}, Caller.trusted("bob"))
        assert newest["messages"][0]["body"]["content"] == "after the rebuild"
        assert newest["total"] == before["total"] + 1
    finally:
        await engine.stop()


async def test_a_page_vouched_plain_is_written_as_the_stdlib_writes_it(tmp_path, monkeypatch):
    """An inbox answer skips fastjson's walk (`fastjson.Plain`) only when its parsed parts hold no
    float: every frame is byte for byte the stdlib's, the page with a float in a structured body too."""
    engine = await _engine_with_mail(tmp_path, monkeypatch)
    try:
        kinds = set()
        for me in NAMES:
            for kw in ({"page_size": 100, "peek": True}, {"page_size": 3, "peek": True}):
                page = await engine.call("message.inbox", kw, Caller.trusted(me))
                floats = any(
                    isinstance(v, float)
                    for m in page["messages"]
                    for v in (m["body"].get("structured") or {}).values()
                )
                kinds.add((type(page) is fastjson.Plain, floats))
                assert not (floats and type(page) is fastjson.Plain)
                frame = {"jsonrpc": "2.0", "id": 1, "result": page}
                assert (
                    fastjson.dumps(frame)
                    == json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode()
                )
        assert kinds >= {(True, False), (False, True)}, kinds
    finally:
        await engine.stop()

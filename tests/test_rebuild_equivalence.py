"""A rebuild from the journal gives exactly the store the live path built: every projected table,
row for row, column for column, and the same schema (indexes and triggers included).

The journal is written by a real in-process engine through its RPC methods, so it holds every kind
of event the engine writes: agents (register, update, delete), sessions, messages (plain, keyed,
escaped, threaded, replies, broadcast, mentions), edits, deletes, reads, asks and acks, held
messages and their release, schedules and their cancel, and a purge."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

from conftest import start_inproc_engine
from thrum_engine.engine.assemble import build
from thrum_engine.engine.caller import Caller
from thrum_engine.journal import Journal
from thrum_engine.store.rebuild import build_projection, sorted_journal_lines, swap_in
from thrum_engine.store.schema import LOCAL


async def call(e, method: str, who: str | None, **params) -> dict:
    return await e.call(method, params, Caller.trusted(who))


async def _every_kind_of_event(e) -> None:
    for n, role in (("alice", "lead"), ("bob", "reviewer"), ("carol", "reviewer"), ("dave", "worker")):
        await e.call("agent.register", {"name": n, "role": role}, Caller())
    await e.call("agent.register", {"name": "ada", "role": "operator", "kind": "user"}, Caller())
    await call(e, "session.start", "bob", intent="reviewing")
    await call(e, "session.set_intent", "bob", text="still reviewing")
    await call(e, "session.start", "carol")
    await call(e, "agent.set_status", "bob", status="working")
    ids = []
    for i in range(40):  # plain ones take the rebuild's fast path; these others do not
        body = f"message {i}" if i % 3 else f'quote " back\\slash\n tab\t é 😀 {i}'
        r = await call(e, "message.send", "alice" if i % 2 else "carol", body=body, to=["@bob", "@dave"])
        ids.append(r["message_id"])
    keyed = await call(e, "message.send", "alice", body="keyed", to=["@bob"], idempotency_key="cli-abcdef")
    ids.append(keyed["message_id"])
    await call(e, "message.send", "bob", body="to all", to=["@reviewer"], mentions=["@carol"])
    await call(e, "message.send", "dave", body="everyone", broadcast=True)
    await call(e, "message.send", "dave", body='{"k": [1, 2]}', to=["@alice"], format="json")
    reply = await call(e, "message.reply", "bob", message_id=ids[0], body="a reply")
    thread = (
        reply.get("thread_id")
        or (await call(e, "message.get", None, message_id=ids[0]))["message"]["thread_id"]
    )
    await call(e, "message.send", "carol", body="in the thread", to=["@bob"], thread_id=thread)
    await call(e, "message.reply", "alice", message_id=reply["message_id"], body="reply to the reply")
    await call(e, "message.edit", "alice", message_id=ids[1], body="edited")
    await call(e, "message.delete", "alice", message_id=ids[3], force=True)
    await call(e, "message.read", "bob", message_ids=ids[4:10])
    await call(e, "message.read", "dave", all=True)
    await call(e, "message.inbox", "carol", page_size=5)  # a first view marks messages seen
    ask = await call(e, "message.send", "alice", body="which schema?", to=["@bob", "@carol"], ask=True)
    await call(e, "ask.ack", "bob", message_id=ask["message_id"], note="v2")
    await call(e, "message.send", "carol", body="due soon", to=["@alice"], ask=True, due=3600)
    e.settings.guards.pair_per_minute = 2
    for i in range(4):  # a runaway pair: the last ones are held
        await call(
            e,
            "message.send",
            "bob" if i % 2 else "carol",
            body=f"ping {i}",
            to=["@carol" if i % 2 else "@bob"],
        )
    assert (await call(e, "message.held", None))["held"]
    held = (await call(e, "message.held", None))["held"]
    await call(e, "message.release", None, message_ids=[held[0]["message_id"]])
    e.settings.guards.pair_per_minute = 1000
    s1 = await call(e, "schedule.create", "alice", body="later", to=["@bob"], in_seconds=3600)
    await call(e, "schedule.create", "bob", body="daily", to=["@alice"], cron="0 9 * * *")
    await call(e, "schedule.cancel", "alice", schedule_id=s1["schedule"]["schedule_id"])
    await call(e, "session.end", "carol")
    await call(e, "agent.delete", None, name="dave")
    await call(e, "message.send", "alice", body="after dave left", to=["@bob"])
    first = (await call(e, "message.get", None, message_id=ids[2]))["message"]["created_at"]
    await call(e, "message.purge", None, before=first, confirm=True)


def _tables(path: str) -> dict[str, list[tuple]]:
    """Every table but the machine-local ones, all rows in a fixed order; and the schema."""
    conn = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
            if r[0] not in LOCAL and not r[0].startswith("sqlite_")
        ]
        out: dict[str, list[tuple]] = {
            "schema": sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall())
        }
        for t in names:
            rows = conn.execute(f"SELECT * FROM {t}").fetchall()
            if t == "meta":  # the recovery record is the engine's note of how the file came to be
                rows = [r for r in rows if r[0] != "projection_recovered"]
            if t in ("unread", "inbox_counts"):
                # A count the triggers brought down to 0 stays as a row; a recount leaves none. Every
                # query reads them as SUM(n) / `n > 0` / `or 0`: the same answer.
                rows = [r for r in rows if r[-1] != 0]
            out[t] = sorted(rows, key=repr)
        return out
    finally:
        conn.close()


async def test_a_rebuild_gives_exactly_the_live_store(tmp_path, monkeypatch):
    e = await start_inproc_engine(tmp_path, monkeypatch, "rebuildeq")
    try:
        await _every_kind_of_event(e)
    finally:
        await e.stop()
    db = e.layout.db_path
    live = _tables(db)
    assert len(live["messages"]) > 40 and live["held"] and live["asks"] and live["schedules"]
    assert live["sessions"] and any(r[3] for r in live["sessions"])  # an ended session
    assert any(r[9] for r in live["messages"])  # a deleted message

    journal = Journal(e.layout.journal_dir, e.layout.quarantine_dir)
    types = {json.loads(line)["type"] for line in sorted_journal_lines(journal).lines}
    assert types >= {
        "agent.register",
        "agent.update",
        "agent.delete",
        "session.start",
        "session.update",
        "session.end",
        "message.create",
        "message.edit",
        "message.delete",
        "message.read",
        "message.purge",
        "ask.ack",
        "message.hold",
        "message.release",
        "schedule.create",
        "schedule.cancel",
    }, types
    rebuilt = str(tmp_path / "rebuilt.sqlite")
    shutil.copy(db, rebuilt)  # the rebuild replaces a store (its machine-local tables carried over)
    built = await build_projection(journal, rebuilt, local_from=rebuilt)
    assert built.rejected == []
    swap_in(built, rebuilt)
    journal.close()
    again = _tables(rebuilt)
    assert set(again) == set(live)
    for table in live:
        assert again[table] == live[table], table


async def test_start_skips_the_whole_file_check_only_after_a_clean_stop(tmp_path, monkeypatch):
    """quick_check reads every page (start-up's cost that grows with the store): a clean stop leaves a
    mark, the next start takes it and skips the check; a changed file, or no mark (a crash), is checked."""
    from thrum_engine.store import health

    e = await start_inproc_engine(tmp_path, monkeypatch, "cleanstop")
    await e.call("agent.register", {"name": "alice", "role": "lead"}, Caller())
    await call(e, "message.send", "alice", body="hi", to=["@alice"])
    await e.stop()
    db = e.layout.db_path
    assert os.path.exists(db + health.CLEAN_SUFFIX)
    checked: list[bool] = []
    real = health.diagnose

    def spy(path: str, *, whole_file: bool = True):
        checked.append(whole_file)
        return real(path, whole_file=whole_file)

    monkeypatch.setattr("thrum_engine.engine.core.diagnose", spy)
    for change in ("none", "changed", "crashed"):
        if change == "changed":
            os.utime(db, ns=(1, 1))  # the file was touched while the engine was stopped
        if change == "crashed":
            os.remove(db + health.CLEAN_SUFFIX)  # what a crash leaves: the start took the mark
        again = build(e.layout, e.settings)
        await again.start()
        try:
            assert not os.path.exists(db + health.CLEAN_SUFFIX)  # taken: a crash from here leaves none
        finally:
            await again.stop()
    assert checked == [False, True, True]

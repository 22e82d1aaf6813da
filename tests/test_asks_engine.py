"""Asks, reminders, due times and the loop guard against a real in-process engine (issue 16).

Time is the test's: the reminder service's `tick(now)` is called with a test clock, so nothing
here waits on the wall clock."""

from __future__ import annotations

import pytest

from conftest import start_inproc_engine
from thrum_engine.asks import service as ask_service
from thrum_engine.durations import parse_iso
from thrum_engine.engine.caller import Caller
from thrum_engine.errors import InvalidInput, NotFound


@pytest.fixture
async def engine(tmp_path, monkeypatch):
    e = await start_inproc_engine(tmp_path, monkeypatch, "asks")
    e.settings.asks.remind_after_seconds = 60
    e.settings.asks.remind_backoff = 2
    e.settings.asks.max_reminders = 3
    for n in ("alice", "bob", "carol"):
        await e.call("agent.register", {"name": n, "role": "reviewer" if n != "alice" else "lead"}, Caller())
    await e.call("agent.register", {"name": "ada", "role": "operator", "kind": "user"}, Caller())
    yield e
    await e.stop()


async def call(e, method: str, who: str | None, **params) -> dict:
    return await e.call(method, params, Caller.trusted(who))


async def inbox(e, who: str) -> list[dict]:
    return (await call(e, "message.inbox", who, page_size=100, peek=True))["messages"]


def from_system(msgs: list[dict]) -> list[dict]:
    return [m for m in msgs if m["author"] == "system"]


async def test_reminders_back_off_stop_after_n_and_a_reply_closes_the_ask(engine):
    sent = await call(engine, "message.send", "alice", body="which schema?", to=["@bob"], ask=True)
    assert sent["ask"] is True
    t0 = parse_iso(
        (await call(engine, "message.get", None, message_id=sent["message_id"]))["message"]["created_at"]
    )
    svc = ask_service.attach(engine)
    assert (await svc.tick(t0 + 59))["reminded"] == 0
    assert (await svc.tick(t0 + 61))["reminded"] == 1
    assert (await svc.tick(t0 + 62))["reminded"] == 0  # the next one waits 2 x 60 s after the first
    row = (await call(engine, "ask.list", "bob", to_me=True))["asks"][0]
    assert row["reminders"] == 1 and row["message_id"] == sent["message_id"]
    # reminded_at is the engine's record of the test time: the backoff counts from it
    assert (await svc.tick(t0 + 61 + 119))["reminded"] == 0
    assert (await svc.tick(t0 + 61 + 121))["reminded"] == 1
    assert (await svc.tick(t0 + 61 + 121 + 241))["reminded"] == 1
    assert (await svc.tick(t0 + 100_000))["reminded"] == 0  # three reminders, then they stop
    reminders = from_system(await inbox(engine, "bob"))
    assert len(reminders) == 3
    assert all(sent["message_id"] in m["body"]["content"] for m in reminders)
    assert "Reminder 3/3" in reminders[0]["body"]["content"]
    # bob replies: the ask is closed, for him and for alice's list
    await call(engine, "message.reply", "bob", message_id=sent["message_id"], body="v2")
    assert (await call(engine, "ask.list", "bob", to_me=True))["asks"] == []
    assert (await call(engine, "ask.list", "alice", mine=True))["asks"] == []
    d = (await call(engine, "message.get", "alice", message_id=sent["message_id"]))["message"]["deliveries"][
        0
    ]
    assert d["state"] == "replied" and [s["state"] for s in d["steps"]][-1] == "replied"


async def test_no_reminder_while_the_recipient_is_working_on_it(engine):
    sent = await call(engine, "message.send", "alice", body="look at this", to=["@bob"], ask=True)
    t0 = parse_iso(
        (await call(engine, "message.get", None, message_id=sent["message_id"]))["message"]["created_at"]
    )
    svc = ask_service.attach(engine)
    await call(engine, "agent.set_status", "bob", status="working")
    # working but it has not seen the ask: reminded
    assert (await svc.tick(t0 + 61))["reminded"] == 1
    await call(engine, "message.inbox", "bob", page_size=100)  # now bob has read it, and works
    await engine.markers_written("bob")
    assert (await svc.tick(t0 + 10_000))["reminded"] == 0
    await call(engine, "agent.set_status", "bob", status="idle")
    assert (await svc.tick(t0 + 10_000))["reminded"] == 1


async def test_an_ack_closes_the_ask_and_the_ledger_says_acked_with_the_note(engine):
    sent = await call(engine, "message.send", "alice", body="FYI: deploy at 5", to=["@bob"], ask=True)
    mid = sent["message_id"]
    with pytest.raises(InvalidInput, match="not an ask addressed to you"):
        await call(engine, "ask.ack", "carol", message_id=mid)
    with pytest.raises(NotFound):
        await call(engine, "ask.ack", "bob", message_id="msg_" + "0" * 26)
    r = await call(engine, "ask.ack", "bob", message_id=mid, note="noted")
    assert r["acked"] is True
    assert (await call(engine, "ask.ack", "bob", message_id=mid))["acked"] is False  # once
    d = (await call(engine, "message.get", "alice", message_id=mid))["message"]["deliveries"][0]
    assert d["state"] == "acked" and d["ack_note"] == "noted" and d["read_at"]
    assert [s["state"] for s in d["steps"]] == ["stored", "seen", "read", "acked"]
    assert (await call(engine, "ask.list", "alice"))["asks"] == []
    assert (await ask_service.attach(engine).tick(parse_iso(r["at"]) + 10**6))["reminded"] == 0


async def test_a_fan_out_ask_tracks_each_recipient(engine):
    sent = await call(engine, "message.send", "alice", body="vote please", to=["@reviewer"], ask=True)
    assert sorted(sent["recipients"]) == ["bob", "carol"]
    await call(engine, "message.reply", "carol", message_id=sent["message_id"], body="yes")
    left = (await call(engine, "ask.list", "alice", mine=True))["asks"]
    assert [a["recipient"] for a in left] == ["bob"]
    # an answer in the thread (not a reply to the ask itself) closes it too
    thread = (await call(engine, "message.get", None, message_id=sent["message_id"]))["message"]["thread_id"]
    await call(engine, "message.send", "bob", body="yes too", to=["@alice"], thread_id=thread)
    assert (await call(engine, "ask.list", "alice", mine=True))["asks"] == []


async def test_past_its_due_time_the_sender_is_told_once(engine):
    sent = await call(engine, "message.send", "alice", body="need this by noon", to=["@bob"], due=600)
    assert sent["ask"] is True and sent["due_at"]
    due = parse_iso(sent["due_at"])
    svc = ask_service.attach(engine)
    assert (await svc.tick(due - 1))["overdue"] == 0
    assert (await svc.tick(due + 1))["overdue"] == 1
    assert (await svc.tick(due + 5000))["overdue"] == 0
    told = from_system(await inbox(engine, "alice"))
    assert len(told) == 1 and "Unanswered past its due time" in told[0]["body"]["content"]
    assert sent["message_id"] in told[0]["body"]["content"] and "@bob" in told[0]["body"]["content"]
    assert (await call(engine, "ask.list", "alice", mine=True))["asks"][0]["overdue"] is True


async def test_asks_acks_and_reminders_survive_a_rebuild(engine, tmp_path, monkeypatch):
    a = await call(engine, "message.send", "alice", body="one", to=["@bob"], ask=True)
    b = await call(engine, "message.send", "alice", body="two", to=["@bob"], ask=True)
    await call(engine, "ask.ack", "bob", message_id=a["message_id"])
    t0 = parse_iso(
        (await call(engine, "message.get", None, message_id=b["message_id"]))["message"]["created_at"]
    )
    await ask_service.attach(engine).tick(t0 + 61)
    await engine.stop()
    import os

    os.unlink(engine.layout.db_path)  # the projection is gone: rebuilt from the journal at start
    from thrum_engine.engine.assemble import build
    from thrum_engine.settings import ThrumSettings

    e2 = build(engine.layout, ThrumSettings())
    await e2.start()
    try:
        asks = (await call(e2, "ask.list", "bob", to_me=True))["asks"]
        assert [x["message_id"] for x in asks] == [b["message_id"]]
        assert asks[0]["reminders"] == 1
    finally:
        await e2.stop()
    engine.store = e2.store  # the fixture's stop() finds it closed already


async def test_a_runaway_pair_is_held_the_operator_told_and_released(engine):
    engine.settings.guards.pair_per_minute = 3
    ids = []
    for i in range(3):
        r = await call(
            engine,
            "message.send",
            "alice" if i % 2 == 0 else "bob",
            body=f"ping {i}",
            to=["@bob" if i % 2 == 0 else "@alice"],
        )
        assert "held" not in r
        ids.append(r["message_id"])
    held1 = await call(engine, "message.send", "bob", body="pong 3", to=["@alice"])  # the 4th exchange
    held2 = await call(engine, "message.send", "alice", body="ping 4", to=["@bob"])  # and all after it
    assert "loop guard" in held1["held"] and "held" in held2
    assert [m["body"]["content"] for m in await inbox(engine, "bob")] == ["ping 2", "ping 0"]
    # the operator was told once, not once per held message
    notices = from_system(await inbox(engine, "ada"))
    assert len(notices) == 1 and "thrum release" in notices[0]["body"]["content"]
    # a message from or to the human is never held
    assert "held" not in await call(engine, "message.send", "ada", body="stop it", to=["@alice"])
    assert "held" not in await call(engine, "message.send", "alice", body="sorry", to=["@ada"])
    listed = (await call(engine, "message.held", None))["held"]
    assert [h["message_id"] for h in listed] == [held1["message_id"], held2["message_id"]]
    with pytest.raises(Exception, match="operator"):
        await engine.call("message.release", {"all": True}, Caller(worktree="/elsewhere"))
    r = await call(engine, "message.release", None, all=True)
    assert r["released"] == [held1["message_id"], held2["message_id"]]
    assert (await inbox(engine, "bob"))[0]["body"]["content"] == "ping 4"
    assert (await call(engine, "message.held", None))["held"] == []
    # delivery proceeds: the pair starts counting afresh
    assert "held" not in await call(engine, "message.send", "alice", body="ping 5", to=["@bob"])


async def test_one_agent_sending_a_batch_is_no_loop(engine):
    engine.settings.guards.pair_per_minute = 3
    for i in range(20):
        assert "held" not in await call(engine, "message.send", "alice", body=f"result {i}", to=["@bob"])
    assert "held" not in await call(engine, "message.send", "bob", body="thanks", to=["@alice"])


async def test_a_long_agent_thread_is_held_and_a_human_message_resets_it(engine):
    engine.settings.guards.thread_exchanges = 3
    first = await call(engine, "message.send", "alice", body="start", to=["@bob"])
    last = first
    for i in range(3):  # three replies in the thread the first one starts
        last = await call(
            engine,
            "message.reply",
            "bob" if i % 2 == 0 else "alice",
            message_id=last["message_id"],
            body=f"r{i}",
        )
        assert "held" not in last
    r = await call(engine, "message.reply", "alice", message_id=last["message_id"], body="again")
    assert "thread" in r["held"]
    # the human speaks in the thread: its count restarts (and the held one waits for a release)
    await call(
        engine, "message.send", "ada", body="carry on", to=["@alice", "@bob"], thread_id=last["thread_id"]
    )
    r = await call(engine, "message.reply", "bob", message_id=last["message_id"], body="once more")
    assert "held" not in r


async def test_held_messages_survive_a_rebuild_and_are_released_after_it(engine):
    engine.settings.guards.pair_per_minute = 1
    await call(engine, "message.send", "alice", body="ping", to=["@bob"])
    held = await call(engine, "message.send", "bob", body="pong", to=["@alice"])
    assert held["held"]
    await engine.stop()
    import os

    os.unlink(engine.layout.db_path)
    from thrum_engine.engine.assemble import build
    from thrum_engine.settings import ThrumSettings

    e2 = build(engine.layout, ThrumSettings())
    await e2.start()
    try:
        assert [h["message_id"] for h in (await call(e2, "message.held", None))["held"]] == [
            held["message_id"]
        ]
        assert (await inbox(e2, "alice")) == []  # still not delivered
        await call(e2, "message.release", None, message_ids=[held["message_id"]])
        assert [m["message_id"] for m in await inbox(e2, "alice")] == [held["message_id"]]
        with pytest.raises(InvalidInput, match="released already"):
            await call(e2, "message.release", None, message_ids=[held["message_id"]])
    finally:
        await e2.stop()
    engine.store = e2.store


async def test_a_reply_to_a_reminder_answers_the_ask_it_reminds_of(engine):
    """Console walk (session 22): `r` on the engine's reminder replied to `system`, which reached
    nobody and left the ask open, while the console said "reply sent"."""
    sent = await call(engine, "message.send", "alice", body="blue buttons?", to=["@bob"], ask=True)
    t0 = parse_iso(
        (await call(engine, "message.get", None, message_id=sent["message_id"]))["message"]["created_at"]
    )
    assert (await ask_service.attach(engine).tick(t0 + 61))["reminded"] == 1
    (reminder,) = from_system(await inbox(engine, "bob"))
    r = await call(engine, "message.reply", "bob", message_id=reminder["message_id"], body="yes, blue")
    assert r["recipients"] == ["alice"] and r["reply_to"] == sent["message_id"]
    assert (await call(engine, "ask.list", "alice", mine=True))["asks"] == []
    assert [m["body"]["content"] for m in await inbox(engine, "alice")] == ["yes, blue"]

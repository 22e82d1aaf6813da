"""Schedules (issue 16, item 2): the real CLI and daemon for `--in`, restarts and bad input; an
in-process engine with a frozen clock for `--cron` every minute and `--until-reply`."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from conftest import assert_error, exchange, shard_file, start_inproc_engine, wait_for
from test_hooks_dedup import hook
from thrum_engine.durations import parse_iso
from thrum_engine.engine.caller import Caller


def inbox(agent) -> list[dict]:
    return agent.json("inbox", "--page-size", "100")["messages"]


def scheduled(agent) -> list[dict]:
    return [m for m in inbox(agent) if (m.get("meta") or {}).get("scheduled")]


def test_in_2s_is_delivered_once_from_its_author_marked_scheduled(pair):
    repo, alice, bob = pair
    r = alice.json("schedule", "create", "--to", "@bob", "--in", "2s", "stand-up time")
    s = r["schedule"]
    assert r["recipients"] == ["bob"] and s["status"] == "pending" and s["kind"] == "at"
    assert [x["schedule_id"] for x in alice.json("schedule", "list")["schedules"]] == [s["schedule_id"]]
    (m,) = wait_for(lambda: scheduled(bob), what="the scheduled message")
    assert m["author"] == "alice" and m["body"]["content"] == "stand-up time"
    assert m["meta"]["scheduled"]["schedule_id"] == s["schedule_id"]
    assert m["meta"]["scheduled"]["late"] is False
    assert m["thread_id"] == s["thread_id"]
    done = wait_for(
        lambda: (x := alice.json("schedule", "show", s["schedule_id"])["schedule"])["status"] == "done" and x,
        what="the schedule done",
    )
    assert done["fires"] == 1 and done["last_message_id"] == m["message_id"] and done["next_at"] is None
    assert alice.json("schedule", "list")["schedules"] == []
    assert len(scheduled(bob)) == 1
    human = bob.ok("inbox").out
    assert "[scheduled]" in human
    # the fire is in the journal, next to the message it delivered
    lines = [json.loads(x) for x in shard_file(repo.path, "alice").read_text().splitlines()]
    fires = [e for e in lines if e["type"] == "schedule.fire"]
    assert [f["data"]["message_id"] for f in fires] == [m["message_id"]]


def test_a_fire_due_while_the_engine_was_down_is_delivered_once_on_start_marked_late(pair):
    repo, alice, bob = pair
    s = alice.json("schedule", "create", "--to", "@bob", "--in", "4s", "--ask", "did CI pass?")["schedule"]
    repo.stop()
    due = parse_iso(s["next_at"])
    while time.time() < due + 1.0:  # past its time with no engine running (not an assertion)
        time.sleep(0.2)
    (m,) = wait_for(lambda: scheduled(bob), what="the late message")  # this CLI call starts the engine
    assert m["meta"]["scheduled"]["late"] is True
    (ask,) = bob.json("asks", "--to-me")["asks"]  # each fire of an --ask schedule is an open ask
    assert ask["message_id"] == m["message_id"]
    shown = alice.json("schedule", "show", s["schedule_id"])["schedule"]
    assert shown["status"] == "done" and shown["last_late"] is True and shown["ask"] is True
    repo.stop()
    alice.ok("daemon", "start")
    assert len(scheduled(bob)) == 1  # a restart never delivers it again
    assert alice.json("schedule", "show", s["schedule_id"])["schedule"]["fires"] == 1


def test_schedules_survive_a_rebuild_and_cancel(pair):
    repo, alice, bob = pair
    to_me = alice.json("schedule", "create", "--to", "@me", "--in", "1h", "self reminder")["schedule"]
    assert to_me["to"] == ["@alice"]  # not `@me`: read by bob or the operator, that would name them
    assert f"{to_me['schedule_id']}  @alice → @alice" in bob.ok("schedule", "list", "--everyone").out
    cron = alice.json("schedule", "create", "--to", "@bob", "--cron", "0 9 * * 1", "weekly")["schedule"]
    assert cron["kind"] == "cron" and cron["cron"] == "0 9 * * 1"
    repo.ok("doctor", "rebuild")
    listed = {s["schedule_id"]: s for s in alice.json("schedule", "list")["schedules"]}
    assert set(listed) == {to_me["schedule_id"], cron["schedule_id"]}
    assert listed[cron["schedule_id"]]["next_at"] == cron["next_at"]
    assert_error(bob.run("schedule", "cancel", cron["schedule_id"]), "only its author")
    r = alice.json("schedule", "cancel", cron["schedule_id"])
    assert r["cancelled"] and r["schedule"]["status"] == "cancelled"
    assert "cancelled by @alice" in r["schedule"]["end_reason"]
    assert_error(alice.run("schedule", "cancel", cron["schedule_id"]), "cancelled already")
    human = alice.ok("schedule", "list").out
    assert to_me["schedule_id"] in human and cron["schedule_id"] not in human
    assert cron["schedule_id"] in alice.ok("schedule", "list", "--all").out


def test_a_rebuild_after_a_delivery_finds_the_store_as_it_was(pair):
    """A delivered schedule stores `meta`, and a send `--structured` its object, both JSON written in
    the engine's key order live but parsed from the sorted journal line on a rebuild: the store must
    hold the same text either way, or every doctor run after a delivery says it was wrong."""
    repo, alice, bob = pair
    alice.ok("schedule", "create", "--to", "@bob", "--in", "1s", "hi")
    alice.ok("send", "payload", "--to", "@bob", "--structured", '{"z": 1, "a": {"y": 2, "b": 3}}')
    wait_for(lambda: scheduled(bob), what="the scheduled message")
    r = repo.json("doctor", "rebuild")
    assert r["identical"] is True, r


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--to", "@bob", "--in", "2x", "x"], "--in: invalid duration"),
        (["--to", "@bob", "--in", "-5s", "x"], "--in must be a positive duration"),
        (["--to", "@bob", "--cron", "every minute", "x"], "invalid --cron"),
        (["--to", "@bob", "--cron", "61 * * * *", "x"], "invalid --cron"),
        (["--to", "@bob", "--cron", "0 0 31 2 *", "x"], "invalid --cron '0 0 31 2 *': it never fires"),
        (["--to", "@nobody", "--in", "5s", "x"], "unknown recipient: @nobody"),
        (["--to", "@bob", "x"], "exactly one of --at"),
        (["--to", "@bob", "--in", "5s", "--cron", "* * * * *", "x"], "exactly one of --at"),
        (["--to", "@bob", "--at", "2001-01-01T00:00:00Z", "x"], "in the past"),
        (["--to", "@bob", "--at", "half past nine", "x"], "invalid --at"),
        (["--in", "5s", "x"], "a recipient is required"),
        (["--to", "@bob", "--in", "5s"], "a message body is required"),
    ],
)
def test_bad_input_is_one_error_line_and_stores_nothing(pair, args, fragment):
    _repo, alice, _bob = pair
    assert_error(alice.run("schedule", "create", *args), fragment)
    assert alice.json("schedule", "list", "--all")["schedules"] == []


def test_unknown_or_malformed_schedule_ids_are_errors(pair):
    _repo, alice, _bob = pair
    assert_error(alice.run("schedule", "show", "sch_01M8W0B5G03SN97K7QPBZBK71A"), "no schedule")
    assert_error(alice.run("schedule", "cancel", "sch_01M8W0B5G03SN97K7QPBZBK71A"), "no schedule")
    assert_error(alice.run("schedule", "show", "nope"), "invalid schedule id")
    assert "schedule create" in alice.ok("--help").out and "schedule list" in alice.ok("--help").out


class FrozenClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def engine(tmp_path, monkeypatch):
    e = await start_inproc_engine(tmp_path, monkeypatch, "schedules")
    for n in ("alice", "bob"):
        await e.call("agent.register", {"name": n, "role": "worker"}, Caller.trusted())
    yield e
    await e.stop()


async def until(cond, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def fired(engine, who: str = "bob") -> list[dict]:
    r = await engine.call("message.inbox", {"peek": True, "page_size": 100}, Caller.trusted(who))
    return [m for m in r["messages"] if (m.get("meta") or {}).get("scheduled")]


async def test_cron_every_minute_on_a_frozen_clock(engine):
    service = engine.schedules
    clock = FrozenClock(1_800_000_000.0 + 7)  # 7 s past a minute
    service.clock = clock
    alice = Caller.trusted("alice")
    r = await engine.call("schedule.create", {"to": ["@bob"], "body": "tick", "cron": "* * * * *"}, alice)
    sid = r["schedule"]["schedule_id"]
    assert parse_iso(r["schedule"]["next_at"]) == 1_800_000_060.0
    service.wake()  # nothing is due at the frozen time: nothing fires
    await asyncio.sleep(0.05)
    assert await fired(engine) == []
    for minute in (1, 2, 3):
        clock.now = 1_800_000_000.0 + 60 * minute + 1
        service.wake()
        await until(lambda m=minute: _count(engine, m), f"fire {minute}")
    got = await fired(engine)
    assert [m["meta"]["scheduled"]["due"][11:19] for m in reversed(got)] == [
        "08:01:00",
        "08:02:00",
        "08:03:00",
    ]
    assert not any(m["meta"]["scheduled"]["late"] for m in got)
    shown = (await engine.call("schedule.show", {"schedule_id": sid}, alice))["schedule"]
    assert shown["fires"] == 3 and parse_iso(shown["next_at"]) == 1_800_000_240.0
    assert service.pending == 1
    # a long gap (the host slept): one fire, marked late, then the next minute after now
    clock.now = 1_800_000_000.0 + 600 + 5
    service.wake()
    await until(lambda: _count(engine, 4), "the late fire")
    assert (await fired(engine))[0]["meta"]["scheduled"]["late"] is True
    shown = (await engine.call("schedule.show", {"schedule_id": sid}, alice))["schedule"]
    assert shown["fires"] == 4 and parse_iso(shown["next_at"]) == 1_800_000_660.0


async def _count(engine, n: int) -> bool:
    return len(await fired(engine)) >= n


async def test_until_reply_cancels_when_the_thread_is_answered(engine):
    service = engine.schedules
    clock = FrozenClock(1_800_000_000.0)
    service.clock = clock
    alice, bob = Caller.trusted("alice"), Caller.trusted("bob")
    r = await engine.call(
        "schedule.create",
        {"to": ["@bob"], "body": "status?", "cron": "*/5 * * * *", "until_reply": True},
        alice,
    )
    sid = r["schedule"]["schedule_id"]
    clock.now += 301
    service.wake()
    (m,) = await until(lambda: fired(engine), "the first reminder")
    # alice writing in her own thread is not an answer
    await engine.call("message.send", {"to": ["@bob"], "body": "ping", "thread_id": m["thread_id"]}, alice)
    await asyncio.sleep(0.05)
    assert (await engine.call("schedule.show", {"schedule_id": sid}, alice))["schedule"][
        "status"
    ] == "pending"
    await engine.call("message.reply", {"message_id": m["message_id"], "body": "all green"}, bob)

    async def cancelled():
        s = (await engine.call("schedule.show", {"schedule_id": sid}, alice))["schedule"]
        return s if s["status"] == "cancelled" else None

    s = await until(cancelled, "the schedule cancelled by the reply")
    assert s["end_reason"] == "answered by @bob"
    assert service.pending == 0
    clock.now += 600
    service.wake()
    await asyncio.sleep(0.05)
    assert len(await fired(engine)) == 1


def test_with_sync_every_clone_shows_a_schedule_and_only_its_own_clone_fires_it(remote):
    a, b = remote("a"), remote("b")
    alice = a.agent("alice", "implementer")
    bob = b.agent("bob", "reviewer")
    exchange(a, b)
    s = alice.json("schedule", "create", "--to", "@bob", "--in", "8s", "from clone a")["schedule"]
    exchange(a, b)
    (seen,) = bob.json("schedule", "list", "--everyone")["schedules"]
    assert seen["schedule_id"] == s["schedule_id"] and seen["status"] == "pending"
    assert seen["origin"] == s["origin"] != ""
    wait_for(
        lambda: alice.json("schedule", "show", s["schedule_id"])["schedule"]["status"] == "done",
        what="the fire on clone a",
    )
    due = parse_iso(s["next_at"])
    while time.time() < due + 2.0:  # clone b had it pending past its time too (not an assertion)
        time.sleep(0.2)
    exchange(a, b)
    assert [m["body"]["content"] for m in scheduled(bob)] == ["from clone a"]
    assert bob.json("schedule", "show", s["schedule_id"])["schedule"]["fires"] == 1


def test_at_takes_iso_times_and_times_of_day():
    from datetime import datetime

    from thrum_engine.errors import InvalidInput
    from thrum_engine.schedules.model import parse_at

    now = 1_800_000_000.0
    assert parse_at("2027-01-15T08:30:00Z", now) == now + 1800
    assert parse_at("2027-01-15 09:30:00+01:00", now) == now + 1800
    naive = datetime.fromtimestamp(now + 60).strftime("%Y-%m-%dT%H:%M:%S")
    assert parse_at(naive, now) == now + 60  # no zone: local time
    local = datetime.fromtimestamp(now)
    later = datetime.fromtimestamp(now + 3600).strftime("%H:%M")
    assert parse_at(later, now) == now + 3600 - local.second
    earlier = datetime.fromtimestamp(now - 3600).strftime("%H:%M")
    assert parse_at(earlier, now) - now == pytest.approx(23 * 3600, abs=3600)  # tomorrow (DST aside)
    with pytest.raises(InvalidInput):
        parse_at("25:00", now)


def test_a_self_reminder_fires_into_its_authors_inbox(pair):
    _repo, alice, _bob = pair
    alice.ok("schedule", "create", "--to", "@me", "--in", "1s", "stretch")
    (m,) = wait_for(
        lambda: [x for x in alice.json("inbox", "--all")["messages"] if x["body"]["content"] == "stretch"],
        what="the self-reminder",
    )
    assert m["author"] == "alice" and m["meta"]["scheduled"]


def test_a_self_reminder_is_returned_by_wait_and_shown_by_the_stop_hook_a_note_to_yourself_is_not(pair):
    """A reminder is for reaching you at its time: `wait` (live, and looking back) and the hooks
    surface it as they surface mail from anyone else; a plain note to yourself stays in the inbox."""
    _repo, alice, _bob = pair
    alice.ok("send", "remember the migration", "--to", "@me")
    alice.ok("schedule", "create", "--to", "@me", "--in", "2s", "stretch")
    got = alice.json("wait", "--timeout", "30s")  # started before the fire: the live path
    (m,) = got["messages"]
    assert m["body"]["content"] == "stretch" and m["meta"]["scheduled"]
    s = alice.json("schedule", "create", "--to", "@me", "--in", "1s", "drink water")["schedule"]
    wait_for(
        lambda: alice.json("schedule", "show", s["schedule_id"])["schedule"]["status"] == "done",
        what="the second fire",
    )
    answer = hook(alice, "stop")  # after the fire: the hook looks back
    assert answer is not None and "drink water" in answer["reason"]
    assert "remember the migration" not in answer["reason"]
    assert hook(alice, "stop") is None  # shown once: the next stop is not blocked again
    late = alice.json("schedule", "create", "--to", "@me", "--in", "1s", "stand up")["schedule"]
    wait_for(
        lambda: alice.json("schedule", "show", late["schedule_id"])["schedule"]["status"] == "done",
        what="the third fire",
    )
    back = alice.json("wait", "--timeout", "5s", "--after", "-60s")["messages"]  # looking back
    assert [x["body"]["content"] for x in back] == ["stretch", "drink water", "stand up"]  # unread, mine


def test_list_counts_the_pending_schedules_it_lists(pair):
    _repo, alice, bob = pair
    for i in range(3):
        bob.ok("schedule", "create", "--to", "@alice", "--in", "1h", f"b{i}")
    alice.ok("schedule", "create", "--to", "@bob", "--in", "1h", "a0")
    mine = alice.json("schedule", "list")
    assert mine["pending"] == 1 == len(mine["schedules"]), mine
    assert bob.json("schedule", "list")["pending"] == 3


def test_at_without_a_zone_is_the_callers_local_time_not_the_engines(pair):
    """Walk (session 18): `TZ=America/New_York thrum schedule create --at 2026-12-08T10:00` gave
    10:00Z, the time read in the engine's zone (the daemon started from another shell)."""
    _repo, alice, _bob = pair
    alice.ok("whoami")  # the engine runs in the environment's zone (UTC here)
    s = alice.json("schedule", "create", "--to", "@bob", "--at", "2030-06-01T10:00", "x", TZ="EST5")
    assert parse_iso(s["schedule"]["next_at"]) == parse_iso("2030-06-01T15:00:00Z")
    s = alice.json("schedule", "create", "--to", "@bob", "--at", "2030-06-01T10:00+01:00", "y", TZ="EST5")
    assert parse_iso(s["schedule"]["next_at"]) == parse_iso("2030-06-01T09:00:00Z")  # a zone is kept

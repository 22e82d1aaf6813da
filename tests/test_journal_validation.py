"""A bad journal line never stops the engine (F3): every line read back is checked against its event
model; one that fails is set aside (quarantine file + a record of shard, offset and reason), counted by
`doctor`, and the rest of the shard is applied, at start-up and in `doctor rebuild` alike. Real files,
an in-process engine on a real repo, and the real CLI for the reported case."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from conftest import shard_file, shard_stem
from thrum_engine.doctor import projection_digest
from thrum_engine.engine.assemble import build
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.core import Engine
from thrum_engine.engine.writer import encode
from thrum_engine.layout import Layout
from thrum_engine.settings import ThrumSettings

TS = "2026-12-01T18:40:00.000000Z"


def evt(n: int) -> str:
    return f"evt_01M8SZ{n:020d}"


def msg(n: int) -> str:
    return f"msg_01M8SE{n:020d}"


def register(n: int, name: str) -> dict:
    return {
        "v": 1,
        "id": evt(n),
        "type": "agent.register",
        "author": name,
        "ts": TS,
        "data": {"name": name, "role": "dev", "worktree": "", "registered_at": "2026-01-01T00:00:00.000000Z"},
    }


def message(n: int, body: str, author: str = "alice", to: str = "bob", **data) -> dict:
    return {
        "v": 1,
        "id": evt(n),
        "type": "message.create",
        "author": author,
        "ts": TS,
        "data": {"message_id": msg(n), "content": body, "format": "markdown", "recipients": [to], **data},
    }


def line(ev: dict) -> bytes:
    return encode(ev)


def repo_at(tmp_path: Path) -> Layout:
    subprocess.run(["git", "init", "-q", str(tmp_path / "r")], check=True)
    layout = Layout(str(tmp_path / "r"))
    Path(layout.journal_dir).mkdir(parents=True)
    return layout


def write_shard(layout: Layout, shard: str, lines: list[bytes]) -> None:
    with open(Path(layout.journal_dir) / f"{shard}.jsonl", "ab") as fh:
        fh.write(b"".join(lines))


@pytest.fixture
def layout(tmp_path, monkeypatch):
    monkeypatch.setenv("THRUM_TMUX__SOCKET_NAME", "thrum-test-validation-unused")
    return repo_at(tmp_path)


async def start(layout: Layout) -> Engine:
    engine = build(layout, ThrumSettings())
    await engine.start()
    return engine


async def contents(engine: Engine) -> list[str]:
    return [r["content"] for r in await engine.store.all("SELECT content FROM messages ORDER BY id")]


async def doctor(engine: Engine) -> dict:
    return await engine.call("doctor.check", {}, Caller.trusted())


async def rebuild(engine: Engine) -> dict:
    return await engine.call("doctor.rebuild", {}, Caller.trusted())


async def base(layout: Layout, *, projected: bool = True) -> None:
    """Two agents in the journal; `projected`: and a projection of them, so the lines written next are
    read by start-up catch-up (without one, start builds the projection by the rebuild path)."""
    write_shard(layout, "alice", [line(register(1, "alice"))])
    write_shard(layout, "bob", [line(register(2, "bob"))])
    if projected:
        await (await start(layout)).stop()


# One of each way a parseable line can be wrong. Each replaces the middle line of alice's shard.
POISON: dict[str, bytes] = {
    # the reported case: a message.create without its content
    "missing content": json.dumps(
        {
            "author": "alice",
            "data": {"message_id": msg(11)},
            "id": evt(11),
            "ts": TS,
            "type": "message.create",
            "v": 1,
        }
    ).encode()
    + b"\n",
    "data is a string": line(
        {"v": 1, "id": evt(11), "type": "agent.update", "author": "alice", "ts": TS, "data": "oops"}
    ),
    "content is a number": line(message(11, "x") | {"data": {"message_id": msg(11), "content": 5}}),
    "recipients is a string": line(message(11, "x", recipients="bob")),
    "broadcast is a string": line(message(11, "x", broadcast="yes")),
    "null format": line(message(11, "x", format=None)),
    "scopes are strings": line(message(11, "x", scopes=["module:auth"])),
    "thread root without thread": line(message(11, "x", thread_root=msg(1))),
    "status too big for sqlite": line(
        {
            "v": 1,
            "id": evt(11),
            "type": "agent.update",
            "author": "alice",
            "ts": TS,
            "data": {"name": "alice", "fields": {"status": 10**30}},
        }
    ),
    "registered_at null": line(
        register(11, "carol") | {"data": {"name": "carol", "role": "x", "registered_at": None}}
    ),
    "read ids not a list": line(
        {
            "v": 1,
            "id": evt(11),
            "type": "message.read",
            "author": "bob",
            "ts": TS,
            "data": {"message_ids": msg(10)},
        }
    ),
    "version is a string": line(message(11, "x") | {"v": "1"}),
    "no author": json.dumps({k: v for k, v in message(11, "x").items() if k != "author"}).encode() + b"\n",
    "id not an event id": line(message(11, "x") | {"id": "evt_short"}),
    "deep nesting": (
        b'{"author":"alice","data":{"content":"x","message_id":"'
        + msg(11).encode()
        + b'","structured":'
        + b"[" * 200_000
        + b"]" * 200_000
        + b'},"id":"'
        + evt(11).encode()
        + b'","ts":"'
        + TS.encode()
        + b'","type":"message.create","v":1}\n'
    ),
    # accepted by sends before session 22 (R1): every later listing of its reader failed to parse
    "structured too deep to list": line(message(11, "x", structured=json.loads("[" * 198 + "]" * 198))),
    # the agent-name rules hold for synced lines too (session 22, R3): such agents got broadcasts
    # and could never be deleted
    "agent name a path": line(register(11, "../../evil")),
    "agent named all": line(register(11, "all")),
    "agent name an option": line(register(11, "--force")),
    "agent named system": line(register(11, "system")),
    "huge body": line(message(11, "y" * (17 * 1024 * 1024))),
    "not an object": b"[1, 2, 3]\n",
}


@pytest.mark.parametrize("projected", [True, False], ids=["catch-up", "fresh"])
@pytest.mark.parametrize("case", list(POISON))
async def test_a_bad_line_is_set_aside_and_the_rest_of_the_shard_applied(layout, case, projected):
    await base(layout, projected=projected)
    bad = POISON[case]
    write_shard(layout, "alice", [line(message(10, "before")), bad, line(message(12, "after"))])
    offset = (
        (Path(layout.journal_dir) / "alice.jsonl").stat().st_size - len(bad) - len(line(message(12, "after")))
    )
    engine = await start(layout)
    try:
        assert await contents(engine) == ["before", "after"]
        records = engine.journal.rejected_records()
        assert [(shard_stem(r["shard"]), r["offset"], r["length"]) for r in records] == [
            ("alice", offset, len(bad))
        ]
        assert Path(records[0]["saved_to"]).read_bytes() == bad
        d = await doctor(engine)
        # set aside by the start: reported, and no problem (nothing a command could change)
        assert d["ok"] is True, d["problems"]
        assert d["journal"]["invalid_lines"] + d["journal"]["corrupt_lines"] == 1
        assert len(d["notes"]) == 1 and "set aside" in d["notes"][0]
        assert d["projection"]["applied_events"] == d["journal"]["events"] == 4
        before = await projection_digest(engine.store)
        r = await rebuild(engine)
        assert r["identical"] and await projection_digest(engine.store) == before
        assert r["invalid_lines"] + r["corrupt_lines"] == 1
        assert len(engine.journal.rejected_records()) == 1  # recorded once, whoever finds it again
        await engine.call("message.send", {"body": "still serving", "to": ["@bob"]}, Caller.trusted("alice"))
    finally:
        await engine.stop()


async def test_unknown_types_and_a_newer_writers_fields_are_tolerated_and_counted(layout):
    await base(layout)
    newer = message(10, "from the future", extra_field={"a": 1}) | {"v": 99, "signature": "abc"}
    write_shard(
        layout,
        "alice",
        [
            line(newer),
            line(
                {
                    "v": 99,
                    "id": evt(11),
                    "type": "message.react",
                    "author": "alice",
                    "ts": TS,
                    "data": {"message_id": msg(10), "emoji": "+1"},
                }
            ),
            line(message(12, "plain")),
        ],
    )
    engine = await start(layout)
    try:
        assert await contents(engine) == ["from the future", "plain"]
        d = await doctor(engine)
        assert d["ok"] is True, d["problems"]
        assert (d["journal"]["unknown_types"], d["journal"]["newer_writer"]) == (1, 2)
        assert d["journal"]["unknown_fields"] == 1
        assert engine.journal.rejected_records() == []
    finally:
        await engine.stop()


async def test_duplicate_event_ids_first_line_wins_at_start_and_in_rebuild(layout):
    await base(layout)
    write_shard(layout, "alice", [line(message(10, "first"))])
    forged = message(10, "second copy") | {
        "data": {"message_id": msg(99), "content": "forged", "recipients": ["bob"]}
    }
    write_shard(layout, "bob", [line(forged | {"author": "bob"})])
    engine = await start(layout)
    try:
        assert await contents(engine) == ["first"]
        assert [shard_stem(r["shard"]) for r in engine.journal.rejected_records()] == ["bob"]
        assert "duplicate" in engine.journal.rejected_records()[0]["reason"]
        d = await doctor(engine)
        assert d["journal"]["invalid_lines"] == 1
        r = await rebuild(engine)
        assert r["identical"] and await contents(engine) == ["first"]
    finally:
        await engine.stop()


def _mutate(rng: random.Random, ev: dict) -> bytes:
    """One malformed variant of a valid event: a key dropped, a value of the wrong type, the line cut
    short, random bytes, or fields a newer writer might add (which must still be applied)."""
    ev = json.loads(json.dumps(ev))
    what = rng.randrange(7)
    target = ev["data"] if rng.random() < 0.7 else ev
    key = rng.choice(sorted(target))
    if what == 0:
        del target[key]
    elif what == 1:
        target[key] = rng.choice([None, 7, 2.5, True, [], {}, "s", [1], {"x": None}, 10**40])
    elif what == 2:
        raw = line(ev)
        return raw[: rng.randrange(1, len(raw) - 1)].replace(b"\n", b"") + b"\n"
    elif what == 3:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))).replace(b"\n", b"") + b"\n"
    elif what == 4:
        ev["data"] = rng.choice([None, "oops", 3, [ev["data"]]])
    elif what == 5:
        ev["type"] = rng.choice(["message.create", "agent.update", "session.end", "message.notified", 4])
    else:
        ev["v"] = rng.choice([2, 99])
        ev["data"]["future_" + key] = [key]
    return line(ev)


@pytest.mark.parametrize("projected", [True, False], ids=["catch-up", "fresh"])
@pytest.mark.parametrize("seed", range(4))
async def test_random_malformed_lines_through_start_and_rebuild(layout, seed, projected):
    rng = random.Random(seed)
    await base(layout, projected=projected)
    valid_ids = {evt(1), evt(2)}
    shards: dict[str, list[bytes]] = {"alice": [], "bob": []}
    for n in range(10, 130):
        author = rng.choice(["alice", "bob"])
        kind = rng.random()
        if kind < 0.6:
            ev = message(
                n,
                f"m{n} " + rng.choice(["plain", 'esc"aped\n', "é"]),
                author=author,
                to="bob" if author == "alice" else "alice",
            )
        elif kind < 0.8:
            ev = {
                "v": 1,
                "id": evt(n),
                "type": "message.read",
                "author": author,
                "ts": TS,
                "data": {"message_ids": [msg(rng.randrange(10, n + 1))]},
            }
        else:
            ev = {
                "v": 1,
                "id": evt(n),
                "type": "agent.update",
                "author": author,
                "ts": TS,
                "data": {
                    "name": author,
                    "fields": {"status": rng.choice(["idle", "working"]), "status_at": TS},
                },
            }
        if rng.random() < 0.3:
            shards[author].append(_mutate(rng, ev))
        else:
            shards[author].append(line(ev))
            valid_ids.add(ev["id"])
    for shard, lines in shards.items():
        write_shard(layout, shard, lines)
    total = sum(len(v) for v in shards.values()) + 2
    engine = await start(layout)
    try:
        applied = {r["id"] for r in await engine.store.all("SELECT id FROM applied_events")}
        assert valid_ids <= applied  # every untouched line was applied
        rejected = engine.journal.rejected_records()
        assert len(applied) + len(rejected) == total  # and every line is either applied or set aside
        at_start = await projection_digest(engine.store)
        d = await doctor(engine)
        assert d["projection"]["applied_events"] == d["journal"]["events"] == len(applied)
        assert d["journal"]["invalid_lines"] + d["journal"]["corrupt_lines"] == len(rejected)
        r = await rebuild(engine)
        assert r["digest_after"] == at_start and r["events"] == len(applied)
        assert engine.journal.rejected_records() == rejected
    finally:
        await engine.stop()


def test_the_reported_poison_line_no_longer_stops_the_engine_or_doctor(pair):
    """F3 as reported, through the CLI: a start after the line was appended, then `doctor`."""
    repo, alice, bob = pair
    alice.ok("send", "before", "--to", "@bob")
    repo.stop()
    shard = shard_file(repo.path, "alice")
    with open(shard, "ab") as fh:
        fh.write(POISON["missing content"])
    alice.ok("send", "after", "--to", "@bob")
    assert [m["body"]["content"] for m in bob.json("inbox")["messages"]] == ["after", "before"]
    r = alice.run("doctor", "--json")
    assert r.code == 0 and r.json["journal"]["invalid_lines"] == 1
    assert [shard_stem(rec["shard"]) for rec in r.json["rejected"]] == ["alice"]
    assert "content" in r.json["rejected"][0]["reason"]
    text = alice.run("doctor")
    assert text.code == 0 and "set aside" in text.out and "journal and projection agree" in text.out


def test_doctor_says_what_fixes_a_bad_line_and_stops_asking_once_it_is_set_aside(pair):
    """A garbage line in a shard: while no engine has set it aside, `doctor` says so and that a rebuild
    does (it does); once it is set aside, `doctor` agrees and says it stays skipped, with the index of
    set-aside lines at a path that exists. Never advice that changes nothing."""
    repo, alice, bob = pair
    alice.ok("send", "before", "--to", "@bob")
    shard = shard_file(repo.path, "alice")
    with open(shard, "ab") as fh:  # under the running engine: read by nothing yet
        fh.write(b"\x00garbage, not an event\n")
    r = alice.run("doctor")
    assert r.code == 1
    assert "not set aside yet" in r.out and "`thrum doctor rebuild` sets them aside" in r.out, r.out
    repo.ok("doctor", "rebuild")
    for _ in range(2):  # and it stays so: every later doctor agrees
        r = alice.run("doctor", "--json")
        assert r.code == 0 and r.json["ok"], r.out
        assert r.json["journal"]["corrupt_lines"] == 1
        (note,) = r.json["notes"]
        index = note.split("listed in ")[1].split(")")[0]
        assert Path(index).is_file() and "nothing needs to run" in note
        text = alice.run("doctor").out
        assert "doctor rebuild" not in text and "journal and projection agree" in text
    alice.ok("send", "after", "--to", "@bob")
    assert [m["body"]["content"] for m in bob.json("inbox")["messages"]] == ["after", "before"]


async def test_a_symlinked_shard_is_never_read(layout, tmp_path):
    await base(layout)
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(line(message(10, "from outside the journal")))
    (Path(layout.journal_dir) / "mallory.jsonl").symlink_to(outside)
    engine = await start(layout)
    try:
        assert await contents(engine) == []
        assert not [s for s in engine.journal.shards() if shard_stem(s) == "mallory"]
        assert (await doctor(engine))["ok"] is True
    finally:
        await engine.stop()


@pytest.mark.parametrize("projected", [True, False], ids=["catch-up", "fresh"])
async def test_an_older_nudgers_notified_lines_without_via_apply_as_nudges(layout, projected):
    """Journals in the wild hold `message.notified` lines the nudger wrote without `via`: they apply
    (as a nudge), at start-up, in a rebuild and through `doctor`, and nothing is set aside."""
    await base(layout, projected=projected)
    notified = {
        "v": 1,
        "id": evt(11),
        "type": "message.notified",
        "author": "system",
        "ts": TS,
        "data": {"recipient": "bob", "message_ids": [msg(10)], "at": TS},
    }
    write_shard(layout, "alice", [line(message(10, "nudged")), line(notified)])
    engine = await start(layout)
    try:
        rows = await engine.store.all("SELECT notified_at, notified_via FROM deliveries")
        assert [(r["notified_at"], r["notified_via"]) for r in rows] == [(TS, "nudge")]
        assert engine.journal.rejected_records() == []
        d = await doctor(engine)
        assert d["ok"], d["problems"]
        assert d["journal"]["invalid_lines"] == 0
        r = await rebuild(engine)
        assert r["identical"] and r["invalid_lines"] == 0
        got = await engine.call("message.get", {"message_id": msg(10)}, Caller.trusted("alice"))
        assert [(d["state"], d.get("via")) for d in got["message"]["deliveries"]] == [("notified", "nudge")]
    finally:
        await engine.stop()


# -- every event the engine writes passes the check it is read back with ---------------------------------


async def _git(cwd: Path, *args: str) -> None:
    import asyncio

    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    await asyncio.to_thread(subprocess.run, ["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


async def test_every_event_type_the_engine_writes_passes_its_check(tmp_path, monkeypatch):
    """Each event type in the schema, produced by the engine itself (RPC methods, its services and the
    delivery paths), and every line of the journal it wrote then read back as a start, a sync or a
    rebuild reads it. A writer that leaves out a field its type requires (message.notified without
    `via` did) fails here; a new event type must be produced here too. The nudger's own write needs a
    tmux pane: test_nudges_queue checks `doctor` after a real nudge."""
    import asyncio

    from conftest import start_inproc_engine
    from test_rebuild_equivalence import _every_kind_of_event
    from thrum_engine.asks import service as ask_service
    from thrum_engine.durations import parse_iso
    from thrum_engine.journal import Journal
    from thrum_engine.model import EVENT_DATA
    from thrum_engine.store.rebuild import sorted_journal_lines
    from thrum_engine.store.validate import EventCheck

    e = await start_inproc_engine(tmp_path, monkeypatch, "everykind")
    try:
        await _every_kind_of_event(e)
        who = Caller.trusted
        # a waiting recipient takes a message itself: message.notified via `wait`
        waiting = asyncio.ensure_future(e.call("message.wait", {"timeout": 10}, who("bob")))
        await asyncio.sleep(0.2)
        await e.call("message.send", {"body": "for the waiter", "to": ["@bob"]}, who("alice"))
        assert (await waiting)["status"] == "received"
        # an unanswered ask: reminded, then overdue
        e.settings.asks.remind_after_seconds = 60
        ask = await e.call(
            "message.send", {"body": "ready?", "to": ["@carol"], "ask": True, "due": 120}, who("alice")
        )
        got = await e.call("message.get", {"message_id": ask["message_id"]}, who(None))
        t0 = parse_iso(got["message"]["created_at"])
        svc = ask_service.attach(e)
        assert (await svc.tick(t0 + 61))["reminded"] >= 1
        assert (await svc.tick(t0 + 121))["overdue"] >= 1
        # a schedule that is due fires
        sched = e.schedules
        await e.call("schedule.create", {"to": ["@bob"], "body": "soon", "in_seconds": 60}, who("alice"))
        real = sched.clock
        sched.clock = lambda: real() + 120
        sched.wake()
        for _ in range(200):
            if await e.store.scalar("SELECT COUNT(*) FROM schedules WHERE status != 'pending'"):
                break
            await asyncio.sleep(0.02)
        # a review: requested for an agent's work in its worktree, approved, merged
        repo = Path(e.layout.repo)
        (repo / "README.md").write_text("hello\n")
        await _git(repo, "add", "README.md")
        await _git(repo, "commit", "-q", "-m", "init")
        wt = tmp_path / "wt-erin"
        await _git(repo, "worktree", "add", "-q", "-b", "feature/erin", str(wt))
        (wt / "auth.py").write_text("x = 1\n")
        await _git(wt, "add", "auth.py")
        await _git(wt, "commit", "-q", "-m", "auth")
        await e.call("agent.register", {"name": "erin", "role": "worker"}, Caller(worktree=str(wt)))
        erin = Caller(name="erin", worktree=str(wt))
        await e.call("review.request", {"note": "done"}, erin)
        await e.call("review.submit", {"agent": "erin", "verdict": "approve"}, who("ada"))
        await e.call("review.merge", {"agent": "erin"}, who(None))
    finally:
        await e.stop()

    journal = Journal(e.layout.journal_dir, e.layout.quarantine_dir)
    try:
        lines = sorted_journal_lines(journal).lines
    finally:
        journal.close()
    check = EventCheck()
    problems = [(raw[:200], reason) for raw in lines if (reason := check(json.loads(raw))) is not None]
    assert problems == []
    types = {json.loads(raw)["type"] for raw in lines}
    assert types >= set(EVENT_DATA), sorted(set(EVENT_DATA) - types)
    vias = {json.loads(raw)["data"].get("via") for raw in lines if b'"message.notified"' in raw}
    assert "wait" in vias


async def test_an_agent_an_older_thrum_let_in_past_the_name_rules_can_be_deleted(layout):
    """Session 22, R3: such a name was in the projection for good, since `agent delete` refused
    it by today's rules (and its identity file is no path to remove)."""
    await base(layout)
    engine = await start(layout)
    try:
        for name in ("--force", "../../evil"):
            data = {"name": name, "role": "dev", "worktree": layout.repo}
            await engine.commit(
                engine.event("agent.register", "system", data)
            )  # as an older projection holds it
            assert name in engine.agents
            r = await engine.call("agent.delete", {"name": name, "force": True}, Caller.trusted())
            assert r["deleted"] == name and name not in engine.agents
    finally:
        await engine.stop()


async def test_what_an_older_thrum_accepted_and_readers_can_take_is_applied(layout):
    """A review of session 22: an agent named `me` (reserved only since 2026-12-07) and a message
    whose structured part nests 180 levels (listable before) were set aside whole by the new checks."""
    await base(layout)
    deep = json.loads("[" * 180 + "]" * 180)
    write_shard(
        layout, "alice", [line(register(11, "me")), line(message(12, "deep but readable", structured=deep))]
    )
    engine = await start(layout)
    try:
        assert "me" in engine.agents
        assert await contents(engine) == ["deep but readable"]
        assert engine.journal.rejected_records() == []
    finally:
        await engine.stop()

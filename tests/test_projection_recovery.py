"""The projection is disposable and the journal is the truth: a broken `thrum.db` is moved aside and
rebuilt at start (F2), `doctor rebuild` works on any projection state, a killed rebuild's scratch file is
removed at start (F18), a failed write leaves no trace in the journal (F5), shard fds are bounded (F9),
and the store's files are private whatever the umask (F6). Real daemons, real files, a real tmpfs."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import (
    assert_error,
    base_env,
    daemon_pids,
    git,
    is_alive,
    kill_tmux,
    run_python,
    run_thrum,
    send_many,
    shard_file,
    start_inproc_engine,
    wait_for,
)
from thrum_engine import journal as journal_module
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.core import Engine
from thrum_engine.errors import ThrumError
from thrum_engine.layout import Layout
from thrum_engine.rpc.client import Client
from thrum_engine.store import Store


def db(repo) -> Path:
    return repo.var / "thrum.db"


def bodies(agent) -> list[str]:
    return sorted(m["body"]["content"] for m in agent.json("inbox", "--page-size", "1000")["messages"])


def engine_info(repo) -> dict:
    client = Client(Layout(str(repo.path)).socket_path, timeout=30).connect()
    try:
        return client.call("engine.info", {})
    finally:
        client.close()


def overwrite_pages(path: Path, first: int, count: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(first * 4096)
        fh.write(os.urandom(count * 4096))


def _bad_header(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.write(b"GARBAGEGARBAGEGARBAGE")


def _bad_pages(path: Path) -> None:
    pages = path.stat().st_size // 4096
    overwrite_pages(path, 1, pages - 1)


def _truncated(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _sql(statement: str):
    def corrupt(path: Path) -> None:
        con = sqlite3.connect(path)
        try:
            con.execute(statement)
            con.commit()
        finally:
            con.close()

    return corrupt


CORRUPTIONS = {
    "bad header": _bad_header,
    "bad pages": _bad_pages,
    "truncated": _truncated,
    "missing table": _sql("DROP TABLE deliveries"),
    "wrong columns": _sql("ALTER TABLE messages DROP COLUMN refs"),
    "no schema version": _sql("DELETE FROM meta WHERE key='schema_version'"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_a_broken_projection_is_moved_aside_and_rebuilt_at_start(pair, case):
    repo, alice, bob = pair
    send_many(alice, [f"m{i} " + "x" * 200 for i in range(40)], "@bob")
    before = bodies(bob)
    repo.stop()
    CORRUPTIONS[case](db(repo))
    alice.ok("send", "after", "--to", "@bob")  # auto-starts the engine, which repairs the projection
    assert bodies(bob) == sorted([*before, "after"])
    assert len(daemon_pids(repo)) == 1  # no hung engine left by a failed start
    d = alice.run("doctor", "--json").json
    assert d["ok"] is True, d["problems"]
    rec = d["projection_recovered"]
    assert rec["reason"] and rec["events"] > 40
    assert Path(rec["moved_to"]).exists() and Path(rec["moved_to"]).name.startswith("thrum.db.corrupt-")
    if case == "bad header":  # nothing to carry over from: said, not fatal
        assert rec["local_tables"].startswith("machine-local tables not copied"), rec
    assert "moved to" in alice.run("doctor").out
    assert engine_info(repo)["projection_recovered"] == rec  # what the console's header reads
    log = (repo.var / "daemon.log").read_text()
    assert "rebuilding it from the journal" in log
    # reported across a restart too, until the next `doctor rebuild`
    repo.stop()
    assert alice.json("doctor")["projection_recovered"] == rec
    alice.ok("doctor", "rebuild")
    assert alice.json("doctor")["projection_recovered"] is None


def test_machine_local_tables_survive_a_recovery_when_the_old_file_is_readable(pair):
    repo, alice, _bob = pair
    alice.ok("send", "hi", "--to", "@bob")
    repo.stop()
    _sql("INSERT INTO presence(agent, last_seen) VALUES ('ghost', '2026-01-01T00:00:00.000000Z')")(db(repo))
    _sql("DROP TABLE deliveries")(db(repo))
    alice.ok("send", "again", "--to", "@bob")
    assert alice.json("doctor")["projection_recovered"]["local_tables"] == "copied"
    con = sqlite3.connect(db(repo))
    try:
        assert con.execute("SELECT agent FROM presence WHERE agent='ghost'").fetchone() == ("ghost",)
    finally:
        con.close()


def test_a_rebuild_never_drops_what_a_lost_journal_no_longer_holds(pair):
    """Walk: the journal worktree deleted by hand; doctor advised `doctor rebuild`, which projected
    the empty journal and left an empty store (and then said all was well)."""
    repo, alice, bob = pair
    alice.ok("send", "keep me", "--to", "@bob")
    repo.stop()
    journal = Path(Layout(str(repo.path)).journal_dir)
    for shard in journal.glob("*.jsonl"):
        shard.unlink()
    d = alice.run("doctor", "--json")
    assert d.code == 1 and not d.json["rebuild_safe"], d.out
    assert any("a rebuild would drop them" in p for p in d.json["problems"]), d.json["problems"]
    assert "Do not rebuild yet" in alice.run("doctor").out
    assert_error(alice.run("doctor", "rebuild"), "nothing rebuilt", "--force")
    assert [m["body"]["content"] for m in bob.json("inbox")["messages"]] == ["keep me"]
    assert alice.ok("doctor", "rebuild", "--force").out.startswith("✓ Rebuilt the projection from ")


def test_a_removed_journal_worktree_is_made_again_from_its_branch(pair):
    """Sync walk 2: with `.git/thrum-sync` removed the engine made an empty plain folder in its place,
    sync said "run `thrum init`", and init repaired nothing. The engine (and init) now check the
    worktree out again from a-sync, which holds every line a cycle committed."""
    repo, alice, bob = pair
    alice.ok("send", "committed", "--to", "@bob")
    repo.ok("sync", "force", "--wait")  # local-only: the cycle commits to a-sync
    alice.ok("send", "never committed", "--to", "@bob")
    repo.stop()
    sync_root = repo.path / ".git" / "thrum-sync"
    shutil.rmtree(sync_root)
    assert repo.json("sync", "status")["mode"] == "local-only"  # the engine's start made it again
    assert (sync_root / "a-sync" / ".git").is_file()
    assert sorted(m["body"]["content"] for m in bob.json("inbox", "--all")["messages"]) == [
        "committed",
        "never committed",
    ]
    d = repo.run("doctor", "--json")  # the uncommitted line is in the projection only: said so
    assert d.code == 1 and not d.json["rebuild_safe"], d.out
    repo.stop()
    shutil.rmtree(sync_root)
    (sync_root / "a-sync" / "journal").mkdir(parents=True)  # what an older engine left there
    repo.ok("init", "--non-interactive", "--no-daemon")
    assert (sync_root / "a-sync" / ".git").is_file()
    repo.stop()
    shutil.rmtree(sync_root)
    (sync_root / "a-sync").mkdir(parents=True)
    (sync_root / "a-sync" / "stray.txt").write_text("not ours to delete\n")
    assert_error(repo.run("init", "--non-interactive", "--no-daemon"), "move it aside")
    assert (sync_root / "a-sync" / "stray.txt").exists()


async def test_a_failed_open_leaves_no_worker_thread_behind(tmp_path):
    """F2's hung processes: aiosqlite's worker thread is not a daemon thread, so one left running by a
    failed connect keeps the interpreter alive after the engine gave up. The write connection's own
    thread is a daemon, and is ended all the same."""
    path = tmp_path / "thrum.db"
    path.write_bytes(b"GARBAGEGARBAGEGARBAGE" * 100)
    before = set(threading.enumerate())

    def left() -> list[threading.Thread]:  # the loop's own executor threads are joined when it closes
        return [
            t
            for t in threading.enumerate()
            if t not in before
            and (not t.daemon or t.name == "thrum-sqlite-writer")
            and not t.name.startswith("asyncio_")
        ]

    with pytest.raises(sqlite3.DatabaseError):
        await Store(str(path)).open()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and left():
        await asyncio.sleep(0.01)
    assert left() == []


def test_a_failed_start_leaves_no_engine_running(pair):
    repo, _alice, _bob = pair
    repo.stop()
    _sql("UPDATE meta SET value='99' WHERE key='schema_version'")(db(repo))  # a newer Thrum's: refused, kept
    r = repo.run("daemon", "start", timeout=60)
    assert r.code == 1 and r.err.startswith("Error: "), r.err
    assert "newer than this Thrum" in (repo.var / "daemon.log").read_text()
    # the refusal's own words, not "engine crashed" (walk B, 11), on every path that starts an engine
    assert "newer than this Thrum" in r.err and "crashed" not in r.err and r.err.count("\n") == 1, r.err
    r = repo.run("doctor", timeout=60)
    assert r.code == 1 and "newer than this Thrum" in r.err, r.err
    wait_for(lambda: not daemon_pids(repo), timeout=10, what="no engine process left")
    assert db(repo).exists()


def test_a_killed_rebuilds_scratch_files_are_removed_at_start(pair):
    repo, alice, bob = pair
    alice.ok("send", "one", "--to", "@bob")
    repo.stop()
    for suffix in ("", "-wal", "-shm"):
        (repo.var / f"thrum.db.rebuild{suffix}").write_bytes(b"x" * 4096)
    alice.ok("send", "two", "--to", "@bob")
    assert sorted(p.name for p in repo.var.glob("thrum.db.rebuild*")) == []
    assert bodies(bob) == ["one", "two"]


# -- doctor on a projection that breaks while the engine runs ----------------------------------------------------


@pytest.fixture
async def engine(tmp_path, monkeypatch):
    e = await start_inproc_engine(tmp_path, monkeypatch, "recovery")
    for n in ("alice", "bob"):
        await e.call("agent.register", {"name": n, "role": "w"}, Caller.trusted())
    yield e
    await e.stop()


async def send(engine: Engine, body: str) -> dict:
    return await engine.call("message.send", {"body": body, "to": ["@bob"]}, Caller.trusted("alice"))


async def stored(engine: Engine) -> list[str]:
    return [r["content"] for r in await engine.store.all("SELECT content FROM messages ORDER BY id")]


async def test_doctor_and_rebuild_work_on_a_corrupt_projection(engine):
    for i in range(300):
        await send(engine, f"m{i} " + "y" * 300)
    await engine.store.in_writer_thread(lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
    path = Path(engine.layout.db_path)
    await engine.store.close()
    pages = path.stat().st_size // 4096
    overwrite_pages(path, pages // 2, pages - pages // 2)  # the schema still reads; the data does not
    await engine.store.open()  # as an engine that started before the damage would see it
    d = await engine.call("doctor.check", {}, Caller.trusted())
    assert d["ok"] is False and any("doctor rebuild" in p for p in d["problems"]), d["problems"]
    r = await engine.call("doctor.rebuild", {}, Caller.trusted())
    assert r["events"] == 302 and r["digest_after"] != r["digest_before"]
    assert len(await stored(engine)) == 300
    d = await engine.call("doctor.check", {}, Caller.trusted())
    assert d["ok"] is True, d["problems"]


# -- F5: a failed write leaves no durable trace ------------------------------------------------------------------


async def test_a_send_whose_projection_commit_fails_leaves_nothing_behind(engine):
    """SQLITE_FULL for real (the database may not grow past its current pages): the send fails with the
    real cause, its line is cut back out of the journal, and neither a restart nor a rebuild brings it back."""
    await send(engine, "kept")
    shard = Path(engine.journal.path(engine.journal.shard_for("alice")))
    size = shard.stat().st_size
    pages = await engine.store.scalar("PRAGMA page_count")
    await engine.store.in_writer_thread(lambda c: c.execute(f"PRAGMA max_page_count={pages}"))
    failed = []
    for i in range(50):
        try:
            await send(engine, f"ghost {i} " + "z" * 3000)
        except ThrumError as exc:
            failed.append(str(exc))
    assert failed, "the database never filled up"
    assert all("full" in f and "cannot rollback" not in f for f in failed), failed[:3]
    await engine.store.in_writer_thread(lambda c: c.execute("PRAGMA max_page_count=1073741823"))
    await send(engine, "after")
    ok = await stored(engine)
    assert ok[0] == "kept" and ok[-1] == "after"
    assert shard.stat().st_size > size
    d = await engine.call("doctor.check", {}, Caller.trusted())
    assert d["ok"] is True, d["problems"]
    r = await engine.call("doctor.rebuild", {}, Caller.trusted())
    assert r["identical"] and await stored(engine) == ok


@pytest.fixture
def tmpfs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not root'})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def test_disk_full_on_a_real_tmpfs_leaves_no_ghost_message(tmpfs, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = base_env(home)
    env["THRUM_TMUX__SOCKET_NAME"] = f"thrum-test-full-{os.getpid()}"
    env["THRUM_TMUX__SHELL"] = "bash --norc --noprofile"
    repo = tmpfs / "r"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main", env=env)
    (repo / "README.md").write_text("x\n")
    git(repo, "add", "README.md", env=env)
    git(repo, "commit", "-q", "-m", "init", env=env)
    alice = {**env, "THRUM_NAME": "alice"}
    bob = {**env, "THRUM_NAME": "bob"}
    try:
        assert run_thrum(["quickstart", "--name", "alice", "--role", "coord"], repo, alice).code == 0
        assert run_thrum(["quickstart", "--name", "bob", "--role", "dev"], repo, bob).code == 0
        st = os.statvfs(tmpfs)
        filler = tmpfs / "filler"
        filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - 300 * 1024))
        acked, failed = [], []
        for i in range(400):
            body = f"F{i:05d} " + "b" * 2048
            r = run_thrum(["send", body, "--to", "@bob", "--json"], repo, alice)
            (acked if r.code == 0 else failed).append((body, r.err.strip()))
            if len(failed) >= 8:
                break
        assert failed, "the disk never filled up"
        assert not any("cannot rollback" in err for _b, err in failed), failed
        filler.unlink()
        for i in range(5):
            body = f"A{i:05d} after"
            assert run_thrum(["send", body, "--to", "@bob"], repo, alice).code == 0
            acked.append((body, ""))
        want = sorted(b for b, _ in acked)

        def inbox() -> list[str]:
            r = run_thrum(["inbox", "--page-size", "1000", "--json"], repo, bob)
            assert r.code == 0, r.err
            return sorted(m["body"]["content"] for m in r.json["messages"])

        assert inbox() == want
        assert run_thrum(["daemon", "stop"], repo, env).code == 0
        assert inbox() == want  # after a restart (catch-up) ...
        r = run_thrum(["doctor", "--json"], repo, env)
        assert r.json["ok"] is True, r.json["problems"]
        assert run_thrum(["doctor", "rebuild"], repo, env).code == 0
        assert inbox() == want  # ... and after a rebuild: no failed send resurfaces
    finally:
        run_thrum(["daemon", "stop"], repo, env, timeout=30)
        kill_tmux(env["THRUM_TMUX__SOCKET_NAME"])


# -- F9: more authors than the fd limit -------------------------------------------------------------------------

REGISTER_MANY = r"""
import sys
from thrum_engine.rpc.client import Client
sock, n = sys.argv[1], int(sys.argv[2])
c = Client(sock, timeout=60).connect()
for i in range(n):
    c.call("agent.register", {"name": f"a{i:04d}", "role": "dev", "caller": f"a{i:04d}"})
print("ok", n)
"""


AUTHORS = 300  # more than the engine's fd limit below: one fd per shard would run out (F9 had 1,000)


def open_files(pid: int) -> list[str]:
    """What `pid`'s fds point at; an fd closed while we look (the sync reads shards too) is skipped."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    return found


def test_more_authors_than_the_fd_limit_write_under_ulimit_256(pair):
    repo, alice, _bob = pair
    repo.stop()
    layout = Layout(str(repo.path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "thrum_engine.daemon", "--repo", str(repo.path)],
        env=repo.env,
        cwd=repo.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (256, 256))  # before it has even imported
        wait_for(
            lambda: os.path.exists(layout.socket_path) and repo.daemon_pid() == proc.pid,
            timeout=30,
            what="the engine",
        )
        r = run_python(repo, REGISTER_MANY, layout.socket_path, str(AUTHORS))
        assert r.returncode == 0 and r.stdout.strip() == f"ok {AUTHORS}", r.stderr[-2000:]
        shards = [t for t in open_files(proc.pid) if t.endswith(".jsonl")]
        assert len(shards) <= journal_module.MAX_OPEN_SHARDS
        team = alice.json("agent", "list")
        assert len(team["agents"]) == AUTHORS + 2
    finally:
        repo.stop()
        if is_alive(proc.pid):
            proc.kill()
        proc.wait(timeout=30)


# -- F6: private files whatever the umask -------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_store_files_are_private_whatever_the_umask(make_repo, umask):
    old = os.umask(umask)
    try:
        repo = make_repo()
        alice = repo.agent("alice", "dev")
        repo.agent("bob", "dev")
        alice.ok("send", "secret", "--to", "@bob")
        journal = Path(Layout(str(repo.path)).journal_dir)
        repo.stop()
        os.chmod(shard_file(repo.path, "alice"), 0o644)  # as an older Thrum left it
        with open(shard_file(repo.path, "bob"), "ab") as fh:
            fh.write(b'{"not": "an event"}\n{"torn')  # a rejected line and a torn tail: both quarantined
        alice.ok("send", "more", "--to", "@bob")
        wait_for(lambda: (repo.var / "thrum.db-wal").exists(), timeout=10, what="the WAL file")
        files = [
            *journal.glob("*.jsonl"),
            *(repo.var / "quarantine").iterdir(),
            *[repo.var / f"thrum.db{s}" for s in ("", "-wal", "-shm")],
        ]
        modes = {str(p): oct(p.stat().st_mode & 0o777) for p in files}
        assert len(list((repo.var / "quarantine").iterdir())) == 3  # .torn, .rejected, rejected.jsonl
        assert set(modes.values()) == {"0o600"}, modes
        for d in (journal, repo.var / "quarantine", repo.var):
            assert oct(d.stat().st_mode & 0o777) == "0o700", d
    finally:
        os.umask(old)


def test_a_store_from_before_every_event_was_projected_is_rebuilt_once_on_upgrade(pair):
    """An older Thrum recorded the events it could not project (a newer clone's asks, reviews,
    schedules) as applied and dropped them; upgraded, they stayed missing while doctor said all was
    well (walk B, 10). A store from before schema.PROJECTS_EVERY_EVENT_SINCE is rebuilt once."""
    from thrum_engine.store.schema import PROJECTS_EVERY_EVENT_SINCE

    repo, alice, bob = pair
    ask = alice.json("send", "which schema?", "--to", "@bob", "--ask")
    repo.stop()
    con = sqlite3.connect(db(repo))  # as a v10 Thrum left it: no asks or held tables, the ask dropped
    con.executescript(
        "DROP TABLE asks; DROP TABLE held;"
        f" UPDATE meta SET value = '{PROJECTS_EVERY_EVENT_SINCE - 1}' WHERE key = 'schema_version';"
    )
    con.close()
    asks = bob.json("asks", "--to-me")
    assert [a["message_id"] for a in asks["asks"]] == [ask["message_id"]], asks
    rec = alice.json("doctor")["projection_recovered"]
    assert f"schema v{PROJECTS_EVERY_EVENT_SINCE - 1} could not project" in rec["reason"], rec
    repo.stop()
    bob.json("asks", "--to-me")  # once: the rebuilt store is not marked again
    con = sqlite3.connect(db(repo))
    assert con.execute("SELECT value FROM meta WHERE key = 'rebuild_due'").fetchone() is None
    con.close()

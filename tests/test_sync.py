"""Git sync between clones: a bare remote in a temp dir, two clones, each with its own engine and
agents, real git throughout (and `git daemon` for an anonymously readable remote)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (
    Repo,
    background,
    contents,
    daemon_pids,
    enter,
    exchange,
    git,
    sync,
    wait_for,
)


def remote_commits(bare: Path) -> int:
    r = subprocess.run(["git", "rev-list", "--count", "a-sync"], cwd=bare, capture_output=True, text=True)
    return int(r.stdout) if r.returncode == 0 else 0


def test_messages_replies_reads_edits_and_deletes_cross_clones(remote):
    a, b = remote("a"), remote("b")
    alice = a.agent("alice", "implementer")
    bob = b.agent("bob", "reviewer")
    exchange(a, b)
    assert a.json("sync", "status")["label"].startswith("synced ")
    assert a.json("daemon", "status")["sync_status"]["mode"] == "remote"
    assert "bob" in [m["name"] for m in alice.json("team", "--all")["members"]]
    mid = alice.json("send", "please review the auth change", "--to", "@bob")["message_id"]
    gone = alice.json("send", "a message about to be deleted", "--to", "@bob")["message_id"]
    alice.ok("message", "edit", mid, "please review the auth change (v2)")
    alice.ok("message", "delete", gone, "--force")
    exchange(a, b)
    assert contents(bob) == ["please review the auth change (v2)"]  # reading marks it read
    bob.ok("reply", mid, "looks good")
    exchange(b, a)
    assert contents(alice) == ["looks good"]
    sent = alice.json("sent")["messages"]
    mine = next(m for m in sent if m["message_id"] == mid)
    assert mine["deliveries"][0]["state"] == "replied", mine
    # nothing twice, on either side
    assert len([m for m in bob.json("inbox", "--all")["messages"] if m["message_id"] == mid]) <= 1


def test_both_sides_writing_at_once_converge(remote):
    a, b = remote("a"), remote("b")
    alice = a.agent("alice", "implementer")
    bob = b.agent("bob", "reviewer")
    exchange(a, b)
    for i in range(5):
        alice.ok("send", f"a{i}", "--to", "@bob")
        bob.ok("send", f"b{i}", "--to", "@alice")
    exchange(a, b)
    assert sorted(contents(alice, "--unread")) == [f"b{i}" for i in range(5)]
    assert sorted(contents(bob, "--unread")) == [f"a{i}" for i in range(5)]
    # the same projection of the shared history on both clones
    feed_a = [m["message_id"] for m in alice.json("inbox", "--all", "--page-size", "100")["messages"]]
    feed_b = [m["message_id"] for m in bob.json("inbox", "--all", "--page-size", "100")["messages"]]
    assert feed_a == feed_b and len(feed_a) >= 10


def test_idle_engines_make_no_commits(remote):
    """Two clones on a short timer: after one exchange, neither commits nor pushes again (they must
    not answer each other's merge commits)."""
    fast = {"THRUM_SYNC__INTERVAL_SECONDS": "0.3", "THRUM_SYNC__SETTLE_SECONDS": "0.1"}
    a, b = remote("a", **fast), remote("b", **fast)
    a.agent("alice", "implementer")
    b.agent("bob", "reviewer")
    exchange(a, b)
    wait_for(lambda: all(not r.json("sync", "status")["pending_writes"] for r in (a, b)), what="quiet")
    exchange(a, b)
    local = [r.git("rev-list", "--count", "a-sync") for r in (a, b)]
    pushed = remote_commits(remote.bare)
    cycles = [len(r.json("sync", "status")["recent"]) for r in (a, b)]
    for r, n in zip((a, b), cycles):
        wait_for(
            lambda r=r, n=n: len(r.json("sync", "status")["recent"]) >= min(n + 4, 20),
            timeout=30,
            what="timer cycles",
        )
    assert [r.git("rev-list", "--count", "a-sync") for r in (a, b)] == local
    assert remote_commits(remote.bare) == pushed


def test_writes_are_committed_in_batches_after_they_settle(remote):
    a = remote("a", THRUM_SYNC__SETTLE_SECONDS="0.5")
    alice = a.agent("alice", "implementer", worktree=False)
    a.agent("bob", "reviewer", worktree=False)
    exchange(a)
    before = int(a.git("rev-list", "--count", "a-sync"))
    for i in range(20):
        alice.ok("send", f"m{i}", "--to", "@bob")
    wait_for(
        lambda: a.json("sync", "status")["last_sync_at"] and not a.json("sync", "status")["pending_writes"],
        timeout=30,
        what="the settled cycle",
    )
    wait_for(lambda: int(a.git("rev-list", "--count", "a-sync")) > before, timeout=30, what="a commit")
    assert int(a.git("rev-list", "--count", "a-sync")) - before <= 3  # a batch, never one per message


def test_local_only_commits_locally_and_never_pushes(remote):
    a = remote("a", THRUM_LOCAL="1")
    alice = a.agent("alice", "implementer", worktree=False)
    a.agent("bob", "reviewer", worktree=False)
    alice.ok("send", "stays here", "--to", "@bob")
    cycle = sync(a)
    assert cycle["result"] == "ok" and not cycle["fetched"] and not cycle["pushed"]
    st = a.json("sync", "status")
    assert st["mode"] == "local-only" and "configured" in st["why"]
    assert int(a.git("rev-list", "--count", "a-sync")) >= 2
    assert remote_commits(remote.bare) == 0


def test_a_local_engine_that_crashed_is_started_local_again_until_stopped(remote):
    """`daemon start --local` was forgotten after a kill -9: the engine the next command started
    pushed the local-only history (walk B, 6). It stays local until `daemon stop`."""
    a = remote("a")
    alice = a.agent("alice", "implementer", worktree=False)
    a.agent("bob", "reviewer", worktree=False)
    a.ok("daemon", "stop")
    pushed = remote_commits(remote.bare)  # the registrations, before the local session
    assert a.ok("daemon", "start", "--local").code == 0
    alice.ok("send", "local secret", "--to", "@bob")
    pid = a.daemon_pid()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pid not in daemon_pids(a), what="the engine gone")
    alice.ok("send", "second secret", "--to", "@bob")  # starts an engine
    assert a.json("sync", "status")["mode"] == "local-only"
    out = a.ok("daemon", "start").out
    assert "local-only: the last engine was started with --local" in out, out
    sync(a)
    assert remote_commits(remote.bare) == pushed
    a.ok("daemon", "restart")  # a restart keeps the mode
    assert a.json("sync", "status")["mode"] == "local-only"
    a.ok("daemon", "stop")  # the session ends: the next engine syncs
    a.ok("daemon", "start")
    assert a.json("sync", "status")["mode"] != "local-only"
    sync(a)
    assert remote_commits(remote.bare) > pushed


def test_a_repo_without_a_remote_is_local_only(repo):
    repo.agent("alice", "implementer", worktree=False)
    st = repo.json("sync", "status")
    assert st["mode"] == "local-only" and "no remote" in st["why"]
    assert repo.json("daemon", "status")["sync"] == "local-only"


def test_a_remote_added_while_the_engine_runs_shows_in_sync_status(remote):
    """`sync status` said local-only after `git remote add` while `sync force` pushed (walk B, 13)."""
    a = remote("a")
    a.git("remote", "remove", "origin")
    a.agent("alice", "implementer", worktree=False)
    assert a.json("sync", "status")["mode"] == "local-only"
    a.git("remote", "add", "origin", str(remote.bare))
    st = a.json("sync", "status")
    assert st["mode"] == "remote" and st["remote"] == "origin", st
    assert sync(a)["pushed"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def git_daemon(remote):
    port = _free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            "--enable=receive-pack",
            "--reuseaddr",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={remote.bare.parent}",
            str(remote.bare.parent),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"git://127.0.0.1:{port}/{remote.bare.name}"
    wait_for(
        lambda: subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0,
        timeout=20,
        what="git daemon",
    )
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)


def test_a_public_remote_is_refused_and_the_override_works(remote, git_daemon):
    a = remote("a", url=git_daemon)
    alice = a.agent("alice", "implementer", worktree=False)
    a.agent("bob", "reviewer", worktree=False)
    alice.ok("send", "private history", "--to", "@bob")
    cycle = sync(a)
    st = a.json("sync", "status")
    assert st["mode"] == "refused" and "allow_public_remote" in st["why"]
    assert not cycle["pushed"] and remote_commits(remote.bare) == 0
    a.stop()
    a.env["THRUM_SYNC__ALLOW_PUBLIC_REMOTE"] = "true"
    assert sync(a)["result"] == "ok"  # (the push may be the start-up cycle's)
    assert a.json("sync", "status")["mode"] == "remote"
    assert remote_commits(remote.bare) >= 1


def test_an_unreachable_remote_never_blocks_local_messaging(remote, tmp_path):
    a = remote("a", url=str(tmp_path / "nowhere.git"))
    alice = a.agent("alice", "implementer", worktree=False)
    bob = a.agent("bob", "reviewer", worktree=False)
    r = a.run("sync", "force", "--wait")
    assert r.code == 1 and r.err.startswith("Error: the sync cycle failed")
    # git's reason, not its closing advice ("... and the repository exists.", walk B 12)
    assert "does not appear to be a git repository" in r.err and "the repository exists" not in r.err, r.err
    alice.ok("send", "still works", "--to", "@bob")
    assert contents(bob) == ["still works"]
    st = a.json("sync", "status")
    assert st["last_error"] and st["failures"] >= 1
    assert a.json("daemon", "status")["sync"] == "error"


def test_a_force_pushed_remote_loses_no_event(remote):
    a, b = remote("a"), remote("b")
    alice = a.agent("alice", "implementer")
    bob = b.agent("bob", "reviewer")
    exchange(a, b)
    first = git(remote.bare, "rev-parse", "a-sync")
    alice.ok("send", "one", "--to", "@bob")
    exchange(a, b)
    git(remote.bare, "update-ref", "refs/heads/a-sync", first)  # somebody rewinds the branch
    alice.ok("send", "two", "--to", "@bob")
    rewound = sync(a)
    assert any("rewritten" in n for n in rewound["notes"]), rewound
    exchange(a, b)
    assert sorted(contents(bob)) == ["one", "two"]
    # the rewound history came back: a fresh clone gets everything
    c = remote("c")
    carol = c.agent("carol", "tester")
    exchange(c)
    assert "alice" in [m["name"] for m in carol.json("team", "--all")["members"]]
    feed = [m["body"]["content"] for m in carol.json("inbox", "--all", "--page-size", "100")["messages"]]
    assert {"one", "two"} <= set(feed)


def test_kill_9_mid_cycle_leaves_a_state_the_next_start_repairs(remote):
    a, b = remote("a"), remote("b")
    alice = a.agent("alice", "implementer")
    bob = b.agent("bob", "reviewer")
    exchange(a, b)
    alice.ok("send", "before the crash", "--to", "@bob")
    pid = a.daemon_pid()
    gitdir = Path(a.git("rev-parse", "--absolute-git-dir", cwd=a.path / ".git" / "thrum-sync" / "a-sync"))
    (gitdir / "index.lock").write_text("")  # as a git command killed mid-write leaves it
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0, what="exit"
    )
    assert sync(a)["result"] == "ok"  # the next start cleared the lock
    exchange(b)
    assert contents(bob) == ["before the crash"]


def test_synced_mail_wakes_a_waiting_recipient(remote):
    a, b = remote("a"), remote("b")
    alice = a.agent("alice", "implementer")
    bob = b.agent("bob", "reviewer")
    exchange(a, b)
    with background(bob, "wait", "--timeout", "60s", "--json") as waiter:
        time.sleep(0.5)
        alice.ok("send", "wake up", "--to", "@bob")
        exchange(a, b)
        out, err = waiter.communicate(timeout=60)
        assert waiter.returncode == 0, err
        assert "wake up" in out


def test_sync_commands_on_bad_input(repo):
    repo.agent("alice", "implementer", worktree=False)
    r = repo.run("sync", "force", "--bogus")
    assert r.code != 0 and r.err.startswith("Error:") and len(r.err.splitlines()) == 1


def test_identities_from_other_clones_show_their_origin_and_collisions_are_reported(remote):
    a, b = remote("a", THRUM_LOCAL="1"), remote("b", THRUM_LOCAL="1")  # no sync while they register
    alice = a.agent("alice", "implementer")
    b.agent("bob", "reviewer")
    twin = b.agent("alice", "tester", worktree=False)  # the same name on the other clone
    for r in (a, b):
        r.stop()
        for env in (r.env, alice.env, twin.env):
            env.pop("THRUM_LOCAL", None)
    exchange(a, b)
    members = {m["name"]: m for m in alice.json("team", "--all")["members"]}
    assert members["bob"]["origin"]["clone"] and not members["bob"]["local"]
    assert members["bob"]["origin"]["host"]
    assert members["alice"]["local"] and members["alice"]["worktree"] == str(alice.cwd)  # never taken over
    twins = {m["name"]: m for m in twin.json("team", "--all")["members"]}
    assert twins["alice"]["role"] == "tester" and twins["alice"]["local"]
    assert twins["alice"]["worktree"] == str(b.path)
    for clone in (a, b):
        found = clone.json("sync", "status")["collisions"]
        assert [c["name"] for c in found] == ["alice"], found
        assert "@alice is registered on two clones" in clone.ok("sync", "status").out  # the human view too
    a.stop()  # kept across a restart (they were in memory only: walk, session 18)
    assert [c["name"] for c in a.json("sync", "status")["collisions"]] == ["alice"]
    # registering a name another clone holds is refused with the reason
    r = a.run("quickstart", "--name", "bob", "--role", "reviewer", cwd=a.worktree("bobtwin"))
    assert r.code == 1 and "registered on another clone" in r.err, r.err


def test_a_purge_holds_on_every_clone_and_nothing_older_comes_back(remote):
    a, b = remote("a"), remote("b", THRUM_LOCAL="1")  # b writes while it cannot sync
    alice = a.agent("alice", "implementer")
    bob = b.agent("bob", "reviewer")
    b.agent("dave", "tester", worktree=False)
    bob.ok("send", "written on b before the purge", "--to", "@dave")
    time.sleep(0.05)
    a.agent("erin", "tester", worktree=False)
    alice.ok("send", "old news on a", "--to", "@erin")
    r = a.run("purge", "--before", "0s", "--confirm")  # the operator, in a's main checkout
    assert r.code == 0, r.err
    alice.ok("send", "after the purge", "--to", "@erin")
    b.stop()
    for env in (b.env, bob.env):
        env.pop("THRUM_LOCAL")
    exchange(a, b)
    everything = [
        m["body"]["content"] for m in alice.json("inbox", "--all", "--page-size", "100")["messages"]
    ]
    assert "after the purge" in everything
    assert "old news on a" not in everything
    assert "written on b before the purge" not in everything  # synced in later, still purged
    on_b = [m["body"]["content"] for m in bob.json("inbox", "--all", "--page-size", "100")["messages"]]
    assert "old news on a" not in on_b and "written on b before the purge" not in on_b
    assert "after the purge" in on_b


def test_messages_sent_after_a_purge_all_survive_every_sync_and_the_rebuild(remote):
    """The user walk's case: `purge --all` on a, then a message from each side, then sync: both arrive
    on both clones and stay, `doctor` agrees, and a rebuild changes nothing."""
    a, b = remote("a"), remote("b")
    alice = a.agent("alice", "implementer")
    bob = b.agent("bob", "reviewer")
    exchange(a, b)
    alice.ok("send", "old A", "--to", "@bob")
    exchange(a, b)
    assert a.ok("purge", "--all", "--confirm").out.startswith("✓ Purged 1 message")
    bob.ok("send", "B after purge", "--to", "@alice")
    alice.ok("send", "A after purge", "--to", "@bob")
    exchange(a, b)
    exchange(a, b)  # and later cycles take nothing away
    for who, inbox, sent in (
        (alice, "B after purge", "A after purge"),
        (bob, "A after purge", "B after purge"),
    ):
        assert contents(who) == [inbox], who.name
        assert [m["body"]["content"] for m in who.json("sent")["messages"]] == [sent], who.name
    for clone in (a, b):
        d = clone.run("doctor", "--json")
        assert d.code == 0 and d.json["ok"], d.out
        assert clone.json("doctor", "rebuild")["identical"]
    assert contents(alice) == ["B after purge"] and contents(bob) == ["A after purge"]


async def test_the_console_shows_the_sync_state_and_its_page_runs_a_cycle(remote, monkeypatch):
    from thrum_tui.screens.sync import SyncScreen
    from thrum_tui.widgets.header_line import HeaderLine
    from tui_helpers import console, notified, until

    a = remote("a")
    a.agent("alice", "implementer")
    a.git("config", "user.name", "Ada Lovelace")
    a.stop()
    enter(a, monkeypatch)
    async with console(a) as (app, pilot):
        header = app.query_one(HeaderLine)
        # the operator's registration waits for the (long, in these tests) settle: "pending"
        await until(
            pilot,
            lambda: header.sync in ("pending", "starting") or header.sync.startswith("synced"),
            "the header's sync state",
            last=lambda: header.sync,
        )
        await pilot.press("S")
        screen = await until(pilot, lambda: isinstance(app.screen, SyncScreen) and app.screen)
        await until(
            pilot, lambda: "remote: syncing with origin" in str(screen.query_one("#summary").render())
        )
        await pilot.press("s")
        await until(pilot, lambda: notified(app, "sync ok"), "the forced cycle's result")
        await until(pilot, lambda: screen.query_one("#cycles").row_count >= 1, "the cycles listed")
        await pilot.press("escape")
        await until(pilot, lambda: header.sync.startswith("synced"), last=lambda: header.sync)


def journal_objects(repo: Repo) -> list[Path]:
    """The loose objects of the journal's branch (its blobs hold every message)."""
    listed = git(repo.path, "rev-list", "--objects", "a-sync", "--", env=repo.env)
    objects = repo.path / ".git" / "objects"
    paths = [objects / line[:2] / line[2:40] for line in listed.splitlines()]
    return [p for p in paths if p.exists()]


def _launch_codes_sent(remote) -> tuple[Repo, Repo]:
    """Two clones that have exchanged a message (under the caller's umask)."""
    a, b = remote("a"), remote("b")
    alice = a.agent("alice", "implementer")
    b.agent("bob", "reviewer")
    exchange(a, b)
    alice.ok("send", "the launch codes", "--to", "@bob")
    exchange(a, b)
    return a, b


def test_the_journal_in_git_is_private_to_the_user(remote):
    """The shards are 0600, but git stored their blobs under the user's umask: 0444 loose objects
    anyone on the machine could `git cat-file`. Thrum's git runs under umask 077, and objects an
    older Thrum stored are made private at the next start."""
    old = os.umask(0o022)  # a usual umask: git's objects would be 0444
    try:
        a, b = _launch_codes_sent(remote)
        for repo in (a, b):
            found = journal_objects(repo)
            assert len(found) > 3
            assert [p for p in found if p.stat().st_mode & 0o077] == []
            assert (repo.path / ".git" / "thrum-sync").stat().st_mode & 0o077 == 0
        older = journal_objects(a)
        for p in older:
            p.chmod(0o444)
        (a.path / ".git" / "thrum-sync" / ".objects-private").unlink()
        a.stop()
        a.json("sync", "status")  # starts the engine again
        wait_for(lambda: not [p for p in older if p.stat().st_mode & 0o077], timeout=20)
    finally:
        os.umask(old)


def test_a_git_gc_the_user_runs_leaves_no_message_readable_by_others(remote):
    """Walk B 7: `git gc` packs the journal's objects under the user's umask (0444 packs), so the
    object store itself is made a folder only its owner enters, unless the repository is shared on
    purpose."""
    old = os.umask(0o022)
    try:
        a, b = _launch_codes_sent(remote)
        for repo in (a, b):
            git(repo.path, "gc", "-q", env=repo.env)
            objects = repo.path / ".git" / "objects"
            assert objects.stat().st_mode & 0o077 == 0
            packs = list((objects / "pack").glob("*.pack"))
            assert packs  # the packs themselves keep git's modes; nobody else can reach them
        shared = remote("shared")
        git(shared.path, "config", "core.sharedRepository", "group", env=shared.env)
        (shared.path / ".git" / "objects").chmod(0o2775)
        shared.agent("carol", "watcher")
        shared.json("sync", "status")
        assert (shared.path / ".git" / "objects").stat().st_mode & 0o070 == 0o070  # shared on purpose
    finally:
        os.umask(old)


def test_a_push_the_remote_refuses_says_why_at_once(remote):
    """Walk (session 18): a clone of a repo that runs Thrum itself pushed to a branch checked out
    in that repo's journal worktree; git said so, but the push was taken for a race, retried and
    reported only "still rejected after 3 retries"."""
    a = remote("a")
    a.agent("alice", "implementer")  # a runs Thrum: its a-sync is checked out in .git/thrum-sync
    b = remote("b", url=str(a.path))
    b.agent("bob", "reviewer")
    r = b.run("sync", "force", "--wait")
    assert r.code == 1, r.out
    assert "checked out" in r.err and "bare remote" in r.err, r.err
    assert "still rejected" not in r.err and len(r.err.strip().splitlines()) == 1


def test_while_the_remote_is_away_status_counts_what_waits_to_be_pushed(remote):
    """Sync walk 4: with the remote unreachable, `sync status` kept the last good cycle's 0 unpushed
    commits, so a message stuck on this machine looked like one merely unread."""
    a = remote("a")
    alice = a.agent("alice", "implementer")
    a.agent("bob", "reviewer")
    assert sync(a)["result"] == "ok"
    away = remote.bare.with_name("away.git")
    remote.bare.rename(away)
    try:
        alice.ok("send", "while the remote is away", "--to", "@bob")
        assert a.run("sync", "force", "--wait").code == 1
        status = a.json("sync", "status")
        assert status["unpushed_commits"] >= 1 and status["last_error"], status
        human = a.ok("sync", "status").out
        assert "not pushed yet" in human
        assert "git fetch from origin: " in status["last_error"], status  # which remote, in git's words
        assert "`git remote -v`" in human and "`thrum sync force` tries again now" in human
    finally:
        away.rename(remote.bare)
    assert sync(a)["result"] == "ok"
    assert a.json("sync", "status")["unpushed_commits"] == 0


def test_an_agent_not_synced_yet_is_an_unknown_recipient_that_names_the_way_to_sync(remote):
    a, b = remote("a"), remote("b")
    alice = a.agent("alice", "implementer")
    b.agent("bob", "reviewer")
    r = alice.run("send", "are you there?", "--to", "@bob")
    assert (
        r.code == 1 and r.err.startswith("Error: unknown recipient: @bob (") and "`thrum sync force`" in r.err
    )
    assert len(r.err.strip().splitlines()) == 1
    exchange(b, a)
    alice.ok("send", "are you there?", "--to", "@bob")

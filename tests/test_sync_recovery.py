"""Sync never loses an acknowledged message when a shard ends up with two versions: a copied clone
(cp -a, a restored backup), a twin that shares an inode and so the clone id (a disk image), and a
remote whose shard an older Thrum rewrote. Real git, a bare remote, engines in every clone."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

from conftest import Agent, Repo, contents, exchange, git, kill_tmux, sync
from thrum_engine import ids
from thrum_engine.journal import CLONE_RECORD, Journal, clone_identity


def _copy(repo: Repo, name: str) -> Repo:
    """`cp -a` of a stopped clone, with a tmux server of its own."""
    repo.stop()
    path = repo.path.parent / name
    subprocess.run(["cp", "-a", str(repo.path), str(path)], check=True)
    env = dict(repo.env)
    env["THRUM_TMUX__SOCKET_NAME"] = f"thrum-test-{uuid.uuid4().hex[:12]}"
    return Repo(path, env)


def _as(repo: Repo, name: str) -> Agent:
    """`name` moved into the copy's checkout (`quickstart --force`): its lines from now on come from
    there, into the shard of the name and the clone id the copy started with."""
    agent = Agent(name, "implementer", repo.path, {**repo.env, "THRUM_NAME": name})
    agent.ok("quickstart", "--name", name, "--role", "implementer", "--force")
    return agent


def _clone_of(repo: Repo) -> dict:
    return repo.json("sync", "status")["clone"]


def _doctor_ok(*repos: Repo) -> None:
    for r in repos:
        d = r.run("doctor", "--json")
        assert d.code == 0 and d.json["ok"], d.out


def test_a_copied_clone_takes_an_id_of_its_own_and_both_copies_mail_arrives(remote):
    a, b = remote("a"), remote("b")
    bob = b.agent("bob", "reviewer", worktree=False)
    alice = a.agent("alice", "implementer")
    exchange(a, b)
    before = _clone_of(a)["id"]
    original_tip = git(a.path, "rev-parse", "a-sync", env=a.env)
    c = _copy(a, "a-copy")
    try:
        # alice writes from both (a copy restored at the same path elsewhere: the caller is hers).
        alice.ok("send", "from the original", "--to", "@bob")
        _as(c, "alice").ok("send", "from the copy", "--to", "@bob")
        assert _clone_of(a)["id"] == before
        mine = _clone_of(c)
        assert mine["id"] != before and mine["former"] == [before]
        # The copy's sync commits into its own repository: the original's branch is not moved by it.
        assert sync(c)["result"] == "ok"
        assert git(a.path, "rev-parse", "a-sync", env=a.env) == original_tip
        common = git(c.path / ".git" / "thrum-sync" / "a-sync", "rev-parse", "--git-common-dir", env=c.env)
        assert Path(common).resolve() == (c.path / ".git").resolve()
        exchange(a, c, b)
        assert sorted(contents(bob, "--all")) == ["from the copy", "from the original"]
        _doctor_ok(a, b, c)
    finally:
        c.stop()
        kill_tmux(c.env["THRUM_TMUX__SOCKET_NAME"])


def test_a_twin_that_shares_the_clone_id_moves_to_a_new_one_and_no_line_is_lost(remote):
    """A copy that kept its inode (a disk image) cannot tell it is a copy: sync finds the other
    writer's lines in its own shard, moves to a new id and re-homes its own lines."""
    a, b = remote("a"), remote("b")
    bob = b.agent("bob", "reviewer", worktree=False)
    alice = a.agent("alice", "implementer")
    exchange(a, b)
    before = _clone_of(a)["id"]
    c = _copy(a, "a-image")
    record = c.var / CLONE_RECORD
    kept = json.loads(record.read_text())
    kept["inode"] = os.stat(c.var).st_ino  # what an image restored with its inodes looks like
    record.write_text(json.dumps(kept))
    try:
        alice.ok("send", "original one", "--to", "@bob")
        twin = _as(c, "alice")
        twin.ok("send", "twin one", "--to", "@bob")
        assert sync(a)["result"] == "ok"
        assert sync(b)["result"] == "ok"  # bob has the original's version of the shard
        cycle = sync(c)
        assert cycle["result"] == "ok", cycle
        # (the cycle the engine runs at its start may be the one that found it)
        notes = [n for past in c.json("sync", "status")["recent"] for n in past["notes"]]
        assert any("writes as clone" in n for n in notes), notes
        moved = _clone_of(c)
        assert moved["id"] != before and moved["former"] == [before]
        twin.ok("send", "twin two", "--to", "@bob")  # written under the new id
        exchange(a, b, c)
        assert sorted(contents(bob, "--all")) == ["original one", "twin one", "twin two"]
        assert _clone_of(a)["id"] == before  # the first writer keeps its id
        _doctor_ok(a, b, c)
        for r in (a, b, c):
            assert r.json("doctor", "rebuild")["identical"]
    finally:
        c.stop()
        kill_tmux(c.env["THRUM_TMUX__SOCKET_NAME"])


def _rewrite_remote(bare: Path, env: dict, shard_name: str, edit) -> None:
    """Push a commit on a-sync whose `shard_name` is `edit(lines)`: what an older Thrum's merge, or a
    hand edit, leaves on a remote."""
    work = bare.parent / f"rewrite-{uuid.uuid4().hex[:6]}"
    git(bare.parent, "clone", "-q", "-b", "a-sync", str(bare), str(work), env=env)
    path = work / "journal" / shard_name
    if edit is None:
        git(work, "rm", "-q", str(path.relative_to(work)), env=env)
    else:
        path.write_bytes(b"".join(edit(path.read_bytes().splitlines(keepends=True))))
        git(work, "add", "-A", env=env)
    git(work, "commit", "-q", "-m", "rewritten", env=env)
    git(work, "push", "-q", "origin", "a-sync", env=env)


def _forged_message(line: bytes, content: str) -> bytes:
    """A valid message line like `line`, with new ids and another body."""
    ev = json.loads(line)
    ev["id"] = "evt_" + ids.ulid()
    ev["data"]["message_id"] = "msg_" + ids.ulid()
    ev["data"]["content"] = content
    if "idempotency_key" in ev["data"]:
        ev["data"]["idempotency_key"] = "forged-" + ids.ulid()
    return json.dumps(ev, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def test_a_shard_rewritten_on_the_remote_is_merged_by_event_id_on_every_clone(remote):
    a, b = remote("a"), remote("b")
    bob = b.agent("bob", "reviewer", worktree=False)
    alice = a.agent("alice", "implementer", worktree=False)
    exchange(a, b)
    alice.ok("send", "one", "--to", "@bob")
    alice.ok("send", "two", "--to", "@bob")
    exchange(a, b)
    shard = f"alice@{_clone_of(a)['id']}.jsonl"

    def drop_two_add_three(lines: list[bytes]) -> list[bytes]:
        two = next(ln for ln in lines if b'"content":"two"' in ln)
        return [ln for ln in lines if ln is not two] + [_forged_message(two, "three")]

    _rewrite_remote(remote.bare, a.env, shard, drop_two_add_three)
    cycle = sync(b)
    assert cycle["result"] == "ok", cycle
    assert any("merged by event id" in n for n in cycle["notes"]), cycle["notes"]
    assert sorted(contents(bob, "--all")) == ["one", "three", "two"]
    exchange(a, b)
    exchange(a, b)
    assert sorted(contents(bob, "--all")) == ["one", "three", "two"]
    assert sorted(m["body"]["content"] for m in alice.json("sent")["messages"]) == ["one", "three", "two"]
    # A clone that joins now gets all three from the remote alone, each once.
    d = remote("d")
    d.agent("carol", "watcher", worktree=False)
    exchange(d)
    assert _bodies(d) == ["one", "three", "two"]
    assert _bodies(a) == _bodies(b) == ["one", "three", "two"]
    _doctor_ok(a, b, d)
    for r in (a, b, d):
        assert r.json("doctor", "rebuild")["identical"]


def _bodies(repo: Repo) -> list[str]:
    """Every message body in the clone's journal, by event id (a line kept twice would show)."""
    found = []
    for path in sorted((repo.path / ".git" / "thrum-sync" / "a-sync" / "journal").glob("*.jsonl")):
        for raw in path.read_bytes().splitlines():
            ev = json.loads(raw)
            if ev["type"] == "message.create":
                found.append(ev["data"]["content"])
    return sorted(found)


def test_a_shard_the_remote_dropped_is_put_back_by_a_clone_that_holds_it(remote):
    """A fast-forward to a tip that lacks a shard this clone holds never drops it from the tree."""
    a, b = remote("a"), remote("b")
    b.agent("bob", "reviewer", worktree=False)
    alice = a.agent("alice", "implementer", worktree=False)
    exchange(a, b)
    alice.ok("send", "keep me", "--to", "@bob")
    exchange(a, b)
    shard = f"alice@{_clone_of(a)['id']}.jsonl"
    a.stop()  # alice's clone is away
    _rewrite_remote(remote.bare, b.env, shard, None)
    assert sync(b)["result"] == "ok"
    listed = git(remote.bare, "ls-tree", "--name-only", "a-sync", "journal/")
    assert f"journal/{shard}" in listed.splitlines()


def test_the_clone_id_survives_restarts_and_a_copy_of_its_folder_takes_a_new_one(tmp_path):
    var = tmp_path / "repo" / ".thrum" / "var"
    var.mkdir(parents=True)
    path = str(var / "clone")
    first = clone_identity(path)
    assert first.minted == "new" and first.former == []
    again = clone_identity(path)
    assert (again.id, again.minted) == (first.id, "")
    copy = tmp_path / "copy" / ".thrum" / "var"
    subprocess.run(["cp", "-a", str(tmp_path / "repo"), str(tmp_path / "copy")], check=True)
    copied = clone_identity(str(copy / "clone"))
    assert copied.minted == "copy" and copied.id != first.id and copied.former == [first.id]
    assert clone_identity(str(copy / "clone")).id == copied.id  # and keeps it from then on
    assert clone_identity(path).id == first.id  # the original is untouched


def test_an_id_file_from_before_the_record_is_kept(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    (var / "clone").write_text("0123abcd\n")
    ident = clone_identity(str(var / "clone"))
    assert (ident.id, ident.minted, ident.former) == ("0123abcd", "", [])
    assert json.loads((var / CLONE_RECORD).read_text())["id"] == "0123abcd"


def test_moving_the_clone_sends_later_lines_to_shards_of_the_new_id(tmp_path):
    var = tmp_path / "var"
    journal = Journal(str(tmp_path / "journal"), str(tmp_path / "q"), str(var / "clone"))
    journal.open()
    old = journal.clone
    journal.append({journal.shard_for("alice"): [b'{"id":"evt_1"}\n']})
    assert journal.move_clone()[0] == old
    journal.append({journal.shard_for("alice"): [b'{"id":"evt_2"}\n']})
    assert sorted(journal.shards()) == sorted([f"alice@{old}", f"alice@{journal.clone}"])
    assert journal.is_ours(old) and journal.is_ours(journal.clone or "") and not journal.is_ours("ffff0000")
    journal.close()
    reopened = Journal(str(tmp_path / "journal"), str(tmp_path / "q"), str(var / "clone"))
    reopened.open()
    assert (reopened.clone, reopened.former) == (journal.clone, [old])
    reopened.close()

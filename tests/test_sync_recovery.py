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
from test_sync import remote_commits
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


def _pair(remote) -> tuple[Repo, Repo, Agent, Agent]:
    """Clones a (alice, in a worktree) and b (bob, in its checkout) that know each other."""
    a, b = remote("a"), remote("b")
    bob = b.agent("bob", "reviewer", worktree=False)
    alice = a.agent("alice", "implementer")
    exchange(a, b)
    return a, b, alice, bob


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
    a, b, alice, bob = _pair(remote)
    before = _clone_of(a)["id"]
    c = _copy(a, "a-copy")
    try:
        # alice writes from both (a copy restored at the same path elsewhere: the caller is hers).
        alice.ok("send", "from the original", "--to", "@bob")
        _as(c, "alice").ok("send", "from the copy", "--to", "@bob")
        assert _clone_of(a)["id"] == before
        mine = _clone_of(c)
        assert mine["id"] != before and mine["former"] == [before]
        assert f"this clone: {mine['id']} (wrote as {before} before)" in c.ok("sync", "status").out
        # The copy's sync commits into its own repository, and the original's links are untouched.
        assert sync(c)["result"] == "ok"
        admin = a.path / ".git" / "worktrees" / "a-sync" / "gitdir"
        assert Path(admin.read_text().strip()).resolve() == (a.path / ".git/thrum-sync/a-sync/.git").resolve()
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
    a, b, alice, bob = _pair(remote)
    before = _clone_of(a)["id"]
    c = _copy(a, "a-image")
    record = c.var / CLONE_RECORD
    kept = json.loads(record.read_text())
    # What an image restored with its inodes at the same path elsewhere looks like.
    kept["inode"], kept["path"] = os.stat(c.var).st_ino, os.path.realpath(c.var)
    record.write_text(json.dumps(kept))
    try:
        alice.ok("send", "original one", "--to", "@bob")
        twin = _as(c, "alice")
        twin.ok("send", "twin one", "--to", "@bob")
        exchange(a, b, c)
        # Whichever pushed second found the other's lines in its shard (maybe in the cycle its engine
        # runs at start) and moved; the first keeps the id.
        ids = {_clone_of(r)["id"] for r in (a, c)}
        assert before in ids and len(ids) == 2
        mover = a if _clone_of(a)["id"] != before else c
        assert _clone_of(mover)["former"] == [before]
        notes = [n for past in mover.json("sync", "status")["recent"] for n in past["notes"]]
        assert any("writes as clone" in n for n in notes), notes
        twin.ok("send", "twin two", "--to", "@bob")  # under the copy's id now, whichever it is
        exchange(a, b, c)
        assert sorted(contents(bob, "--all")) == ["original one", "twin one", "twin two"]
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


def test_a_new_inode_at_the_same_path_is_not_a_copy(tmp_path):
    """Some filesystems (overlayfs) give a folder a new inode at each mount; a rename keeps it."""
    var = tmp_path / "var"
    var.mkdir()
    first = clone_identity(str(var / "clone"))
    record = json.loads((var / CLONE_RECORD).read_text())
    record["inode"] += 1
    (var / CLONE_RECORD).write_text(json.dumps(record))
    assert clone_identity(str(var / "clone")).id == first.id
    moved = tmp_path / "moved"
    var.rename(moved)
    assert clone_identity(str(moved / "clone")).id == first.id


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


def _sync_worktree(repo: Repo) -> Path:
    return repo.path / ".git" / "thrum-sync" / "a-sync"


def test_a_shard_written_by_an_interrupted_merge_is_staged_and_read_by_the_next(remote):
    """A merge that wrote a shard's new version and stopped before staging it (a crash, a held
    index.lock): the next cycle stages it and applies its lines, where it skipped a file that
    already matched the tip."""
    a, b, alice, bob = _pair(remote)
    alice.ok("send", "written while b was merging", "--to", "@bob")
    assert sync(a)["result"] == "ok"
    wt = _sync_worktree(b)
    git(wt, "fetch", "-q", "origin", "+refs/heads/a-sync:refs/thrum/remote/a-sync", env=b.env)
    shard = f"alice@{_clone_of(a)['id']}.jsonl"
    blob = subprocess.run(
        ["git", "cat-file", "blob", f"refs/thrum/remote/a-sync:journal/{shard}"],
        cwd=wt,
        capture_output=True,
        check=True,
    ).stdout
    (wt / "journal" / shard).write_bytes(blob)  # what the interrupted merge left
    assert sync(b)["result"] == "ok"
    assert contents(bob) == ["written while b was merging"]
    assert shard in git(wt, "ls-tree", "--name-only", "HEAD", "journal/", env=b.env)


def test_a_file_under_journal_that_is_no_shard_never_keeps_two_clones_merging(remote):
    a, b = remote("a"), remote("b")
    b.agent("bob", "reviewer", worktree=False)
    a.agent("alice", "implementer")
    exchange(a, b)
    work = remote.bare.parent / "hand-edit"
    git(remote.bare.parent, "clone", "-q", "-b", "a-sync", str(remote.bare), str(work), env=a.env)
    (work / "journal" / "NOTES.txt").write_text("a hand-written file\n")
    git(work, "add", "-A", env=a.env)
    git(work, "commit", "-q", "-m", "notes", env=a.env)
    git(work, "push", "-q", "origin", "a-sync", env=a.env)
    exchange(a, b)
    settled = remote_commits(remote.bare)
    exchange(a, b)
    exchange(a, b)
    assert remote_commits(remote.bare) == settled


def test_another_clones_synced_context_survives_a_merge_commit(remote):
    a, b, alice, bob = _pair(remote)
    alice.ok("context", "save", input="alice's notes\n")
    alice.ok("context", "sync")
    assert sync(a)["result"] == "ok"
    bob.ok("send", "unpushed on b", "--to", "@alice")  # b merges rather than fast-forwards
    assert sync(b)["result"] == "ok"
    exchange(a, b)
    listed = git(remote.bare, "ls-tree", "-r", "--name-only", "a-sync").splitlines()
    assert "context/alice.md" in listed
    shown = bob.json("context", "show", "--agent", "alice")  # sync walk 3: "(none saved)" on b
    assert (shown["context"], shown["source"]) == ("alice's notes\n", "synced")
    assert (
        "## Context (synced from another clone)\nalice's notes"
        in bob.ok("context", "show", "--agent", "alice").out
    )


def test_the_same_line_in_two_shards_is_one_event_and_another_line_with_its_id_is_refused(remote):
    """Two clones may both re-home a line a rewritten shard lost: the copies are one event for
    doctor and rebuild; a different line under a taken id is still a problem."""
    a = remote("a")
    bob = a.agent("bob", "reviewer", worktree=False)
    alice = a.agent("alice", "implementer")
    alice.ok("send", "once", "--to", "@bob")
    journal = _sync_worktree(a) / "journal"
    line = next(
        ln
        for p in journal.glob("alice@*.jsonl")
        for ln in p.read_bytes().splitlines(keepends=True)
        if b'"content":"once"' in ln
    )
    a.stop()
    (journal / "alice@0a0a0a0a.jsonl").write_bytes(line)  # a copy another clone re-homed
    _doctor_ok(a)
    assert a.json("doctor", "rebuild")["identical"]
    assert contents(bob) == ["once"]
    forged = line.replace(b'"content":"once"', b'"content":"twice"')
    (journal / "alice@0b0b0b0b.jsonl").write_bytes(forged)
    d = a.run("doctor", "--json")
    assert d.code != 0 and "duplicate event id" in d.out


def test_a_move_cut_short_forgets_no_id(tmp_path):
    """A crash between the record and the id file: the id in use stays, and nothing is lost."""
    var = tmp_path / "var"
    var.mkdir()
    first = clone_identity(str(var / "clone"))
    record = json.loads((var / CLONE_RECORD).read_text())
    record.update(id="ffffeeee", former=[first.id])  # the record written, the id file not yet
    (var / CLONE_RECORD).write_text(json.dumps(record))
    again = clone_identity(str(var / "clone"))
    assert (again.id, again.former) == (first.id, [])
    journal = Journal(str(tmp_path / "journal"), str(tmp_path / "q"), str(var / "clone"))
    journal.open()
    old, new = journal.move_clone()
    assert old == first.id and journal.former == [first.id] and journal.fires(new) and not journal.fires(old)
    journal.close()

"""A sync cycle's local commit: every grown shard of this clone, each cut at its last newline, stored
by one `git hash-object` and indexed by one `update-index` however many shards grew (a process per
shard and another to index it was ~100 processes after a burst from 50 agents)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from thrum_engine.sync import gitsync


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def worktree(tmp_path, monkeypatch):
    """A journal worktree with one commit, and a `git` on PATH that logs each subcommand it runs
    (then runs the real git) so the test can count processes."""
    wt = tmp_path / "wt"
    wt.mkdir()
    git(wt, "init", "-q")
    git(wt, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "root")
    (wt / gitsync.JOURNAL).mkdir()
    shim = tmp_path / "bin"
    shim.mkdir()
    log = tmp_path / "git.log"
    real = shutil.which("git")
    (shim / "git").write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do case "$a" in -*|*=*) ;; *) echo "$a" >> {log}; break;; esac; done\n'
        f'exec {real} "$@"\n'
    )
    (shim / "git").chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    return wt, log


def shard(wt: Path, name: str, data: bytes) -> None:
    (wt / gitsync.JOURNAL / name).write_bytes(data)


def runs(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_many_grown_shards_take_one_hash_and_one_index_process_each_cut_at_its_last_newline(worktree):
    wt, log = worktree
    shard(wt, "alice@c1.jsonl", b'{"a":1}\n{"a":2}\n')
    shard(wt, "bob@c1.jsonl", b'{"b":1}\n{"b":2, "torn')  # a batch being written: its tail stays out
    shard(wt, "carol@c1.jsonl", b'{"c":1}\n')
    shard(wt, "dave@c2.jsonl", b'{"d":1}\n')  # another clone's: never committed from here
    # what a crash in the middle of the previous cycle left behind
    (wt / gitsync.SNAPSHOTS).mkdir()
    (wt / gitsync.SNAPSHOTS / "0.blob").write_bytes(b"stale")

    assert gitsync.commit_local(str(wt), "c1", "thrum: journal of c1") == 3

    assert runs(log).count("hash-object") == 1
    assert runs(log).count("update-index") == 1
    assert git(wt, "show", "HEAD:journal/alice@c1.jsonl") == '{"a":1}\n{"a":2}\n'
    assert git(wt, "show", "HEAD:journal/bob@c1.jsonl") == '{"b":1}\n'
    assert git(wt, "show", "HEAD:journal/carol@c1.jsonl") == '{"c":1}\n'
    assert "dave@c2.jsonl" not in git(wt, "ls-tree", "-r", "--name-only", "HEAD")
    assert not (wt / gitsync.SNAPSHOTS).exists()


def test_one_grown_shard_is_committed_alone_and_unchanged_ones_are_left(worktree):
    wt, log = worktree
    shard(wt, "alice@c1.jsonl", b'{"a":1}\n')
    shard(wt, "bob@c1.jsonl", b'{"b":1}\n')
    assert gitsync.commit_local(str(wt), "c1", "first") == 2
    log.unlink()
    shard(wt, "alice@c1.jsonl", b'{"a":1}\n{"a":2}\n')

    assert gitsync.commit_local(str(wt), "c1", "second") == 1

    assert runs(log).count("hash-object") == 1
    assert git(wt, "show", "HEAD:journal/alice@c1.jsonl") == '{"a":1}\n{"a":2}\n'
    assert git(wt, "show", "HEAD:journal/bob@c1.jsonl") == '{"b":1}\n'
    assert gitsync.commit_local(str(wt), "c1", "nothing") == 0


def test_nothing_past_what_the_projection_acknowledged_is_committed(worktree):
    """A batch fsynced whose projection commit then fails is cut back out of the journal: a cycle
    that read the shard in between must not have committed it (another clone would apply it)."""
    wt, _log = worktree
    shard(wt, "alice@c1.jsonl", b'{"a":1}\n{"a":2, "failed batch"}\n')
    assert gitsync.commit_local(str(wt), "c1", "first", acked={"alice@c1": 8}) == 1
    assert git(wt, "show", "HEAD:journal/alice@c1.jsonl") == '{"a":1}\n'
    assert gitsync.commit_local(str(wt), "c1", "again", acked={"alice@c1": 8}) == 0

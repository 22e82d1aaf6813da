"""Which worktree a directory belongs to, as the engine decides for every connection (the peer's
cwd): git's own list is the truth, and a team's size must not make each connection read all of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from thrum_engine.layout import branch_commit, head_commit, registered_worktrees, worktree_of


def git(cwd, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """A repo with 30 linked worktrees, one of them moved with `git worktree move`."""
    root = tmp_path_factory.mktemp("layout")
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "--allow-empty", "-m", "i")
    for i in range(30):
        git(repo, "worktree", "add", "-q", "-b", f"b{i}", str(root / "wt" / f"w{i}"))
    git(repo, "worktree", "move", str(root / "wt" / "w7"), str(root / "moved"))
    return root, repo


def test_the_answer_is_git_s_list_for_members_subfolders_and_lookalikes(team):
    root, repo = team
    listed = registered_worktrees(str(repo))
    assert len(listed) == 31 and str((root / "moved").resolve()) in listed
    (root / "wt" / "w3" / "src").mkdir()
    assert worktree_of(str(repo), str(repo)) == str(repo.resolve())
    assert worktree_of(str(repo), str(root / "wt" / "w3" / "src")) == str((root / "wt" / "w3").resolve())
    assert worktree_of(str(repo), str(root / "moved")) == str((root / "moved").resolve())
    assert worktree_of(str(repo), str(root)) is None  # above every checkout

    # A directory dressed up as a worktree: its `.git` file names a real admin entry (which records
    # another worktree), and its redirect names the repo. Not in git's list, so not a worktree.
    fake = root / "fake"
    (fake / ".thrum").mkdir(parents=True)
    (fake / ".git").write_text(f"gitdir: {repo / '.git' / 'worktrees' / 'w5'}\n")
    (fake / ".thrum" / "redirect").write_text(str(repo / ".thrum") + "\n")
    assert str(fake.resolve()) not in listed
    assert worktree_of(str(repo), str(fake)) is None


def test_an_admin_entry_git_wrote_relative_names_its_worktree(team):
    """git 2.48's `worktree.useRelativePaths` writes the entry's `gitdir` relative to the entry."""
    root, repo = team
    entry = repo / ".git" / "worktrees" / "w9"
    absolute = (entry / "gitdir").read_text()
    (entry / "gitdir").write_text(os.path.relpath(absolute.strip(), entry) + "\n")
    try:
        assert str((root / "wt" / "w9").resolve()) in registered_worktrees(str(repo))
        assert worktree_of(str(repo), str(root / "wt" / "w9")) == str((root / "wt" / "w9").resolve())
    finally:
        (entry / "gitdir").write_text(absolute)


PROBE = r"""
import json, sys
from thrum_engine.layout import worktree_of
opened = []
sys.addaudithook(lambda event, args: opened.append(event) if event in ("open", "os.listdir") else None)
found = worktree_of(sys.argv[1], sys.argv[2])
print(json.dumps({"found": found, "reads": len(opened)}))
"""


def test_one_connection_reads_a_few_files_however_many_worktrees_the_team_has(team):
    """Counted by the interpreter's own audit events in a fresh process: before, every lookup listed
    the admin folder and read all 30 entries."""
    root, repo = team
    for where in (root / "wt" / "w21", repo):
        r = subprocess.run(
            [sys.executable, "-c", PROBE, str(repo), str(where)], capture_output=True, text=True, check=True
        )
        got = json.loads(r.stdout)
        assert got["found"] == str(where.resolve())
        assert got["reads"] <= 5, got


def rev_parse(cwd, ref: str = "HEAD") -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), "rev-parse", ref], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_commits_read_from_git_s_files_are_git_s_answer_loose_packed_or_detached(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for branch in ("feature/login", "feature/log"):  # one name the start of another's
        git(repo, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "--allow-empty", "-m", branch)
        git(repo, "branch", branch)
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(wt), "feature/login")
    git(wt, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "--allow-empty", "-m", "ahead")

    def agree() -> None:
        assert head_commit(str(repo)) == rev_parse(repo)
        assert head_commit(str(wt)) == rev_parse(wt)
        for branch in ("main", "feature/login", "feature/log"):
            assert branch_commit(str(repo), branch) == rev_parse(repo, branch)
        assert branch_commit(str(repo), "feature") is None and branch_commit(str(repo), "nope") is None

    agree()  # loose refs
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git/refs/heads/main").exists()
    agree()  # packed-refs only
    git(wt, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "--allow-empty", "-m", "again")
    agree()  # a loose ref newer than its packed line wins, as in git
    git(wt, "checkout", "-q", "--detach", "HEAD~1")
    agree()  # detached: HEAD holds the commit itself

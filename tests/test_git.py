"""The one module that runs git, on real repositories: its runner (sync and async, failures and
timeouts) and its parsers of `worktree list --porcelain` and `status --porcelain -z`."""

from __future__ import annotations

import os
import subprocess

import pytest

from thrum_engine import git
from thrum_engine.errors import ThrumError


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "r"
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "a.txt").write_text("a\n")
    git.run(str(path), "add", "a.txt")
    git.run(str(path), "commit", "-q", "-m", "first")  # the identity comes from git_env when none is set
    return path


def test_run_returns_stdout_and_a_failure_is_one_line(repo):
    assert git.run(str(repo), "rev-parse", "--abbrev-ref", "HEAD") == "main"
    with pytest.raises(git.GitFailed) as failed:
        git.run(str(repo), "rev-parse", "--verify", "no-such-ref")
    assert isinstance(failed.value, ThrumError)
    assert failed.value.message.startswith("git rev-parse failed: ") and "\n" not in failed.value.message
    assert git.run(str(repo), "rev-parse", "--verify", "--quiet", "no-such-ref", check=False) == ""
    assert git.ok(str(repo), "show-ref", "--verify", "--quiet", "refs/heads/main")
    assert not git.ok(str(repo), "show-ref", "--verify", "--quiet", "refs/heads/nope")


def test_run_feeds_stdin_and_extra_env(repo):
    blob = git.run(str(repo), "hash-object", "-w", "--stdin", stdin="hello\n")
    assert git.run(str(repo), "cat-file", "-p", blob) == "hello"
    index = str(repo / ".git" / "other-index")
    git.run(str(repo), "read-tree", "HEAD", env={"GIT_INDEX_FILE": index})
    assert os.path.exists(index)


def test_a_command_past_its_timeout_is_a_failure_not_a_hang(repo):
    hooks = repo / ".git" / "hooks"
    (hooks / "pre-commit").write_text("#!/bin/sh\nsleep 2\n")
    (hooks / "pre-commit").chmod(0o755)
    with pytest.raises(git.GitFailed, match="timed out"):
        git.run(str(repo), "commit", "-q", "--allow-empty", "-m", "slow", timeout=0.3)


async def test_run_async_reads_without_a_thread(repo):
    code, out = await git.run_async(str(repo), "rev-parse", "--abbrev-ref", "HEAD")
    assert (code, out.strip()) == (0, "main")
    code, _ = await git.run_async(str(repo), "rev-parse", "--verify", "no-such-ref")
    assert code != 0


def test_parse_worktrees_reads_every_kind_of_entry(repo, tmp_path):
    git.run(str(repo), "worktree", "add", "-q", "-b", "feature/x", str(tmp_path / "wx"))
    git.run(str(repo), "worktree", "add", "-q", "--detach", str(tmp_path / "wd"))
    (tmp_path / "gone").mkdir()
    git.run(str(repo), "worktree", "add", "-q", "-b", "feature/g", str(tmp_path / "gone" / "wg"))
    subprocess.run(["rm", "-rf", str(tmp_path / "gone")], check=True)
    trees = git.parse_worktrees(git.run(str(repo), "worktree", "list", "--porcelain"))
    by_name = {os.path.basename(t["path"]): t for t in trees}
    assert set(by_name) == {"r", "wd", "wg", "wx"}
    assert trees[0]["path"] == str(repo) and trees[0]["branch"] == "main"
    assert by_name["wx"]["branch"] == "feature/x" and len(by_name["wx"]["head"]) == 40
    assert by_name["wd"]["branch"] is None and by_name["wd"]["head"] == trees[0]["head"]
    assert by_name["wg"]["prunable"] and not by_name["wx"]["prunable"]
    assert git.in_journal_folder(str(repo / ".git" / "thrum-sync" / "a-sync"))
    assert not git.in_journal_folder(str(tmp_path / "wx"))


def test_parse_status_splits_changes_from_untracked_and_skips_rename_sources(repo):
    (repo / "a.txt").write_text("changed\n")
    (repo / "b.txt").write_text("b\n")
    git.run(str(repo), "add", "b.txt")
    git.run(str(repo), "commit", "-q", "-m", "b")
    git.run(str(repo), "mv", "b.txt", "c d.txt")  # a rename: `R  c d.txt\0b.txt\0`
    (repo / "new dir").mkdir()
    (repo / "new dir" / "n.txt").write_text("n\n")
    changed, untracked = git.parse_status(git.run(str(repo), *git.STATUS_ARGS))
    assert sorted(changed) == ["a.txt", "c d.txt"]
    assert untracked == ["new dir/n.txt"]
    assert git.parse_status("") == ([], [])


def test_call_returns_the_exit_code_and_raw_bytes(repo):
    done = git.call(str(repo), "merge-base", "--is-ancestor", "HEAD", "HEAD")
    assert done.code == 0
    assert git.call(str(repo), "rev-parse", "--verify", "--quiet", "nope").code == 1
    blob = git.run(str(repo), "hash-object", "-w", "--stdin", stdin=b"\xff\x00bin\r\n")
    assert git.call(str(repo), "cat-file", "blob", blob).raw == b"\xff\x00bin\r\n"
    with pytest.raises(git.GitFailed) as failed:
        git.call(str(repo), "cat-file", "blob", "nope", check=True)
    assert failed.value.exit_code != 0 and "nope" in failed.value.stderr


def test_config_nice_and_a_hook_s_git_dir_do_not_leak(repo, tmp_path, monkeypatch):
    assert git.run(str(repo), "config", "thrum.probe", config={"thrum.probe": "yes"}) == "yes"
    assert git.run(str(repo), "config", "thrum.probe", check=False) == ""  # -c is per command
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", "-b", "other", str(other)], check=True)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))  # what a hook inherits
    assert git.run(str(repo), "rev-parse", "--abbrev-ref", "HEAD", nice=5) == "main"


def test_identity_is_thrum_s_only_where_git_has_none(repo, monkeypatch):
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(repo.parent))  # no ~/.gitconfig identity
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    git.run(str(repo), "config", "user.useConfigOnly", "true")  # no guessing from the host name
    assert git.identity_env(str(repo)) == git.IDENTITY
    git.run(str(repo), "config", "user.name", "Ada")
    git.run(str(repo), "config", "user.email", "ada@example.com")
    assert git.identity_env(str(repo)) == {}
    git.run(str(repo), "commit", "-q", "--allow-empty", "-m", "mine", identity=False)
    assert git.run(str(repo), "log", "-1", "--format=%an") == "Ada"


async def test_run_async_feeds_stdin_and_env(repo):
    code, out = await git.run_async(str(repo), "hash-object", "--stdin", stdin="x\n")
    assert code == 0 and len(out.strip()) == 40
    code, out = await git.run_async(str(repo), "var", "GIT_AUTHOR_IDENT", env={"GIT_AUTHOR_NAME": "Zed"})
    assert out.startswith("Zed ")

"""who-has and overview read every worktree's live git state. What a team's size costs: one
`git status` per worktree, the branch's diff against the base only when a head moved, and one
computation for any number of agents asking at once (each answer still newer than its question).

In-process engine on a real repo with real worktrees; `git` on PATH is a shim that logs each
command and runs the real git (it can also hold `git worktree list` until the test lets it go)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest

from thrum_engine.engine.assemble import build
from thrum_engine.engine.caller import Caller
from thrum_engine.layout import Layout
from thrum_engine.settings import ThrumSettings

SHIM = """#!/bin/sh
echo "$*" >> "{log}"
if [ "$1 $2" = "worktree list" ] && [ -e "{hold}" ]; then
    touch "{held}"
    while [ -e "{hold}" ]; do sleep 0.01; done
fi
exec "{git}" "$@"
"""


def git(cwd, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@x", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
async def team(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("x\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "init")
    trees = []
    for i in range(4):
        wt = tmp_path / f"w{i}"
        git(repo, "worktree", "add", "-q", "-b", f"b{i}", str(wt))
        trees.append(wt)
    (trees[1] / "auth.py").write_text("a\n")
    git(trees[1], "add", "auth.py")
    git(trees[1], "commit", "-q", "-m", "auth")
    (repo / ".git/thrum-sync/a-sync/journal").mkdir(parents=True)

    shim = tmp_path / "bin"
    shim.mkdir()
    log, hold = tmp_path / "git.log", tmp_path / "hold"
    real = shutil.which("git")
    assert real is not None
    (shim / "git").write_text(SHIM.format(log=log, hold=hold, held=tmp_path / "held", git=real))
    (shim / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    monkeypatch.setenv("THRUM_TMUX__SOCKET_NAME", "thrum-test-contexts-unused")
    e = build(Layout(str(repo)), ThrumSettings())
    await e.start()
    log.write_text("")
    yield e, repo, trees, tmp_path
    await e.stop()


def commands(tmp_path) -> list[str]:
    return [line.split(" -c ")[0] for line in (tmp_path / "git.log").read_text().splitlines()]


def count(cmds: list[str], prefix: str) -> int:
    return sum(1 for c in cmds if c.startswith(prefix))


async def who_has(e, path: str) -> dict:
    return await e.call("team.who_has", {"path": path}, Caller.trusted())


async def test_the_branch_diff_runs_again_only_when_a_head_moves(team):
    e, repo, trees, tmp = team
    assert [h["path"] for h in (await who_has(e, "auth.py"))["holders"]] == [str(trees[1])]
    first = commands(tmp)
    assert count(first, "status") == 5 and count(first, "diff") == 4 and count(first, "rev-list") == 4

    (tmp / "git.log").write_text("")
    (trees[2] / "README.md").write_text("changed\n")  # uncommitted: seen without any diff
    doc = await who_has(e, "README.md")
    assert [(h["path"], h["changes"]) for h in doc["holders"]] == [(str(trees[2]), ["uncommitted"])]
    again = commands(tmp)
    assert count(again, "status") == 5 and count(again, "diff") == 0 and count(again, "rev-list") == 0

    # A commit moves that branch's head: its diff runs again, and only its own.
    (tmp / "git.log").write_text("")
    git(trees[3], "commit", "-q", "--allow-empty", "-m", "nothing yet")
    (trees[3] / "login.py").write_text("l\n")
    git(trees[3], "add", "login.py")
    git(trees[3], "commit", "-q", "-m", "login")
    assert [h["path"] for h in (await who_has(e, "login.py"))["holders"]] == [str(trees[3])]
    moved = commands(tmp)
    assert count(moved, "diff") == 1 and count(moved, "rev-list") == 1
    overview = await e.call("overview", {}, Caller.trusted())
    assert {w["path"]: w["ahead"] for w in overview["worktrees"]}[str(trees[3])] == 2

    # The base moving (b1 merged into main) changes every branch's answer: all diffs run again.
    (tmp / "git.log").write_text("")
    git(repo, "merge", "-q", "--ff-only", "b1")
    assert (await who_has(e, "auth.py"))["holders"] == []
    assert count(commands(tmp), "diff") == 4


async def test_a_crowd_asking_at_once_shares_one_computation_and_no_answer_predates_its_question(team):
    e, repo, trees, tmp = team
    got = await asyncio.gather(*(who_has(e, "auth.py") for _ in range(10)))
    assert all(g == got[0] for g in got)
    assert count(commands(tmp), "worktree list") == 1

    (tmp / "git.log").write_text("")
    (tmp / "hold").touch()
    first = asyncio.create_task(who_has(e, "notes.txt"))
    while not (tmp / "held").exists():  # the first computation has begun (its listing is held)
        await asyncio.sleep(0.01)
    (trees[0] / "notes.txt").write_text("n\n")  # after the first question, before the later ones
    later = [asyncio.create_task(who_has(e, "notes.txt")) for _ in range(5)]
    await asyncio.sleep(0.05)
    (tmp / "hold").unlink()
    await first
    answers = await asyncio.gather(*later)
    assert all([h["path"] for h in a["holders"]] == [str(trees[0])] for a in answers)
    assert count(commands(tmp), "worktree list") == 2  # the first, then one for all five later ones


async def test_status_reads_its_own_worktree_s_branch_diff_again_only_when_a_head_moves(team):
    e, repo, trees, tmp = team
    bob = Caller(name="bob", worktree=str(trees[1]), pid=os.getpid())
    await e.call("agent.register", {"name": "bob", "role": "dev"}, bob)
    for expect_diffs in (1, 0):
        (tmp / "git.log").write_text("")
        ctx = (await e.call("status", {}, bob))["work_context"]
        assert (ctx["ahead"], ctx["ahead_files"]) == (1, ["auth.py"])
        assert count(commands(tmp), "status") == 1 and count(commands(tmp), "diff") == expect_diffs
    (trees[1] / "token.py").write_text("t\n")
    git(trees[1], "add", "token.py")
    git(trees[1], "commit", "-q", "-m", "token")
    (tmp / "git.log").write_text("")
    ctx = (await e.call("status", {}, bob))["work_context"]
    assert (ctx["ahead"], ctx["ahead_files"]) == (2, ["auth.py", "token.py"])
    assert count(commands(tmp), "diff") == 1


async def test_a_computation_cancelled_before_it_began_is_not_handed_to_later_questions(team):
    from thrum_engine.team import shared_contexts

    e, repo, trees, tmp = team
    shared = shared_contexts(e)
    asker = asyncio.create_task(shared.get())
    await asyncio.sleep(0)  # the asker has made the next computation, which has not begun
    assert shared._next is not None
    shared._next.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asker
    assert len(await shared.get()) == 5  # a new computation, not the cancelled one

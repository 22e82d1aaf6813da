"""Worktrees you can see (issue 14, item 5): per worktree its branch against the target, the last
commit, what is uncommitted and untracked exactly as `git status` has it, merged or not, and
the agent working there with its state."""

from __future__ import annotations

import asyncio
import os

from thrum_engine import git
from thrum_engine.engine.core import Caller, Engine
from thrum_engine.engine.registry import method
from thrum_engine.git import GitFailed
from thrum_engine.model import Params
from thrum_engine.review import gitstate
from thrum_engine.review.service import agent_state, target_branch


def last_commit(path: str) -> dict | None:
    done = git.call(path, "log", "-1", "--format=%H%x00%s%x00%cI")
    out = done.out
    if done.code != 0 or not out.strip():
        return None
    sha, subject, at = out.strip().split("\0", 2)
    return {"sha": sha, "subject": subject, "at": at}


def tree_view(path: str, branch: str | None, target: str) -> dict:
    """Blocking (git): run in a thread."""
    out: dict = {
        "name": os.path.basename(path),
        "path": path,
        "branch": branch,
        "exists": os.path.isdir(path),
        "ahead": None,
        "behind": None,
        "uncommitted": [],
        "untracked": [],
        "merged": None,  # everything here is in the target: the branch's commits, and nothing else
        "branch_merged": None,  # the branch's commits are all in the target (work may be uncommitted)
        "no_commits": None,  # the branch never moved since it was made: "merged" would be a guess
        "last_commit": None,
        "error": None,
    }
    if not out["exists"]:
        out["error"] = "missing: the directory is gone (`git worktree prune` forgets it)"
        return out
    try:
        st, _ = gitstate.branch_state(path, target)
    except GitFailed as exc:
        out["error"] = exc.message
        return out
    from thrum_engine.worktrees import unmerged_commits

    pending, squashed = unmerged_commits(path, st.head, st.target_head)
    branch_merged = not pending or squashed
    # Uncommitted or untracked work exists nowhere else: a branch with no commits of its own is not
    # "merged" while it holds some (walk A, bug 15: read as "safe to remove").
    out.update(
        ahead=st.ahead,
        behind=st.behind,
        uncommitted=st.uncommitted,
        untracked=st.untracked,
        merged=branch_merged and not st.uncommitted and not st.untracked,
        branch_merged=branch_merged,
        no_commits=never_moved(path, branch) if st.ahead == 0 else False,
        last_commit=last_commit(path),
    )
    return out


def never_moved(path: str, branch: str | None) -> bool | None:
    """Whether `branch` is where it was made: its reflog holds the creation alone (console walk,
    session 22: a worktree with no commit read "merged"). None when git keeps no reflog for it."""
    if not branch:
        return None
    from thrum_engine.layout import common_git_dir

    try:
        with open(os.path.join(common_git_dir(path), "logs", "refs", "heads", branch), "rb") as fh:
            return sum(1 for line in fh if line.strip()) <= 1
    except OSError:
        return None


@method("worktree.overview", Params)
async def overview(engine: Engine, caller: Caller, p: Params) -> dict:
    from thrum_engine.worktrees import agents_in, list_worktrees

    repo = engine.layout.repo
    target = target_branch(engine)
    trees = await asyncio.to_thread(list_worktrees, repo)
    views = await asyncio.gather(
        *(asyncio.to_thread(tree_view, t["path"], t["branch"], target) for t in trees)
    )
    for v in views:
        agents = agents_in(engine, v["path"])
        v["agent"] = agents[0] if agents else None
        v["agents"] = [{"name": a, "state": agent_state(engine, a)} for a in agents]
    return {"target": target, "worktrees": list(views)}

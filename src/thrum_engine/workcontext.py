"""Live git work context of worktrees (branch, changed files, commits ahead), read with
`git` subprocesses off the event loop, each bounded by a timeout."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from thrum_engine import git
from thrum_engine.layout import current_branch

GIT_TIMEOUT = 10.0


async def worktrees(repo: str) -> list[dict]:
    """`git worktree list --porcelain` as dicts (path, branch, head), the sync worktree excluded."""
    _, out = await git.run_async(repo, "worktree", "list", "--porcelain", timeout=GIT_TIMEOUT)
    return [t for t in git.parse_worktrees(out) if not git.in_journal_folder(t["path"])]


def default_branch(repo: str) -> str | None:
    """The branch work merges into: the main checkout's branch (read from its HEAD file, no git)."""
    return current_branch(repo)


# What a branch holds that its base lacks depends on the two commits alone: kept per (worktree, head,
# base head), so while no branch moves, a team's who-has and overview run one `git status` per
# worktree instead of three processes (50 worktrees: 150 git processes a call).
_AHEAD: OrderedDict[tuple[str, str, str], tuple[int, list[str]]] = OrderedDict()
AHEAD_KEPT = 256  # 50 worktrees, a few heads each; a big branch keeps a long file list


async def _ahead_of(path: str, base: str, head: str | None, base_head: str | None) -> tuple[int, list[str]]:
    """(commits ahead of `base`, files they change): by commit ids when both are known (and then
    kept), else by name in the worktree as it is now."""
    key = (path, head, base_head) if head and base_head else None
    if key is not None:
        got = _AHEAD.get(key)
        if got is not None:
            _AHEAD.move_to_end(key)
            return got
    tip, since = (head, base_head) if key is not None else ("HEAD", base)
    (code_f, files), (code_n, count) = await asyncio.gather(
        git.run_async(path, "diff", "--name-only", f"{since}...{tip}", timeout=GIT_TIMEOUT),
        git.run_async(path, "rev-list", "--count", f"{since}..{tip}", timeout=GIT_TIMEOUT),
    )
    got = (int(count.strip()) if count.strip().isdigit() else 0, [f for f in files.splitlines() if f])
    if key is not None and code_f == 0 and code_n == 0:  # a failure or a timeout is not kept
        _AHEAD[key] = got
        while len(_AHEAD) > AHEAD_KEPT:
            _AHEAD.popitem(last=False)
    return got


async def context_of(
    path: str, base: str | None, *, head: str | None = None, base_head: str | None = None
) -> dict:
    """Changed (uncommitted) files and files/commits ahead of `base` in one worktree. `head` and
    `base_head`: the commits the worktree and `base` are at (from `worktrees`), when known."""
    status_task = git.run_async(path, *git.STATUS_ARGS, timeout=GIT_TIMEOUT)
    branch = current_branch(path)
    ahead_files: list[str] = []
    ahead = 0
    if base and branch and branch != base:
        ahead, ahead_files = await _ahead_of(path, base, head, base_head)
    _, status = await status_task
    modified, untracked = git.parse_status(status)
    changed = modified + untracked
    return {
        "path": path,
        "branch": branch,
        "uncommitted": [c for c in changed if not c.startswith(".thrum/")],
        "ahead": ahead,
        "ahead_files": ahead_files,
        "base": base,
    }

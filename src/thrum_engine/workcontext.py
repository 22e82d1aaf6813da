"""Live git work context of worktrees (branch, changed files, commits ahead), read with
`git` subprocesses off the event loop, each bounded by a timeout."""

from __future__ import annotations

import asyncio

from thrum_engine import git
from thrum_engine.layout import current_branch

GIT_TIMEOUT = 10.0


async def worktrees(repo: str) -> list[dict]:
    """`git worktree list --porcelain` as dicts (path, branch, head), the sync worktree excluded."""
    _, out = await git.run_async(repo, "worktree", "list", "--porcelain", timeout=GIT_TIMEOUT)
    return [t for t in git.parse_worktrees(out) if not git.is_sync_worktree(t["path"])]


def default_branch(repo: str) -> str | None:
    """The branch work merges into: the main checkout's branch (read from its HEAD file, no git)."""
    return current_branch(repo)


async def context_of(path: str, base: str | None) -> dict:
    """Changed (uncommitted) files and files/commits ahead of `base` in one worktree."""
    status_task = git.run_async(path, *git.STATUS_ARGS, timeout=GIT_TIMEOUT)
    branch = current_branch(path)
    ahead_files: list[str] = []
    ahead = 0
    if base and branch and branch != base:
        (_, files), (_, count) = await asyncio.gather(
            git.run_async(path, "diff", "--name-only", f"{base}...HEAD", timeout=GIT_TIMEOUT),
            git.run_async(path, "rev-list", "--count", f"{base}..HEAD", timeout=GIT_TIMEOUT),
        )
        ahead_files = [f for f in files.splitlines() if f]
        ahead = int(count.strip()) if count.strip().isdigit() else 0
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

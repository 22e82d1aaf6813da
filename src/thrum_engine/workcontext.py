"""Live git work context of worktrees (branch, changed files, commits ahead), read with
`git` subprocesses off the event loop, each bounded by a timeout."""

from __future__ import annotations

import asyncio
import os

from thrum_engine.layout import current_branch

GIT_TIMEOUT = 10.0


async def git(cwd: str, *args: str) -> tuple[int, str]:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, ""
    return proc.returncode or 0, out.decode("utf-8", "replace")


async def worktrees(repo: str) -> list[dict]:
    """`git worktree list --porcelain` as dicts (path, branch, head), the sync worktree excluded."""
    code, out = await git(repo, "worktree", "list", "--porcelain")
    result: list[dict] = []
    cur: dict = {}
    for line in out.splitlines() + [""]:
        if not line:
            if cur.get("path") and "thrum-sync" not in cur["path"].split(os.sep):
                result.append(cur)
            cur = {}
        elif line.startswith("worktree "):
            cur = {"path": line[9:], "branch": None, "head": None}
        elif line.startswith("HEAD "):
            cur["head"] = line[5:]
        elif line.startswith("branch "):
            cur["branch"] = line[7:].removeprefix("refs/heads/")
    return result


async def default_branch(repo: str) -> str | None:
    """The branch work merges into: the main checkout's branch."""
    return current_branch(repo)


async def context_of(path: str, base: str | None) -> dict:
    """Changed (uncommitted) files and files/commits ahead of `base` in one worktree."""
    status_task = git(path, "status", "--porcelain", "-z", "--untracked-files=all")
    branch = current_branch(path)
    ahead_files: list[str] = []
    ahead = 0
    if base and branch and branch != base:
        (_, files), (_, count) = await asyncio.gather(
            git(path, "diff", "--name-only", f"{base}...HEAD"),
            git(path, "rev-list", "--count", f"{base}..HEAD"),
        )
        ahead_files = [f for f in files.splitlines() if f]
        ahead = int(count.strip() or 0) if count.strip().isdigit() else 0
    _, status = await status_task
    changed = []
    entries = status.split("\0")
    i = 0
    while i < len(entries):
        e = entries[i]
        if len(e) > 3:
            changed.append(e[3:])
            if e[0] in "RC":
                i += 1  # the rename source follows
        i += 1
    return {
        "path": path,
        "branch": branch,
        "uncommitted": [c for c in changed if not c.startswith(".thrum/")],
        "ahead": ahead,
        "ahead_files": ahead_files,
        "base": base,
    }

"""Every git command Thrum runs, and the parsers of git's porcelain output.

One way to run git: never prompting, in the C locale, with a commit identity when the machine has
none, bounded in time. `run` blocks (the CLI, and engine code already in a worker thread);
`run_async` is for the event loop. Stdlib only and cheap to import: the CLI uses it too.
"""

from __future__ import annotations

import os
import subprocess

from thrum_engine.errors import ThrumError

TIMEOUT_SECONDS = 60.0
_IDENTITY = {
    "GIT_AUTHOR_NAME": "thrum",
    "GIT_AUTHOR_EMAIL": "thrum@localhost",
    "GIT_COMMITTER_NAME": "thrum",
    "GIT_COMMITTER_EMAIL": "thrum@localhost",
}


class GitFailed(ThrumError):
    """A git command that exited non-zero (or ran out of time): git's last line of complaint."""

    def __init__(self, args: tuple[str, ...], code: int, stderr: str) -> None:
        lines = stderr.strip().splitlines()
        super().__init__(f"git {args[0] if args else ''} failed: {lines[-1] if lines else code}")
        self.exit_code = code


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment git runs in: no prompts (a credential helper never waits on a terminal), C
    messages, no optional index locks (reads never contend with an agent's own git), an identity
    for commit-tree on a machine with none configured."""
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    for k, v in _IDENTITY.items():
        env.setdefault(k, v)
    if extra:
        env.update(extra)
    return env


def run(
    cwd: str,
    *args: str,
    check: bool = True,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> str:
    """`git ARGS` in `cwd`: its stdout without the trailing newline. `check`: a failure raises
    GitFailed; without it a failed command returns what it printed (often "")."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=git_env(env),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        if check:
            raise GitFailed(args, 124, f"timed out after {timeout:g}s") from None
        return ""
    if check and proc.returncode != 0:
        raise GitFailed(args, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout.rstrip("\n")


def ok(cwd: str, *args: str) -> bool:
    """Whether `git ARGS` succeeds (a ref exists, a name is valid, ...)."""
    try:
        subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=git_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            check=True,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return False
    return True


async def run_async(cwd: str, *args: str, timeout: float = 10.0) -> tuple[int, str]:
    """`git ARGS` from the event loop without a thread: (exit code, stdout); 124 when it ran out
    of time (and was killed). Reads only: stderr is dropped."""
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=git_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, ""
    return proc.returncode or 0, out.decode("utf-8", "replace")


# -- porcelain parsers --


def parse_worktrees(out: str) -> list[dict]:
    """`git worktree list --porcelain` as dicts: path, head, branch (without refs/heads/; None when
    detached), prunable. The main checkout is first, as git lists it."""
    trees: list[dict] = []
    cur: dict = {}
    for line in [*out.splitlines(), ""]:
        if not line:
            if cur:
                trees.append(cur)
            cur = {}
        elif line.startswith("worktree "):
            cur = {"path": line[9:], "branch": None, "head": None, "prunable": False}
        elif line.startswith("HEAD "):
            cur["head"] = line[5:]
        elif line.startswith("branch "):
            cur["branch"] = line[7:].removeprefix("refs/heads/")
        elif line.startswith("prunable"):
            cur["prunable"] = True
    return trees


def is_sync_worktree(path: str) -> bool:
    """Thrum's own checkout of the journal branch (under .git/thrum-sync), never an agent's."""
    return "thrum-sync" in path.split(os.sep)


def parse_status(out: str) -> tuple[list[str], list[str]]:
    """`git status --porcelain -z`: (modified or staged files, untracked files), exactly what git
    shows (Thrum's own files stay out through info/exclude, not by filtering here)."""
    changed: list[str] = []
    untracked: list[str] = []
    entries = out.split("\0")
    i = 0
    while i < len(entries):
        e = entries[i]
        i += 1
        if len(e) < 4:
            continue
        (untracked if e[:2] == "??" else changed).append(e[3:])
        if e[0] in "RC":
            i += 1  # the rename's source path follows
    return changed, untracked


STATUS_ARGS = ("status", "--porcelain", "-z", "--untracked-files=all")

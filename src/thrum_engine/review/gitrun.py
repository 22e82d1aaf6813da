"""The review package's one door to git. Every git command the review subsystem runs goes through
`run_git`, so moving it onto the shared `thrum_engine.git` module is a one-line change here.

Blocking (a child process): callers on the event loop use `asyncio.to_thread`."""

from __future__ import annotations

import os
import subprocess

from thrum_engine.errors import ThrumError

GIT_TIMEOUT_SECONDS = 60.0
_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"}
# A merge commit needs an identity: a machine with none configured gets Thrum's (`with_identity`).
IDENTITY = {
    "GIT_AUTHOR_NAME": "thrum",
    "GIT_AUTHOR_EMAIL": "thrum@localhost",
    "GIT_COMMITTER_NAME": "thrum",
    "GIT_COMMITTER_EMAIL": "thrum@localhost",
}


class GitFailed(ThrumError):
    """A git command that should have worked did not; `stderr` is git's own word."""

    def __init__(self, message: str, exit_code: int = 1, stderr: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr = stderr


def run_git(
    cwd: str,
    *args: str,
    check: bool = True,
    input: str | None = None,
    ok_codes: tuple[int, ...] = (0,),
    env: dict[str, str] | None = None,
) -> tuple[int, str]:
    """(exit code, stdout) of one git command, never prompting, bounded in time. Argument lists only:
    nothing reaches a shell."""
    env = {**os.environ, **_ENV, **(env or {})}
    try:
        proc = subprocess.run(
            ["git", *args],
            check=False,
            cwd=cwd,
            env=env,
            input=input,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=GIT_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise GitFailed(f"git {args[0]} took longer than {GIT_TIMEOUT_SECONDS:g}s") from None
    except OSError as exc:
        raise GitFailed(f"git {args[0]} could not run: {exc}") from None
    if check and proc.returncode not in ok_codes:
        msg = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise GitFailed(
            f"git {args[0]} failed: {msg[-1] if msg else proc.returncode}", proc.returncode, proc.stderr
        )
    return proc.returncode, proc.stdout


def identity_env(cwd: str) -> dict[str, str]:
    """Thrum's identity for a commit, only where git has none of its own (config or environment)."""
    code, _ = run_git(cwd, "var", "GIT_COMMITTER_IDENT", check=False)
    return {} if code == 0 else dict(IDENTITY)

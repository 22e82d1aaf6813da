"""The review package's name for `thrum_engine.git`: `run_git` keeps the review modules'
(exit code, stdout) shape over `git.call`. Once nothing else edits those modules this session, they
can call `thrum_engine.git` directly and this file goes.

Blocking (a child process): callers on the event loop use `asyncio.to_thread`."""

from __future__ import annotations

from thrum_engine import git
from thrum_engine.git import IDENTITY, GitFailed, identity_env

__all__ = ["IDENTITY", "GitFailed", "identity_env", "run_git"]


def run_git(
    cwd: str,
    *args: str,
    check: bool = True,
    input: str | None = None,
    ok_codes: tuple[int, ...] = (0,),
    env: dict[str, str] | None = None,
) -> tuple[int, str]:
    """(exit code, stdout) of one git command. The identity is only what `env` brings
    (`identity_env`): a review's commits carry the user's own where git has one."""
    done = git.call(cwd, *args, stdin=input, env=env, identity=False)
    if check and done.code not in ok_codes:
        raise GitFailed.of(args, done)
    return done.code, done.out

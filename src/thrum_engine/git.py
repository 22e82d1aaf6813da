"""Every git command Thrum runs, and the parsers of git's porcelain output.

One way to run git: never prompting, in the C locale, with a commit identity when the machine has
none, bounded in time, never redirected by a hook's GIT_DIR. `run` blocks and returns stdout (the
CLI, and engine code already in a worker thread); `call` blocks and returns the exit code and both
streams, for commands whose exit code is the answer; `run_async` is for the event loop. Stdlib only
and cheap to import: the CLI uses it too.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from thrum_engine.errors import ThrumError
from thrum_engine.files import write_private

TYPE_CHECKING = False  # `typing` is not imported for this: the CLI imports this module
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import TypedDict, Unpack

    class Options(TypedDict, total=False):
        """`call`'s keywords after `check`, for the functions that pass them on."""

        stdin: str | bytes | None
        env: Mapping[str, str] | None
        timeout: float
        nice: int
        config: Mapping[str, str] | None
        identity: bool
        private: bool


TIMEOUT_SECONDS = 60.0
# For git that stores Thrum's own data (the journal branch's blobs, trees and commits, fetched or
# made here): loose objects are born 0444 under the user's umask, readable by every local user even
# where the journal's files are 0600. Set in the child by subprocess itself (no preexec_fn, which is
# unsafe in a threaded process). A repository shared on purpose (core.sharedRepository) still gets
# its group bits: git widens what it writes to what that setting asks.
PRIVATE_UMASK = 0o077
TIMED_OUT = 124  # the exit code a timeout reports, as timeout(1) does
IDENTITY = {
    "GIT_AUTHOR_NAME": "thrum",
    "GIT_AUTHOR_EMAIL": "thrum@localhost",
    "GIT_COMMITTER_NAME": "thrum",
    "GIT_COMMITTER_EMAIL": "thrum@localhost",
}
_NO_PROMPT = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "/bin/echo",
    "SSH_ASKPASS": "/bin/echo",
    "GCM_INTERACTIVE": "never",
    "GIT_OPTIONAL_LOCKS": "0",
    "LC_ALL": "C",
}
# Set by git for its hooks: inherited, they would point every command at the hook's repository
# instead of the `cwd` each call names.
_REDIRECTS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")


def complaint(text: str) -> str:
    """git's reason in its output: the first `fatal:` or `error:` line (what went wrong), not the
    last line, which is often advice ("Please make sure you have the correct access rights / and
    the repository exists."); the last line when git gave neither."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("fatal:", "error:")):
            return ln
    return lines[-1] if lines else ""


class GitFailed(ThrumError):
    """A git command that exited non-zero, ran out of time or could not start. The message is one
    line (git's reason, `complaint`); `stderr` is all of it."""

    def __init__(self, message: str, exit_code: int = 1, stderr: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr = stderr

    @classmethod
    def of(cls, args: tuple[str, ...], done: Completed) -> GitFailed:
        """The failure of `done`, named after its subcommand, with git's last line of complaint."""
        what = complaint(done.err) or complaint(done.out) or done.code
        return cls(f"git {args[0] if args else ''} failed: {what}", done.code, done.err)


class Completed:
    """One finished git command. `raw` keeps stdout's bytes for blobs and `-z` listings; `out` is
    the text, decoded as `subprocess(text=True)` would (invalid UTF-8 replaced, newlines folded).
    A plain class: `dataclasses` would add `re` and `inspect` to the CLI's imports."""

    __slots__ = ("code", "raw", "raw_err")

    def __init__(self, code: int, raw: bytes, raw_err: bytes) -> None:
        self.code = code
        self.raw = raw
        self.raw_err = raw_err

    @property
    def out(self) -> str:
        return _text(self.raw)

    @property
    def err(self) -> str:
        return _text(self.raw_err)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


def git_env(extra: Mapping[str, str] | None = None, *, identity: bool = True) -> dict[str, str]:
    """The environment git runs in: no prompts (a credential helper never waits on a terminal), C
    messages (parsed in places), no optional index locks (reads never contend with an agent's own
    git), no hook redirects. `identity`: Thrum's commit identity where the environment has none, so
    plumbing commits work on a machine with nothing configured (`identity_env` for commits that
    should carry the user's own)."""
    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTS}
    env.update(_NO_PROMPT)
    if identity:
        for k, v in IDENTITY.items():
            env.setdefault(k, v)
    if extra:
        env.update(extra)
    return env


_nice_bin: list[str] | None = None


def _argv(args: tuple[str, ...], config: Mapping[str, str] | None, nice: int) -> list[str]:
    """The command line: `nice` in front for background work (a child's priority without a
    preexec_fn, which is unsafe in a threaded process), `-c` settings before the subcommand."""
    global _nice_bin
    argv = ["git"]
    for key, value in (config or {}).items():
        argv += ["-c", f"{key}={value}"]
    argv += args
    if nice:
        if _nice_bin is None:
            import shutil  # only here: few commands are niced, and the CLI never asks

            found = shutil.which("nice")
            _nice_bin = [found] if found else []
        if _nice_bin:
            argv = [*_nice_bin, "-n", str(nice), *argv]
    return argv


def call(
    cwd: str,
    *args: str,
    check: bool = False,
    stdin: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT_SECONDS,
    nice: int = 0,
    config: Mapping[str, str] | None = None,
    identity: bool = True,
    private: bool = False,
) -> Completed:
    """`git ARGS` in `cwd`, for commands whose exit code is an answer (`merge-base --is-ancestor`,
    a push that may be rejected). A non-zero exit raises only with `check`; a timeout or a git that
    cannot start always raises GitFailed, since neither says anything about the repository.
    `private`: git writes under umask 077 (`PRIVATE_UMASK`)."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    try:
        proc = subprocess.run(
            _argv(args, config, nice),
            cwd=cwd,
            env=git_env(env, identity=identity),
            input=data,
            stdin=None if data is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
            umask=PRIVATE_UMASK if private else -1,
        )
    except subprocess.TimeoutExpired:
        raise GitFailed(f"git {args[0]} failed: timed out after {timeout:g}s", TIMED_OUT) from None
    except OSError as exc:
        raise GitFailed(f"git {args[0]} could not run: {exc.strerror or exc}") from None
    done = Completed(proc.returncode, proc.stdout, proc.stderr)
    if check and done.code != 0:
        raise GitFailed.of(args, done)
    return done


def run(cwd: str, *args: str, check: bool = True, **options: Unpack[Options]) -> str:
    """`git ARGS` in `cwd`: its stdout without the trailing newline. `check`: a non-zero exit
    raises GitFailed; without it a failed command returns what it printed (often ""). `options`
    are `call`'s."""
    return call(cwd, *args, check=check, **options).out.rstrip("\n")


def ok(cwd: str, *args: str) -> bool:
    """Whether `git ARGS` succeeds (a ref exists, a name is valid, ...); a timeout is a no."""
    try:
        return call(cwd, *args).code == 0
    except GitFailed:
        return False


def identity_env(cwd: str) -> dict[str, str]:
    """Thrum's identity for a commit that should carry the user's own (a review's merge), only
    where git has none (config or environment): pass it with `identity=False`."""
    has_one = call(cwd, "var", "GIT_COMMITTER_IDENT", identity=False).code == 0
    return {} if has_one else dict(IDENTITY)


async def run_async(
    cwd: str,
    *args: str,
    timeout: float = 10.0,
    stdin: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    nice: int = 0,
    config: Mapping[str, str] | None = None,
    private: bool = False,
) -> tuple[int, str]:
    """`git ARGS` from the event loop without a thread: (exit code, stdout); TIMED_OUT when it ran
    out of time (and was killed). Reads mostly: stderr is dropped."""
    import asyncio

    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = await asyncio.create_subprocess_exec(
        *_argv(args, config, nice),
        cwd=cwd,
        env=git_env(env),
        stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        umask=PRIVATE_UMASK if private else -1,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(data), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return TIMED_OUT, ""
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


def in_journal_folder(path: str) -> bool:
    """A path under Thrum's own checkouts of the journal branch (.git/thrum-sync), never an agent's
    worktree: what `worktree list` leaves out. A path test only; `gitsync.is_sync_worktree` checks
    that a folder really is the journal's worktree before sync touches it."""
    return "thrum-sync" in path.split(os.sep)


def relink(worktree: str, common: str) -> bool:
    """Point a copied journal worktree back at this repository. A copy of the repository (cp -a,
    rsync, a restored backup) carries the worktree's two link files (gitrepository-layout: the
    worktree's `.git` file and `worktrees/<id>/gitdir`), which still name the original's paths: the
    copy's sync would commit into the original's repository, and `git worktree repair` run in the
    copy rewrites the original's links instead. Returns whether the links were rewritten."""
    dotgit = os.path.join(worktree, ".git")
    try:
        with open(dotgit, encoding="utf-8") as fh:
            text = fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return False
    if not text.startswith("gitdir: "):
        return False
    admin = text[len("gitdir: ") :]
    if not os.path.isabs(admin):
        admin = os.path.join(worktree, admin)
    ours = os.path.join(common, "worktrees", os.path.basename(os.path.normpath(admin)))
    back = os.path.join(ours, "gitdir")
    try:
        with open(back, encoding="utf-8") as fh:
            points_back = os.path.realpath(fh.read().strip()) == os.path.realpath(dotgit)
    except (OSError, UnicodeDecodeError):
        points_back = False
    if os.path.realpath(admin) == os.path.realpath(ours) and points_back:
        return False
    if not os.path.isdir(ours):
        return False  # not a copy of a Thrum journal worktree: `thrum init` recreates it
    write_private(dotgit, f"gitdir: {ours}\n")
    write_private(back, f"{os.path.abspath(dotgit)}\n")
    return True


def sync_worktree_state(repo: str, worktree: str, branch: str, common: str) -> str:
    """ "ok" (a worktree of `repo`, whose git dir is `common`), "missing" (gone, or only empty folders
    left: what the engine made of it), "blocked" (files there that are no worktree's: never
    touched), or "no-branch"."""
    if os.path.exists(os.path.join(worktree, ".git")):
        found = run(worktree, "rev-parse", "--git-common-dir", check=False)
        found = found if not found or os.path.isabs(found) else os.path.join(worktree, found)
        return "ok" if found and os.path.realpath(found) == os.path.realpath(common) else "blocked"
    if not ok(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"):
        return "no-branch"
    for _dir, _subdirs, files in os.walk(worktree):
        if files:
            return "blocked"
    return "missing"


def repair_sync_worktree(repo: str, worktree: str, branch: str, common: str) -> str:
    """Put the journal's worktree right before anything uses it: a copied one is linked to this
    repository (`relink`); one that is gone (rm -rf, a cleanup tool) is checked out again from its
    branch, which holds every line a sync cycle committed, but only where nothing is lost (no file
    there). Returns what was done: "relinked", "restored" or "". `common`: the repository's git dir.
    A worktree in place costs no git process (an engine start runs this). Git runs private: it
    checks out messages."""
    if relink(worktree, common):
        return "relinked"
    if os.path.isfile(os.path.join(worktree, ".git")):
        return ""  # linked here (relink looked), or somewhere sync refuses: nothing to restore
    if sync_worktree_state(repo, worktree, branch, common) != "missing":
        return ""
    shutil.rmtree(worktree, ignore_errors=True)  # the empty folders an engine made meanwhile
    run(repo, "worktree", "prune", private=True)
    os.makedirs(os.path.dirname(worktree), mode=0o700, exist_ok=True)
    run(repo, "worktree", "add", "--quiet", worktree, branch, private=True)
    return "restored"


def porcelain(out: str) -> Iterator[tuple[str, str]]:
    """(XY, path) of each entry of `git status --porcelain -z`; a rename's or copy's source path,
    which follows its entry, is passed over."""
    entries = out.split("\0")
    i = 0
    while i < len(entries):
        e = entries[i]
        i += 1
        if len(e) < 4:
            continue
        yield e[:2], e[3:]
        if e[0] in "RC":
            i += 1


def parse_status(out: str) -> tuple[list[str], list[str]]:
    """`git status --porcelain -z`: (modified or staged files, untracked files), exactly what git
    shows (Thrum's own files stay out through info/exclude, not by filtering here)."""
    changed: list[str] = []
    untracked: list[str] = []
    for xy, path in porcelain(out):
        if xy != "!!":
            (untracked if xy == "??" else changed).append(path)
    return changed, untracked


STATUS_ARGS = ("status", "--porcelain", "-z", "--untracked-files=all")


# Ignored entries as the teardown weighs them: a file one by one (a `.env` typed by hand), a
# directory an ignore rule matches as a whole once, with its `/` (`node_modules/`, `.venv/`,
# `__pycache__/`: build output), never walked into.
IGNORED_ARGS = ("status", "--porcelain", "-z", "--ignored=matching", "--untracked-files=all")


def parse_ignored(out: str) -> list[str]:
    """The ignored entries (`!! path`) of `git status --porcelain -z --ignored`, in git's order."""
    return [path for xy, path in porcelain(out) if xy == "!!"]

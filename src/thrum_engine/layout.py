"""Where things live on disk: the repo, its worktrees, `.thrum/` and its files.

Stdlib only (just `os`): every CLI call resolves paths before anything else, so
this module must cost nothing to import and must never spawn git.
"""

import os

STATE_DIR = ".thrum"
SYNC_BRANCH = "a-sync"
SOCKET_NAME = "thrum.sock"
MAX_SOCKET_PATH = 107


class NotARepo(Exception):
    """Raised when no git repository contains the given directory."""


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip()


def worktree_root(start: str) -> str | None:
    """The top of the git worktree containing `start` (a dir holding `.git`)."""
    path = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def common_git_dir(worktree: str) -> str:
    """The shared `.git` directory of a worktree (follows a linked worktree's `.git` file)."""
    dotgit = os.path.join(worktree, ".git")
    if os.path.isdir(dotgit):
        return dotgit
    content = _read(dotgit)
    if not content.startswith("gitdir:"):
        raise NotARepo(f"{dotgit} is not a git link file")
    gitdir = content[len("gitdir:") :].strip()
    if not os.path.isabs(gitdir):
        gitdir = os.path.normpath(os.path.join(worktree, gitdir))
    commondir_file = os.path.join(gitdir, "commondir")
    if os.path.exists(commondir_file):
        common = _read(commondir_file)
        if not os.path.isabs(common):
            common = os.path.normpath(os.path.join(gitdir, common))
        return common
    return gitdir


# What Thrum writes into a checkout that git must never pick up: `.thrum/` (identities hold absolute
# paths and session ids) and the `.beads/redirect` worktrees get. The rule lives in the common
# `.git/info/exclude`, which every worktree reads, so no branch can commit them (walk bug 1); a
# `.gitignore` entry would reach only branches made after it was committed.
EXCLUDED = (f"{STATE_DIR}/", ".beads/redirect")


def exclude_thrum_state(repo: str) -> list[str]:
    """Add the missing EXCLUDED rules to `<common git dir>/info/exclude`; returns those added."""
    path = os.path.join(common_git_dir(repo), "info", "exclude")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        text = ""
    missing = [rule for rule in EXCLUDED if rule not in text.split()]
    if missing:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(
                ("" if not text or text.endswith("\n") else "\n")
                + "# thrum: local agent state\n"
                + "".join(rule + "\n" for rule in missing)
            )
    return missing


def worktree_git_dir(worktree: str) -> str:
    """The per-worktree git dir (holds HEAD): `.git` itself or `.git/worktrees/<x>`."""
    dotgit = os.path.join(worktree, ".git")
    if os.path.isdir(dotgit):
        return dotgit
    gitdir = _read(dotgit)[len("gitdir:") :].strip()
    return gitdir if os.path.isabs(gitdir) else os.path.normpath(os.path.join(worktree, gitdir))


def main_repo_of(worktree: str) -> str:
    """The main checkout a worktree belongs to (the parent of the common `.git`)."""
    redirect = os.path.join(worktree, STATE_DIR, "redirect")
    if os.path.exists(redirect):
        target = _read(redirect)
        # The redirect names the main repo's `.thrum` directory.
        return os.path.dirname(target.rstrip("/")) if target.rstrip("/").endswith(STATE_DIR) else target
    return os.path.dirname(common_git_dir(worktree))


def _recorded_worktree(entry: str) -> str:
    """The real path of the worktree that the admin entry `<common git dir>/worktrees/<id>` records
    (its `gitdir` file names `<worktree>/.git`; relative to the entry when git wrote it relative)."""
    gitfile = _read(os.path.join(entry, "gitdir"))
    return os.path.realpath(os.path.dirname(os.path.join(entry, gitfile)))


def registered_worktrees(repo: str) -> set[str]:
    """Real paths of `repo`'s worktrees as git itself records them: the main checkout plus each
    `<common git dir>/worktrees/<id>/gitdir` (what `git worktree list` reads), without spawning git."""
    found = {os.path.realpath(repo)}
    admin = os.path.join(common_git_dir(repo), "worktrees")
    try:
        entries = os.listdir(admin)
    except OSError:
        return found
    for entry in entries:
        try:
            found.add(_recorded_worktree(os.path.join(admin, entry)))
        except OSError:
            continue
    return found


def is_registered(repo: str, real: str) -> bool:
    """`real in registered_worktrees(repo)`, for `repo` and `real` real paths, reading one admin entry
    instead of all of them: the entry the worktree's own `.git` file names, when it names `real` back.
    The engine asks this on every connection (the peer's worktree), and a team of 50 worktrees made the
    whole list 0.66 ms of the loop a call; anything the shortcut does not confirm gets the whole list."""
    if real == repo:
        return True
    try:
        entry = os.path.realpath(worktree_git_dir(real))
        admin = os.path.realpath(os.path.join(common_git_dir(repo), "worktrees"))
        if os.path.dirname(entry) == admin and _recorded_worktree(entry) == real:
            return True
    except OSError:
        pass
    return real in registered_worktrees(repo)


def worktree_of(repo: str, cwd: str) -> str | None:
    """The worktree of `repo` containing `cwd` (its real path), or None. A directory that merely looks
    like one (a `.git` and a `.thrum/redirect` naming the repo) but is not in git's own list is None."""
    wt = worktree_root(cwd)
    if wt is None:
        return None
    try:
        repo_real = os.path.realpath(repo)
        if os.path.realpath(main_repo_of(wt)) != repo_real:
            return None
        real = os.path.realpath(wt)
        return real if is_registered(repo_real, real) else None
    except (OSError, NotARepo):
        return None


def _head(worktree: str) -> str:
    """The worktree's HEAD file: `ref: refs/heads/<branch>`, or a commit id when detached; '' unread."""
    try:
        return _read(os.path.join(worktree_git_dir(worktree), "HEAD"))
    except OSError:
        return ""


def _branch_in(head: str) -> str | None:
    return head[len("ref: refs/heads/") :] if head.startswith("ref: refs/heads/") else None


def current_branch(worktree: str) -> str | None:
    """Branch checked out in `worktree`, read from HEAD without spawning git; None when detached."""
    return _branch_in(_head(worktree))


_HEX = frozenset("0123456789abcdef")


def _commit_id(text: str | None) -> str | None:
    return text if text and len(text) in (40, 64) and _HEX.issuperset(text) else None


def branch_commit(repo: str, branch: str) -> str | None:
    """The commit `branch` points at, read from git's files as git reads them (the loose ref, else
    its line in packed-refs) without spawning git; None when it cannot be read so (a reftable
    store, a missing branch): then ask git."""
    common = common_git_dir(repo)
    try:
        return _commit_id(_read(os.path.join(common, "refs", "heads", branch)))
    except OSError:
        pass
    want = " refs/heads/" + branch
    try:
        with open(os.path.join(common, "packed-refs"), encoding="utf-8") as fh:
            for line in fh:
                line = line.rstrip("\n")
                if line.endswith(want):
                    return _commit_id(line[: -len(want)])
    except OSError:
        pass
    return None


def head_commit(worktree: str) -> str | None:
    """The commit checked out in `worktree` (detached, or its branch's), from its HEAD file."""
    head = _head(worktree)
    branch = _branch_in(head)
    return branch_commit(worktree, branch) if branch is not None else _commit_id(head)


def socket_fallback_dir() -> str:
    """Where sockets go when the repo's own path is too long: a per-user directory outside the repo,
    which the engine creates 0700 and refuses unless it is ours alone (another user may have made it)."""
    return os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/thrum-{os.getuid()}"


class BadThrumHome(NotARepo):
    """THRUM_HOME names something other than a repo or worktree root."""


def thrum_home() -> str | None:
    """THRUM_HOME, checked: the directory that contains `.thrum` (a repo or worktree root), as upstream
    means it. A value naming the `.thrum` folder itself, or a directory outside every checkout, is
    refused rather than followed: following it would create a second store and a second engine."""
    home = os.environ.get("THRUM_HOME")
    if not home:
        return None
    path = os.path.realpath(home)
    if os.path.basename(path) == STATE_DIR:
        raise BadThrumHome(
            f"THRUM_HOME={home} is a {STATE_DIR} folder: set it to the directory that contains it"
            f" ({os.path.dirname(path)})"
        )
    if not os.path.isdir(path) or not os.path.exists(os.path.join(path, ".git")):
        raise BadThrumHome(
            f"THRUM_HOME={home} is not a repository or worktree root: set it to the directory that"
            f" contains {STATE_DIR}, or unset it"
        )
    return path


class Layout:
    """Paths of one repository's Thrum state, computed once from a directory inside it."""

    def __init__(self, repo: str, worktree: str | None = None) -> None:
        self.repo = os.path.realpath(repo)
        self.worktree = os.path.realpath(worktree) if worktree else self.repo
        self.state = os.path.join(self.repo, STATE_DIR)

    @classmethod
    def discover(cls, start: str | None = None) -> "Layout":
        """`start` (--repo) first, then THRUM_HOME, then the cwd. THRUM_HOME pins the repo whatever the
        cwd, but a cwd inside one of that repo's own worktrees keeps its worktree (and so its identity)."""
        home = thrum_home()
        if start is None and home is not None:
            repo = main_repo_of(home)
            here = worktree_root(os.getcwd())
            same = here is not None and os.path.realpath(main_repo_of(here)) == os.path.realpath(repo)
            return cls(repo, here if same else home)
        start = start or os.getcwd()
        wt = worktree_root(start)
        if wt is None:
            raise NotARepo(f"not inside a git repository: {os.path.abspath(start)}")
        return cls(main_repo_of(wt), wt)

    # -- shared state (main repo) --
    @property
    def var(self) -> str:
        return os.path.join(self.state, "var")

    @property
    def clone_file(self) -> str:
        """This clone's id, which names the journal shards it writes (machine-local, never synced)."""
        return os.path.join(self.var, "clone")

    @property
    def config_file(self) -> str:
        return os.path.join(self.state, "config.json")

    @property
    def context_dir(self) -> str:
        return os.path.join(self.state, "context")

    @property
    def db_path(self) -> str:
        return os.path.join(self.var, "thrum.db")

    @property
    def local_session_path(self) -> str:
        """Present while an engine started with `--local` has not been stopped: a crash or reboot
        keeps it, so the engine a later command starts is local-only too (walk B, 6)."""
        return os.path.join(self.var, "local-session")

    @property
    def lock_path(self) -> str:
        return os.path.join(self.var, "thrum.lock")

    @property
    def pid_path(self) -> str:
        return os.path.join(self.var, "thrum.pid")

    @property
    def log_path(self) -> str:
        return os.path.join(self.var, "daemon.log")

    @property
    def quarantine_dir(self) -> str:
        return os.path.join(self.var, "quarantine")

    @property
    def socket_path(self) -> str:
        env = os.environ.get("THRUM_SOCKET")
        if env:
            return env
        path = os.path.join(self.var, SOCKET_NAME)
        if len(path.encode()) <= MAX_SOCKET_PATH:
            return path
        # Deep repo paths overflow sun_path: fall back to a short per-user path keyed by the repo.
        import hashlib

        digest = hashlib.sha1(self.repo.encode()).hexdigest()[:16]
        return os.path.join(socket_fallback_dir(), f"{digest}.sock")

    def served_engine(self) -> tuple[str, int] | None:
        """(socket, pid) the running engine recorded in its pid file, when the socket is not
        `socket_path`: an engine started by a command whose environment named another THRUM_SOCKET
        serves there, and every other caller finds it through this (contract walk, session 22: one
        such command locked every agent out). Whoever answers there must be that pid: a stale file
        naming a socket another repo's engine took since must not send this repo's calls there.
        Read only once `socket_path` did not answer."""
        import json

        try:
            with open(self.pid_path, encoding="utf-8") as fh:
                data = json.load(fh)
            path, pid = data.get("socket"), data.get("pid")
        except (OSError, ValueError, AttributeError):
            return None
        if not (isinstance(path, str) and path and path != self.socket_path and type(pid) is int):
            return None
        return path, pid

    @property
    def git_dir(self) -> str:
        return common_git_dir(self.repo)

    @property
    def sync_worktree(self) -> str:
        return os.path.join(self.git_dir, "thrum-sync", SYNC_BRANCH)

    @property
    def journal_dir(self) -> str:
        return os.path.join(self.sync_worktree, "journal")

    def initialized(self) -> bool:
        return os.path.exists(self.config_file)

    # -- per worktree --
    def identities_dir(self, worktree: str | None = None) -> str:
        return os.path.join(worktree or self.worktree, STATE_DIR, "identities")

    def identity_path(self, name: str, worktree: str | None = None) -> str:
        return os.path.join(self.identities_dir(worktree), f"{name}.json")

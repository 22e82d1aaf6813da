"""The git side of sync, on the journal's own worktree (`.git/thrum-sync/a-sync`): blocking, so the
sync service runs it off the event loop.

Everything is plumbing on that worktree's own index: `commit-tree` and `update-ref` run no hooks and
never touch the user's index or branches; the fetch goes to a ref under `refs/thrum/`; the push
passes `--no-verify` with hooks pointed at /dev/null. The merge is Thrum's own, by file ownership:
every shard has exactly one writer (`<author>@<clone>.jsonl`), so this clone's shards always keep
its version and another clone's shards take the remote's, provided the remote's only grew (shards
are append-only). Two writers therefore never produce a conflict that stops sync.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field

from thrum_engine import git as gitrun
from thrum_engine.files import private_dir, write_private, write_scratch
from thrum_engine.git import GitFailed
from thrum_engine.journal import CLONE_SEP, SUFFIX
from thrum_engine.layout import SYNC_BRANCH

JOURNAL = "journal"
# Where `commit_local` puts its snapshots for one cycle: in the sync worktree, outside journal/,
# gone when the cycle's commit returns (a crash's leftovers are removed by the next).
SNAPSHOTS = ".thrum-snapshots"
# A shard path in a synced tree: journal/<stem>@<clone>.jsonl, nothing else (no directories, no dots
# that could climb, nothing a remote could use to reach outside the journal).
SHARD_PATH = re.compile(r"^journal/([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)@([a-z0-9]{1,32})\.jsonl$")
GIT_TIMEOUT = 120.0
# Sync's git runs below the engine's priority: on a small machine its hashing and packing would
# otherwise take CPU from the sends it must never slow down.
NICE = 10
# No hooks (the journal worktree is Thrum's, an agent's hooks have no business there) and no
# automatic gc in the middle of a cycle.
CONFIG = {"core.hooksPath": "/dev/null", "gc.auto": "0"}


@dataclass
class MergeResult:
    fetched: str | None = None  # the remote tip merged (None: no remote branch yet)
    updated: list[str] = field(default_factory=list)  # foreign shards that grew
    diverged: list[str] = field(
        default_factory=list
    )  # foreign shards the remote rewrote: kept as we had them
    foreign_own: list[str] = field(default_factory=list)  # the remote carries a shard in our clone's name
    committed: bool = False


def git(cwd: str, *args: str, stdin: bytes | None = None, check: bool = True) -> gitrun.Completed:
    """Sync's git: niced, hookless, no gc, private (what it stores is messages), with sync's longer
    timeout (a fetch over a slow link)."""
    return gitrun.call(
        cwd, *args, check=check, stdin=stdin, timeout=GIT_TIMEOUT, nice=NICE, config=CONFIG, private=True
    )


def out(cwd: str, *args: str) -> str:
    return git(cwd, *args).out.strip()


def head(worktree: str) -> str:
    return out(worktree, "rev-parse", "HEAD")


def tree_entries(worktree: str, rev: str) -> dict[str, tuple[str, int]]:
    """path -> (blob sha, size) of the regular files under journal/ in `rev`."""
    entries: dict[str, tuple[str, int]] = {}
    raw = git(worktree, "ls-tree", "-r", "-l", "-z", rev, "--", JOURNAL + "/").raw
    for item in raw.split(b"\0"):
        if not item:
            continue
        meta, _, path = item.partition(b"\t")
        mode, kind, sha, size = meta.split()
        if kind != b"blob" or mode != b"100644":
            continue  # symlinks, executables, submodules: never part of a journal
        entries[path.decode("utf-8", "replace")] = (sha.decode(), int(size))
    return entries


def own_shard(path: str, clone: str) -> bool:
    return path.endswith(f"{CLONE_SEP}{clone}{SUFFIX}")


def commit_local(worktree: str, clone: str, message: str) -> int:
    """Commit this clone's shard growth, cut at each file's last newline (a batch being written is
    never committed half). Returns how many shards went into the commit (0: nothing, no commit).

    One `git hash-object` stores every grown shard and one `update-index` indexes them, however
    many grew: a process per shard and another to index it was most of a cycle after a burst from
    many agents (111 git processes for 50). Each cut goes to git through a private snapshot file
    (`--stdin-paths`): the shard itself may be growing while git reads it. A shard is read, its
    snapshot written and the bytes dropped before the next, so memory holds one shard at a time."""
    journal = os.path.join(worktree, JOURNAL)
    committed = tree_entries(worktree, "HEAD")
    snaps = os.path.join(worktree, SNAPSHOTS)
    shutil.rmtree(snaps, ignore_errors=True)  # a crashed cycle's leftovers
    changed: list[tuple[str, str]] = []  # (shard path in the tree, its snapshot)
    try:
        for name in sorted(os.listdir(journal)):
            rel = f"{JOURNAL}/{name}"
            if not own_shard(rel, clone) or not SHARD_PATH.match(rel):
                continue
            full = os.path.join(journal, name)
            if os.path.islink(full) or not os.path.isfile(full):
                continue
            size = os.path.getsize(full)
            known = committed.get(rel)
            if known is not None and size == known[1]:
                continue  # append-only: the same size is the same content
            with open(full, "rb") as fh:
                data = fh.read()
            data = data[: data.rfind(b"\n") + 1]
            if known is not None and len(data) == known[1]:
                continue  # only a torn tail (a batch in flight) beyond what is committed
            if not changed:
                private_dir(snaps)  # made only by a cycle that has something to commit
            snap = os.path.join(snaps, f"{len(changed)}.blob")
            write_scratch(snap, data)
            changed.append((rel, snap))
        if not changed:
            return 0
        paths = "".join(snap + "\n" for _rel, snap in changed).encode()
        shas = git(worktree, "hash-object", "-w", "--stdin-paths", stdin=paths).out.split()
    finally:
        shutil.rmtree(snaps, ignore_errors=True)
    if len(shas) != len(changed):
        raise GitFailed(f"git hash-object stored {len(shas)} of {len(changed)} shards")
    entries = "".join(f"100644 {sha}\t{rel}\n" for (rel, _snap), sha in zip(changed, shas, strict=True))
    git(worktree, "update-index", "--add", "--index-info", stdin=entries.encode())
    tree = out(worktree, "write-tree")
    commit = out(worktree, "commit-tree", tree, "-p", "HEAD", "-m", message)
    git(worktree, "update-ref", "HEAD", commit)
    return len(changed)


# Written under the common git dir's thrum-sync/ once `tighten_objects` has run: objects stored
# since are born private (`git`'s umask), so one pass over the older ones is enough.
TIGHTENED = ".objects-private"


def tighten_objects(worktree: str, common: str) -> int:
    """Make the journal's loose objects that an older Thrum stored under the user's umask (0444,
    readable by every local user) private: 0400. Once per repository; returns how many changed.
    Packed objects are left as they are: a pack holds the user's own objects too, and its mode is
    what their git (gc, repack) chose."""
    mark = os.path.join(common, "thrum-sync", TIGHTENED)
    if os.path.exists(mark):
        return 0
    listed = git(worktree, "rev-list", "--objects", SYNC_BRANCH, "--glob=refs/thrum/remote/*", "--").out
    changed = 0
    for line in listed.splitlines():
        sha = line[:40]
        path = os.path.join(common, "objects", sha[:2], sha[2:])
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # packed
        if st.st_mode & 0o077 and st.st_uid == os.getuid():
            os.chmod(path, st.st_mode & 0o700)
            changed += 1
    write_private(mark, "")
    return changed


def is_sync_worktree(worktree: str) -> bool:
    """`worktree` is a git worktree of its own with the journal branch checked out. Anything else (a
    plain folder inside `.git`, where git would find the *user's* repository) is never touched."""
    if not os.path.isdir(os.path.join(worktree, ".git")) and not os.path.isfile(
        os.path.join(worktree, ".git")
    ):
        return False
    try:
        top = out(worktree, "rev-parse", "--show-toplevel")
        branch = out(worktree, "symbolic-ref", "-q", "HEAD")
    except (GitFailed, OSError):
        return False
    return os.path.realpath(top) == os.path.realpath(worktree) and branch == f"refs/heads/{SYNC_BRANCH}"


def remote_url(repo: str, remote: str) -> str | None:
    done = git(repo, "remote", "get-url", remote, check=False)
    return done.out.strip() or None if done.code == 0 else None


def fetch(worktree: str, remote: str, branch: str) -> str | None:
    """Fetch the remote's sync branch to `refs/thrum/remote/<branch>`; its tip, or None when the remote
    has no such branch yet. One git process (a cycle's spawns are what a send feels)."""
    ref = f"refs/thrum/remote/{branch}"
    proc = git(
        worktree,
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        remote,
        f"+refs/heads/{branch}:{ref}",
        check=False,
    )
    if proc.code != 0:
        if "couldn't find remote ref" in proc.err:
            return None
        raise GitFailed(
            f"git fetch: {gitrun.complaint(proc.err) or f'exit {proc.code}'}", proc.code, proc.err
        )
    return out(worktree, "rev-parse", ref)


def is_ancestor(worktree: str, a: str, b: str) -> bool:
    return git(worktree, "merge-base", "--is-ancestor", a, b, check=False).code == 0


def _is_prefix(path: str, sha: str, worktree: str, local_size: int, remote_size: int) -> tuple[bool, bytes]:
    """(one is a prefix of the other, the remote's bytes)."""
    theirs = git(worktree, "cat-file", "blob", sha).raw
    try:
        with open(path, "rb") as fh:
            mine = fh.read(min(local_size, remote_size))
    except FileNotFoundError:
        mine = b""
    return theirs[: len(mine)] == mine, theirs


def merge(worktree: str, clone: str, tip: str, message: str) -> MergeResult:
    """Bring every other clone's shard growth from `tip` into the journal and record a merge commit
    (this clone's shards as they are here, theirs as the remote has them)."""
    result = MergeResult(fetched=tip)
    journal = os.path.join(worktree, JOURNAL)
    for rel, (sha, size) in sorted(tree_entries(worktree, tip).items()):
        if not SHARD_PATH.match(rel):
            continue
        if own_shard(rel, clone):
            continue  # ours: our copy is the truth (the remote may hold an older one)
        full = os.path.join(journal, rel[len(JOURNAL) + 1 :])
        local = os.path.getsize(full) if os.path.isfile(full) and not os.path.islink(full) else 0
        if size <= local:
            if size < local:
                ok, _ = _is_prefix(full, sha, worktree, local, size)
                if not ok:
                    result.diverged.append(rel)
            continue
        ok, data = _is_prefix(full, sha, worktree, local, size)
        if not ok:
            result.diverged.append(rel)  # rewritten upstream: what we applied stays, nothing is lost
            continue
        write_private(full, data)
        git(worktree, "update-index", "--add", "--cacheinfo", f"100644,{sha},{rel}")
        result.updated.append(rel[len(JOURNAL) + 1 : -len(SUFFIX)])
    if is_ancestor(worktree, tip, "HEAD"):
        return result  # we have all of it already
    if is_ancestor(worktree, "HEAD", tip):
        # Nothing of ours is missing there: move to their commit instead of merging, or two idle
        # clones would answer each other's merge commits forever.
        git(worktree, "read-tree", tip)
        git(worktree, "update-ref", "HEAD", tip)
        return result
    tree = out(worktree, "write-tree")
    commit = out(worktree, "commit-tree", tree, "-p", "HEAD", "-p", tip, "-m", message)
    git(worktree, "update-ref", "HEAD", commit)
    result.committed = True
    return result


def push(worktree: str, remote: str, branch: str) -> str:
    """'ok', 'rejected' (the remote moved on: fetch and merge again) or raises GitFailed."""
    proc = git(
        worktree,
        "push",
        "--quiet",
        "--no-verify",
        "--porcelain",
        remote,
        f"HEAD:refs/heads/{branch}",
        check=False,
    )
    text = proc.out + proc.err
    if proc.code == 0:
        return "ok"
    # The remote moved on meanwhile (or another push holds its ref): fetch, merge and push again.
    # A "[remote rejected]" for any other reason is the remote's policy (a hook, a checked-out
    # branch), which no retry changes: it fails the cycle with the remote's own words.
    policy = "[remote rejected]" in text and "cannot lock ref" not in text
    if not policy and (
        "rejected]" in text
        or "non-fast-forward" in text
        or "fetch first" in text
        or "cannot lock ref" in text
    ):
        return "rejected"
    refused = [ln for ln in text.splitlines() if ln.startswith("!")]  # porcelain: the ref's own reason
    why = (
        " ".join((refused[-1] if refused else gitrun.complaint(text)).lstrip("!").split())
        or f"exit {proc.code}"
    )
    if "currently checked out" in why:
        why += (
            f"; {remote} is a repository with {branch} checked out (its own Thrum's journal"
            " worktree, or a checkout): sync needs a bare remote (`git clone --bare`)"
        )
    raise GitFailed(f"git push: {why}", proc.code, proc.err)


def unpushed(worktree: str, branch: str) -> int:
    """Commits on the sync branch that the last fetched remote tip does not have."""
    ref = f"refs/thrum/remote/{branch}"
    if git(worktree, "rev-parse", "--verify", "--quiet", ref, check=False).code != 0:
        return int(out(worktree, "rev-list", "--count", "HEAD"))
    return int(out(worktree, "rev-list", "--count", f"{ref}..HEAD"))


def is_public(repo: str, url: str) -> bool:
    """A remote anyone can read: a credential-free `ls-remote` succeeds. Local paths, file URLs and
    ssh (which always authenticates) are never public."""
    if not re.match(r"^(https?|git)://", url):
        return False
    proc = gitrun.call(
        repo,
        "ls-remote",
        "--heads",
        url,
        env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"},
        timeout=20,
        config={"credential.helper": "", "core.askPass": "/bin/echo"},
    )
    return proc.code == 0  # failing is the answer: not public

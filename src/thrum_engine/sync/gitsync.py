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

import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field

from thrum_engine import git as gitrun
from thrum_engine.files import private_dir, write_private, write_scratch
from thrum_engine.git import GitFailed
from thrum_engine.journal import CLONE_SEP, SUFFIX, parse_event
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
class MergePlan:
    """What merging a fetched tip will do, decided before anything changes (`plan_merge`)."""

    tip: str
    grow: list[tuple[str, str, bytes]] = field(default_factory=list)  # (path, blob, bytes): only grew there
    # Other clones' shards the tip holds in another version than ours (a clone that moved to a new id,
    # or one restored from a backup): the tip's version is taken, and the lines only ours held are
    # in `rescue`, unless some shard of the tip carries them still.
    replace: list[tuple[str, str, bytes]] = field(default_factory=list)
    rescue: list[bytes] = field(default_factory=list)
    # This clone's own shards the tip holds lines of that this clone never wrote: another clone writes
    # under our id (a copy of this folder that kept its inode, a restored disk image).
    contested: list[str] = field(default_factory=list)
    tip_shards: dict[str, str] = field(default_factory=dict)  # the tip's shards: path -> blob

    def shards(self, items: list[tuple[str, str, bytes]]) -> list[str]:
        return [shard_of(rel) for rel, _sha, _data in items]


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


def commit_local(
    worktree: str,
    clone: str,
    message: str,
    former: tuple[str, ...] = (),
    acked: dict[str, int] | None = None,
) -> int:
    """Commit this clone's shard growth, cut at each file's last newline (a batch being written is
    never committed half). Returns how many shards went into the commit (0: nothing, no commit).
    Shards of a `former` id of this clone are committed too when they grew past what is committed
    (lines a copy of this folder holds that its original never pushed); they are never written
    here any more, so they only ever grow by what sync brings. `acked`: how far each shard is
    applied to the projection (what senders were told is stored): nothing past it is committed, so
    a batch whose projection commit fails, and is cut back out of the journal, never reaches
    another clone.

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
            if not SHARD_PATH.match(rel) or not any(own_shard(rel, c) for c in (clone, *former)):
                continue
            full = os.path.join(journal, name)
            if os.path.islink(full) or not os.path.isfile(full):
                continue
            size = os.path.getsize(full)
            known = committed.get(rel)
            if known is not None and size == known[1]:
                continue  # append-only: the same size is the same content
            data = _read_local(full)
            limit = None if acked is None else acked.get(name[: -len(SUFFIX)])
            if limit is not None and limit < len(data):
                data = data[:limit]
            if known is not None and len(data) <= known[1]:
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
        sha = line.split(" ", 1)[0]  # 40 hex digits, or 64 in a sha256 repository
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


SHARED_OFF = ("", "false", "umask", "no", "off", "0")


def private_objects(worktree: str, common: str) -> bool:
    """Make the repository's object store a folder only its owner can enter (0700). The journal's
    blobs live there beside the user's own; Thrum stores its loose objects 0400, but a `git gc` or
    `repack` the user runs packs them into files under the user's umask (0444: every local user
    could `git cat-file` every message, walk B 7). Git never changes that folder's mode itself.
    A repository shared on purpose (core.sharedRepository) is left as it is. Returns whether the
    mode changed."""
    shared = git(worktree, "config", "--get", "core.sharedRepository", check=False).out.strip().lower()
    if shared not in SHARED_OFF:
        return False
    objects = os.path.join(common, "objects")
    st = os.stat(objects)
    if st.st_uid != os.getuid() or not st.st_mode & 0o077:
        return False
    os.chmod(objects, st.st_mode & 0o700)
    return True


def is_sync_worktree(worktree: str, common: str) -> bool:
    """`worktree` is a git worktree of its own, of the repository whose git dir is `common`, with the
    journal branch checked out. Anything else (a plain folder inside `.git`, where git would find the
    *user's* repository; a copy still linked to the repository it was copied from) is never touched."""
    if not os.path.isdir(os.path.join(worktree, ".git")) and not os.path.isfile(
        os.path.join(worktree, ".git")
    ):
        return False
    try:
        top, found = out(worktree, "rev-parse", "--show-toplevel", "--git-common-dir").splitlines()
        branch = out(worktree, "symbolic-ref", "-q", "HEAD")
    except (GitFailed, OSError, ValueError):
        return False
    found = found if os.path.isabs(found) else os.path.join(worktree, found)
    return (
        os.path.realpath(top) == os.path.realpath(worktree)
        and os.path.realpath(found) == os.path.realpath(common)
        and branch == f"refs/heads/{SYNC_BRANCH}"
    )


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
            f"git fetch from {remote}: {gitrun.complaint(proc.err) or f'exit {proc.code}'}",
            proc.code,
            proc.err,
        )
    return out(worktree, "rev-parse", ref)


def is_ancestor(worktree: str, a: str, b: str) -> bool:
    return git(worktree, "merge-base", "--is-ancestor", a, b, check=False).code == 0


def _file_of(rel: str) -> str:
    """`journal/alice@c1.jsonl` -> `alice@c1.jsonl`, the file in the journal folder."""
    return rel[len(JOURNAL) + 1 :]


def shard_of(rel: str) -> str:
    """`journal/alice@c1.jsonl` -> `alice@c1`, the shard's name."""
    return _file_of(rel)[: -len(SUFFIX)]


def blob_sha(data: bytes, length: int) -> str:
    """The git object id `data` would have as a blob (sha1, or sha256 in a sha256 repository: `length`
    is the id's length), computed here: comparing a prefix of a shard with a fetched blob costs no
    git process."""
    digest = hashlib.sha1 if length == 40 else hashlib.sha256  # git's object id, not a secret
    return digest(b"blob %d\0" % len(data) + data).hexdigest()


def read_blobs(worktree: str, shas: list[str]) -> dict[str, bytes]:
    """The content of each blob, from one `git cat-file --batch`."""
    if not shas:
        return {}
    raw = git(worktree, "cat-file", "--batch", stdin="".join(f"{sha}\n" for sha in shas).encode()).raw
    found: dict[str, bytes] = {}
    pos = 0
    while pos < len(raw):
        eol = raw.index(b"\n", pos)
        head = raw[pos:eol].decode("utf-8", "replace").split()
        if len(head) != 3 or head[1] != "blob" or not head[2].isdigit():
            raise GitFailed(f"git cat-file: {' '.join(head)} (wanted a blob)")
        sha, _kind, size = head
        start = eol + 1
        found[sha] = raw[start : start + int(size)]
        pos = start + int(size) + 1
    return found


def _read_local(full: str) -> bytes:
    if os.path.islink(full) or not os.path.isfile(full):
        return b""
    with open(full, "rb") as fh:
        data = fh.read()
    return data[: data.rfind(b"\n") + 1]  # a torn tail is nobody's line


def _event_ids(data: bytes) -> dict[str, bytes]:
    """event id -> its line, for every readable line of a shard."""
    found: dict[str, bytes] = {}
    for raw in data.splitlines():
        ev = parse_event(raw)
        if ev is not None and isinstance(ev["id"], str):
            found.setdefault(ev["id"], raw)
    return found


def plan_merge(
    worktree: str, clone: str, tip: str, verified: set[tuple[str, str]] | None = None
) -> MergePlan:
    """Compare every shard of `tip` with the journal here. Shards are append-only with one writer
    each, so a version that extends ours is growth; one that is neither a prefix nor an extension of
    ours was rewritten elsewhere, and is merged by event id so that no line either side holds is
    lost. Reads the journal and git only: nothing changes until `apply_merge`. `verified` holds the
    (path, blob) pairs found to be older versions of ours, which later cycles need not read again."""
    plan = MergePlan(tip)
    verified = set() if verified is None else verified
    journal = os.path.join(worktree, JOURNAL)
    theirs = tree_entries(worktree, tip)
    plan.tip_shards = {rel: sha for rel, (sha, _size) in theirs.items() if SHARD_PATH.match(rel)}
    committed = tree_entries(worktree, "HEAD")
    looked: list[tuple[str, str, bytes]] = []  # (path, blob, our bytes) to compare with their blob
    for rel, (sha, size) in sorted(theirs.items()):
        if not SHARD_PATH.match(rel) or committed.get(rel, ("", 0))[0] == sha or (rel, sha) in verified:
            continue  # not a shard, or a version we have
        mine = _read_local(os.path.join(journal, _file_of(rel)))
        if size <= len(mine) and blob_sha(mine[:size], len(sha)) == sha:
            if size == len(mine) and not own_shard(rel, clone):
                # The file holds their version and HEAD does not (a merge stopped between writing
                # the file and staging it): staged and read now.
                plan.grow.append((rel, sha, mine))
            else:
                verified.add((rel, sha))  # theirs is an older version of ours
            continue
        if own_shard(rel, clone):
            plan.contested.append(rel)
            continue
        looked.append((rel, sha, mine))
    if plan.contested:
        return plan  # the caller moves to a new clone id and plans again (these are then foreign)
    blobs = read_blobs(worktree, sorted({sha for _rel, sha, _mine in looked}))
    surplus: list[bytes] = []
    for rel, sha, mine in looked:
        data = blobs[sha]
        if data.startswith(mine):
            plan.grow.append((rel, sha, data))
            continue
        plan.replace.append((rel, sha, data))
        kept = _event_ids(data)
        surplus += [raw for eid, raw in _event_ids(mine).items() if eid not in kept]
    if surplus:
        plan.rescue = _not_carried(worktree, journal, clone, theirs, plan, surplus)
    return plan


def _not_carried(
    worktree: str,
    journal: str,
    clone: str,
    theirs: dict[str, tuple[str, int]],
    plan: MergePlan,
    lines: list[bytes],
) -> list[bytes]:
    """The `lines` no other shard of the tip and no shard of this clone's own holds (the clone that
    rewrote a shard re-homes its own lines, and a clone that rescued them once keeps them)."""
    replaced = {rel for rel, _sha, _data in plan.replace}
    others = sorted(
        {sha for rel, (sha, _size) in theirs.items() if SHARD_PATH.match(rel) and rel not in replaced}
    )
    carried: set[str] = set()
    for data in read_blobs(worktree, others).values():
        carried.update(_event_ids(data))
    for name in sorted(os.listdir(journal)):
        if own_shard(f"{JOURNAL}/{name}", clone):
            carried.update(_event_ids(_read_local(os.path.join(journal, name))))
    wanted: dict[str, bytes] = {}
    for raw in lines:
        ev = parse_event(raw)
        if ev is not None and ev["id"] not in carried:
            wanted.setdefault(ev["id"], raw)
    return list(wanted.values())


def _shards_in(worktree: str, rev: str) -> dict[str, str]:
    """`rev`'s shards, path -> blob. Only shards are compared: anything else under journal/ (a
    symlink, a newer Thrum's file) is never merged, and comparing it would keep two clones merging
    forever."""
    return {rel: sha for rel, (sha, _size) in tree_entries(worktree, rev).items() if SHARD_PATH.match(rel)}


def _take_other_files(worktree: str, tip: str) -> None:
    """Files outside journal/ (a synced context, `context/<name>.md`) that the tip has and the index
    lacks: staged, so a merge commit does not drop another clone's."""
    top = [item.partition(b"\t")[2] for item in git(worktree, "ls-tree", "-z", tip).raw.split(b"\0") if item]
    if all(name == JOURNAL.encode() for name in top):
        return  # a journal and nothing else, as a tip usually is: one git process
    listed = git(worktree, "ls-tree", "-r", "-z", tip).raw
    staged = set(git(worktree, "ls-files", "-z").raw.split(b"\0"))
    entries = []
    for item in listed.split(b"\0"):
        meta, _, path = item.partition(b"\t")
        if not path or b"\n" in path or path.startswith(JOURNAL.encode() + b"/") or path in staged:
            continue
        mode, kind, sha = meta.split()
        if kind == b"blob" and mode == b"100644":
            entries.append(b"100644 " + sha + b"\t" + path + b"\n")
    if entries:
        git(worktree, "update-index", "--add", "--index-info", stdin=b"".join(entries))


def apply_merge(worktree: str, plan: MergePlan, message: str) -> bool:
    """Write the planned shards (durably: the engine records how far it read them) and record the
    merge. Returns whether a commit was made. HEAD moves to the tip itself only when the tip's tree
    is exactly what the merge holds: a fast-forward never drops a shard this clone holds and the tip
    lacks, and two idle clones never answer each other's merge commits."""
    journal = os.path.join(worktree, JOURNAL)
    entries = []
    for rel, sha, data in plan.grow + plan.replace:
        write_private(os.path.join(journal, _file_of(rel)), data, durable=True)
        entries.append(f"100644 {sha}\t{rel}\n")
    if entries:
        git(worktree, "update-index", "--add", "--index-info", stdin="".join(entries).encode())
    _take_other_files(worktree, plan.tip)
    tree = out(worktree, "write-tree")
    merged = _shards_in(worktree, tree)
    tip = plan.tip
    if is_ancestor(worktree, tip, "HEAD"):
        if merged == _shards_in(worktree, "HEAD"):
            return False  # we have all of it already
        parents = ["-p", "HEAD"]
    elif is_ancestor(worktree, "HEAD", tip) and merged == plan.tip_shards:
        # Nothing of ours is missing there: move to their commit (their other files too, a synced
        # context) instead of merging, or two idle clones would answer each other's merges forever.
        git(worktree, "read-tree", tip)
        git(worktree, "update-ref", "HEAD", tip)
        return False
    else:
        parents = ["-p", "HEAD", "-p", tip]
    commit = out(worktree, "commit-tree", tree, *parents, "-m", message)
    git(worktree, "update-ref", "HEAD", commit)
    return True


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

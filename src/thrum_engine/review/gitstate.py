"""What git says about an agent's branch against its target: ahead/behind, the files changed, the
diff, the commits, and whether a merge would conflict. Blocking: run in a thread."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from thrum_engine import git, layout, runtime_files
from thrum_engine.git import GitFailed
from thrum_engine.review.diff import DIFF_ARGS


@dataclass
class FileStat:
    path: str
    added: int | None  # None: binary
    removed: int | None
    old_path: str | None = None


@dataclass
class BranchState:
    path: str
    branch: str | None
    head: str
    target: str
    target_head: str
    merge_base: str
    ahead: int
    behind: int
    files: list[FileStat] = field(default_factory=list)
    uncommitted: list[str] = field(default_factory=list)
    untracked: list[str] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def added(self) -> int:
        return sum(f.added or 0 for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed or 0 for f in self.files)

    @property
    def paths(self) -> set[str]:
        """What the review's diff shows: the files changed (their new names) and the untracked."""
        return {f.path for f in self.files} | set(self.untracked)

    @property
    def old_paths(self) -> set[str]:
        """The names renamed files had at the merge base."""
        return {f.old_path for f in self.files if f.old_path}

    @property
    def reviewable(self) -> bool:
        return self.ahead > 0 or bool(self.uncommitted or self.untracked)

    def view(self) -> dict:
        out = asdict(self)
        out.update(added=self.added, removed=self.removed, reviewable=self.reviewable)
        return out


def _out(cwd: str, *args: str) -> str:
    return git.call(cwd, *args, check=True).out


def rev(cwd: str, what: str) -> str:
    return _out(cwd, "rev-parse", "--verify", "--quiet", what + "^{commit}").strip()


def tree(cwd: str, what: str) -> str:
    return _out(cwd, "rev-parse", "--verify", "--quiet", what + "^{tree}").strip()


def written_by(repo: str, base: str, head: str) -> list[str]:
    """The files the commits from `base` to `head` add, change or delete: what merging them writes."""
    return [p for p in _out(repo, "diff", "--name-only", "-z", "--no-renames", base, head).split("\0") if p]


# Files in a git dir that say its checkout is in the middle of something (git's own state files).
_IN_PROGRESS = (
    ("MERGE_HEAD", "a merge"),
    ("rebase-merge", "a rebase"),
    ("rebase-apply", "a rebase (or `git am`)"),
    ("CHERRY_PICK_HEAD", "a cherry-pick"),
    ("REVERT_HEAD", "a revert"),
)


def in_progress(git_dir: str) -> str | None:
    """What the checkout of `git_dir` is in the middle of ("a merge", ...), or None."""
    for marker, what in _IN_PROGRESS:
        if os.path.exists(os.path.join(git_dir, marker)):
            return what
    return None


def status(cwd: str) -> tuple[list[str], list[str]]:
    """(changed tracked files, untracked files), exactly as `git status` sees them."""
    changed, untracked = git.parse_status(_out(cwd, *git.STATUS_ARGS))
    # Thrum's runtime files are out of `git status` through info/exclude; one only Thrum's rule hides
    # that is not the file Thrum installed (the user's, or an edited one) is work all the same.
    extra = [p for p in runtime_files.hidden_not_ours(cwd) if p not in untracked]
    return changed, untracked + extra


def numstat(cwd: str, *revs: str) -> list[FileStat]:
    out = _out(cwd, *DIFF_ARGS, "--numstat", "-z", *revs)
    files: list[FileStat] = []
    parts = out.split("\0")
    i = 0
    while i < len(parts):
        head = parts[i]
        i += 1
        if not head:
            continue
        added, removed, path = head.split("\t", 2)
        old = None
        if not path:  # a rename: the old and new paths follow
            old, path = parts[i], parts[i + 1]
            i += 2
        files.append(
            FileStat(
                path, None if added == "-" else int(added), None if removed == "-" else int(removed), old
            )
        )
    return files


_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="thrum-review-git")


def parallel(*calls):
    """Independent git commands at once (each a child process: the threads mostly wait)."""
    futures = [_POOL.submit(fn, *args) for fn, *args in calls]
    return [f.result() for f in futures]


def branch_state(
    worktree: str, target: str, *, extra: tuple[Callable[[str], Any], ...] = ()
) -> tuple[BranchState, list]:
    """The worktree's branch against `target` (a branch of the main repo), and what each of `extra`
    returns for the merge base, run alongside the last git calls. Uncommitted changes to tracked
    files count in the file list (the diff is the working tree against the merge base)."""
    done = git.call(worktree, "rev-parse", "HEAD^{commit}", f"{target}^{{commit}}")
    revs = done.out.split()
    if done.code != 0 or len(revs) != 2:
        raise GitFailed(f"the target branch {target!r} does not exist")
    head, target_head = revs
    base_out, counts, (changed, untracked) = parallel(
        (_out, worktree, "merge-base", target_head, head),
        (_out, worktree, "rev-list", "--left-right", "--count", f"{target_head}...{head}"),
        (status, worktree),
    )
    branch = layout.current_branch(worktree)
    base = base_out.strip()
    behind, ahead = (int(n) for n in counts.split())
    dirty = bool(changed or untracked)
    files, uncommitted_diff, *more = parallel(
        (numstat, worktree, base),
        (_out, worktree, *DIFF_ARGS, "HEAD") if dirty else (str,),
        *((fn, base) for fn in extra),
    )
    digest = hashlib.sha1(head.encode())
    if dirty:
        # Uncommitted work changes what is under review without a commit: fold it in.
        digest.update(uncommitted_diff.encode("utf-8", "replace"))
        for name in untracked:
            digest.update(b"\0" + name.encode("utf-8", "replace"))
    st = BranchState(
        path=worktree,
        branch=branch,
        head=head,
        target=target,
        target_head=target_head,
        merge_base=base,
        ahead=ahead,
        behind=behind,
        files=files,
        uncommitted=changed,
        untracked=untracked,
        fingerprint=digest.hexdigest()[:16],
    )
    return st, more


def diff_text(worktree: str, base: str, commit: str | None = None, context: int = 3) -> str:
    """The whole diff (working tree against `base`), or one commit's."""
    if commit:
        parent = rev(worktree, commit + "^")
        revs = (parent, commit) if parent else ("4b825dc642cb6eb9a060e54bf8d69288fbee4904", commit)
        return _out(worktree, *DIFF_ARGS, f"-U{context}", *revs)
    return _out(worktree, *DIFF_ARGS, f"-U{context}", base)


def commits(worktree: str, base: str, head: str) -> list[dict]:
    out = _out(worktree, "log", "--format=%H%x00%an%x00%aI%x00%s", f"{base}..{head}")
    rows = []
    for line in filter(None, out.split("\n")):
        sha, author, at, subject = line.split("\0", 3)
        rows.append({"sha": sha, "author": author, "at": at, "subject": subject})
    return rows


def file_at(cwd: str, commit: str, path: str) -> list[str] | None:
    """`path` as of `commit` (None: not there), as lines."""
    done = git.call(cwd, "show", f"{commit}:{path}")
    return done.out.split("\n") if done.code == 0 else None


def working_file(worktree: str, path: str) -> list[str] | None:
    import os

    try:
        with open(os.path.join(worktree, path), encoding="utf-8", errors="replace") as fh:
            return fh.read().split("\n")
    except OSError:
        return None


def merge_conflicts(repo: str, target: str, branch_head: str) -> tuple[str | None, list[str]]:
    """A dry merge (`git merge-tree --write-tree`): (the merged tree, None when it conflicts; the
    conflicted files). Writes objects only: no ref, index or working tree changes."""
    args = ("merge-tree", "--write-tree", "--name-only", "--no-messages", target, branch_head)
    done = git.call(repo, *args)
    if done.code not in (0, 1):
        raise GitFailed.of(args, done)
    lines = done.out.split("\n")
    tree = lines[0].strip()
    if done.code == 0:
        return tree, []
    return None, sorted({ln for ln in lines[1:] if ln.strip()})


def is_ancestor(repo: str, a: str, b: str) -> bool:
    return git.call(repo, "merge-base", "--is-ancestor", a, b).code == 0

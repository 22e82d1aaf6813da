"""Agents' git worktrees: create, list, and tear down behind a safety audit.

Git work is blocking (`thrum_engine.git` runs the `git` binary): every engine method here runs it
in a thread. Teardown never deletes anything before it has written an archive
ref that keeps the worktree's last state, uncommitted files included.

What an archive keeps (`archive`), and what a teardown says it removes (`Audit`):

* kept: tracked changes and untracked files, as the working tree has them, and the index as it
  was (what was staged comes back staged);
* kept: git-ignored files git reports one by one (a `local.env` typed by hand), up to IGNORED_CAP
  bytes in all, smallest first; those past the cap are a problem the teardown refuses without
  --force, naming them (forced, they are removed for good);
* not kept: directories an ignore rule matches as a whole (`node_modules/`, `.venv/`,
  `__pycache__/`), build output to rebuild; the audit and the teardown's output name them;
* not kept: Thrum's own files (`.thrum/`, `.beads/redirect`, the runtime files Thrum installed,
  byte for byte), hidden by Thrum's rules in info/exclude: Thrum writes them again. A file at a
  runtime file's path that is not Thrum's is the user's work: untracked, and kept.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from thrum_engine import git, names, runtime_files
from thrum_engine.engine.authority import require_owner
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.registry import method
from thrum_engine.errors import Conflict, InvalidInput, InvalidName, NotFound
from thrum_engine.files import private_dir, write_private
from thrum_engine.identity import author_of, enroll, known_runtime
from thrum_engine.integrations.engine_side import install_for
from thrum_engine.layout import EXCLUDED, STATE_DIR, current_branch
from thrum_engine.model import Params
from thrum_engine.tmux import methods as tmux_methods

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

ARCHIVE_PREFIX = "refs/thrum/archive/"
STAMP = "%Y%m%dT%H%M%SZ"  # an archive ref's last part: the teardown's UTC time


class WorktreeCreateParams(Params):
    name: str
    branch: str | None = None
    base: str | None = None
    detach: bool = False
    agent: str | None = None
    role: str | None = None
    module: str = ""
    intent: str = ""
    runtime: str = ""


class WorktreeNameParams(Params):
    name: str


class WorktreeRestoreParams(Params):
    ref: str  # refs/thrum/archive/<name>/<stamp>, or a unique suffix of one (<name>/<stamp>, <name>)
    name: str | None = None  # the new worktree's name; default: the archived one's


class WorktreeTeardownParams(Params):
    name: str
    force: bool = False
    delete_branch: bool = False
    keep_agent: bool = False


def name_problem(name: str) -> str | None:
    return names.problem("worktree", name)


def base_dir(engine: Engine) -> str:
    root = os.path.expanduser(engine.settings.worktrees.base_path)
    return os.path.realpath(os.path.join(root, os.path.basename(engine.layout.repo)))


def path_for(engine: Engine, name: str) -> str:
    problem = name_problem(name)
    if problem:
        raise InvalidName(problem)
    base = base_dir(engine)
    path = os.path.realpath(os.path.join(base, name))
    if os.path.dirname(path) != base:
        raise InvalidName(f"invalid worktree name {name!r}: it would leave {base}")
    return path


def _create(repo: str, path: str, branch: str | None, base: str | None, detach: bool) -> str | None:
    start = base or "HEAD"
    if not git.ok(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", start + "^{commit}"):
        raise InvalidInput(f"unknown base {start!r}: not a commit, branch or tag")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if detach or branch is None:
        git.run(repo, "worktree", "add", "--detach", path, start)
        return None
    if git.ok(repo, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}"):
        if base:
            raise Conflict(f"branch {branch} already exists; drop --base to check it out as is")
        elsewhere = next((t for t in list_worktrees(repo) if t.get("branch") == branch), None)
        if elsewhere is not None:  # git's own refusal surfaced as an internal error (walk bug 12)
            raise Conflict(
                f"branch {branch} is checked out in worktree {os.path.basename(elsewhere['path'])}"
                f" ({elsewhere['path']}): a branch can be checked out in one worktree only"
            )
        git.run(repo, "worktree", "add", path, branch)
    else:
        git.run(repo, "worktree", "add", "-b", branch, path, start)
    return branch


def write_redirects(repo: str, path: str) -> None:
    """Point the new worktree's `.thrum` (and `.beads`, when the repo has one) at the main checkout."""
    for tool in (STATE_DIR, ".beads"):
        main = os.path.join(repo, tool)
        if tool == ".beads" and not os.path.isdir(main):
            continue
        write_private(os.path.join(path, tool, "redirect"), main + "\n")
    for sub in ("identities", "context"):  # as upstream's worktrees have them: scripts write there
        private_dir(os.path.join(path, STATE_DIR, sub))


def list_worktrees(repo: str) -> list[dict]:
    """The repo's linked worktrees (not the main checkout, not Thrum's sync checkout)."""
    main = os.path.realpath(repo)
    return [
        t
        for t in git.parse_worktrees(git.run(repo, "worktree", "list", "--porcelain"))
        if os.path.realpath(t["path"]) != main and not git.in_journal_folder(t["path"])
    ]


def status_of(path: str) -> tuple[list[str], list[str]]:
    """(modified or staged files, untracked files): exactly what `git status` shows. Thrum's own
    files are out of it through info/exclude, not hidden here (hiding them here is how the panel
    said "clean" while `git add -A` committed them, walk bug 1). The runtime files Thrum installed
    are out of it the same way; a file only a Thrum runtime rule hides that is not the one Thrum
    installed here (the user's, or Thrum's edited) is added back: it is work."""
    changed, untracked = git.parse_status(git.run(path, *git.STATUS_ARGS))
    return changed, sorted({*untracked, *runtime_files.hidden_not_ours(path)})


IGNORED_CAP = 10 * 1024 * 1024  # bytes of individually ignored files an archive takes in
CAP_TEXT = "10 MiB"


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def ignored_of(path: str) -> tuple[list[str], list[str], list[str]]:
    """(ignored files the archive takes, ignored files past IGNORED_CAP, ignored directories), as
    `git status --ignored=matching` reports them, without what Thrum's own rules hide (its state,
    its runtime files: a runtime-file path holding the user's work is in `status_of`'s untracked).
    Smallest files first under the cap, so one big dump does not push out a hand-typed `.env`."""
    entries = git.parse_ignored(git.run(path, *git.IGNORED_ARGS))
    thrums = {*EXCLUDED, *(f"/{r}" for r in runtime_files.rules(path))}
    entries = sorted(set(entries) - set(runtime_files.hidden_by_thrum(path, entries, thrums)))
    dirs = [e for e in entries if e.endswith("/")]
    sizes = {e: _size(os.path.join(path, e)) for e in entries if not e.endswith("/")}
    kept: list[str] = []
    over: list[str] = []
    total = 0
    for f in sorted(sizes, key=lambda f: (sizes[f], f)):
        if total + sizes[f] <= IGNORED_CAP:
            kept.append(f)
            total += sizes[f]
        else:
            over.append(f)
    return sorted(kept), sorted(over), dirs


def named(paths: list[str], most: int = 5) -> str:
    """`a, b, c` or `a, b, c, ... (N more)`: file names in one line of text."""
    shown = ", ".join(paths[:most])
    return shown + (f", ... ({len(paths) - most} more)" if len(paths) > most else "")


@dataclass
class Audit:
    name: str
    path: str
    branch: str | None
    head: str
    target: str | None
    uncommitted: list[str] = field(default_factory=list)
    untracked: list[str] = field(default_factory=list)
    unmerged: list[str] = field(default_factory=list)  # "sha subject" of commits not in the target
    squash_merged: bool = False
    live_panes: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    archive_ref: str = ""
    ignored: list[str] = field(default_factory=list)  # ignored files the archive keeps
    ignored_over_cap: list[str] = field(default_factory=list)  # ... and those it cannot: lost
    ignored_dirs: list[str] = field(default_factory=list)  # removed, not archived (build output)

    @property
    def problems(self) -> list[str]:
        out = []
        if self.uncommitted:
            out.append(f"{len(self.uncommitted)} uncommitted change(s)")
        if self.untracked:
            out.append(f"{len(self.untracked)} untracked file(s)")
        if self.unmerged and not self.squash_merged:
            out.append(f"{len(self.unmerged)} commit(s) not merged into {self.target}")
        if self.live_panes:
            out.append(f"a live pane ({', '.join(self.live_panes)})")
        if self.ignored_over_cap:
            out.append(
                f"{len(self.ignored_over_cap)} ignored file(s) past the {CAP_TEXT} an archive keeps,"
                f" lost at removal ({named(self.ignored_over_cap)})"
            )
        return out

    @property
    def notes(self) -> list[str]:
        """What else is at stake, though not a problem: ignored files archived, ignored folders
        removed and not archived."""
        out = []
        if self.ignored:
            out.append(f"{len(self.ignored)} ignored file(s) archived ({named(self.ignored)})")
        if self.ignored_dirs:
            out.append(
                f"{len(self.ignored_dirs)} ignored folder(s) removed, not archived ({named(self.ignored_dirs)})"
            )
        return out


def _patch_id(repo: str, diff: str) -> str | None:
    if not diff.strip():
        return None
    out = git.run(repo, "patch-id", "--stable", stdin=diff, check=False)
    return out.split()[0] if out.strip() else None


def unmerged_commits(repo: str, branch_head: str, target: str) -> tuple[list[str], bool]:
    """Commits of the worktree not in `target`, and whether the branch was squash-merged.

    `git cherry` drops commits whose patch is already upstream (cherry-picks, rebases);
    a squash merge is one target commit whose patch equals the branch's whole diff.
    """
    lines = git.run(repo, "cherry", "-v", target, branch_head, check=False).splitlines()
    pending = [ln[2:] for ln in lines if ln.startswith("+ ")]
    if not pending:
        return [], False
    merge_base = git.run(repo, "merge-base", target, branch_head, check=False)
    if not merge_base:
        return pending, False
    whole = _patch_id(repo, git.run(repo, "diff", merge_base, branch_head))
    if whole is None:
        return pending, False
    for sha in git.run(repo, "rev-list", "--no-merges", f"{merge_base}..{target}").split():
        if _patch_id(repo, git.run(repo, "show", "--format=", sha)) == whole:
            return pending, True
    return pending, False


ARCHIVE_MESSAGE = "thrum: archive of worktree {name} at teardown"


def stamp() -> str:
    return time.strftime(STAMP, time.gmtime())


def new_archive_ref(repo: str, name: str) -> str:
    """A ref no teardown has used: `refs/thrum/archive/<name>/<UTC time>` (walk bug 8: one ref per
    name was overwritten when the name came back, and the first one's work was left to `git gc`).
    A ref of the old one-per-name shape moves under the name first, to the time of its commit."""
    legacy = ARCHIVE_PREFIX + name
    old = git.run(repo, "rev-parse", "--verify", "--quiet", legacy + "^{commit}", check=False)
    if old:
        when = time.strftime(STAMP, time.gmtime(int(git.run(repo, "show", "-s", "--format=%ct", old))))
        # `<name>` and `<name>/<time>` cannot both exist: hold it elsewhere while it moves.
        held = f"refs/thrum/archive-moving/{name}"
        git.run(repo, "update-ref", held, old)
        git.run(repo, "update-ref", "-d", legacy, old)
        git.run(repo, "update-ref", f"{legacy}/{when}", old, "")
        git.run(repo, "update-ref", "-d", held, old)
    base = f"{ARCHIVE_PREFIX}{name}/{stamp()}"
    ref, n = base, 1
    while git.run(repo, "rev-parse", "--verify", "--quiet", ref, check=False):
        n += 1
        ref = f"{base}-{n}"
    return ref


INDEX_MESSAGE = "thrum: index of worktree {name} at teardown"


def archive(repo: str, path: str, name: str) -> tuple[str, str]:
    """Write a new archive ref (never an existing one): HEAD when nothing is to keep, else a commit
    of every file as it is now (ignored files under the cap too, see the module's docstring) whose
    parents are HEAD and, as `git stash` does, a commit of the index. Returns (ref, sha)."""
    head = git.run(path, "rev-parse", "HEAD")
    changed, untracked = status_of(path)
    ignored, _over, _dirs = ignored_of(path)
    sha = head
    if changed or untracked or ignored:
        gitdir = git.run(path, "rev-parse", "--absolute-git-dir")
        index = os.path.join(gitdir, "thrum-archive-index")
        env = {"GIT_INDEX_FILE": index, "GIT_LITERAL_PATHSPECS": "1"}
        try:
            # A copy of the worktree's index: its tree is what was staged, and the working tree is
            # added on top of it (the worktree's own index is never written).
            staged = None
            if os.path.isfile(os.path.join(gitdir, "index")):
                shutil.copyfile(os.path.join(gitdir, "index"), index)
                staged = git.run(path, "write-tree", env=env, check=False).strip() or None  # a conflict: none
            else:
                git.run(path, "read-tree", "HEAD", env=env)
            # Thrum's own files stay out through info/exclude (an excluding pathspec on an
            # ignored path is an error to git); the ignored files kept, and the user's files at
            # a runtime file's path, are added past it.
            git.run(path, "add", "-A", "--", ".", env=env)
            forced = sorted({*ignored, *untracked})
            if forced:
                git.run(
                    path,
                    "add",
                    "-f",
                    "--pathspec-from-file=-",
                    "--pathspec-file-nul",
                    stdin="".join(f + "\0" for f in forced),
                    env=env,
                )
            tree = git.run(path, "write-tree", env=env).strip()
        finally:
            if os.path.exists(index):
                os.remove(index)
        parents = ["-p", head]
        if staged:
            parents += [
                "-p",
                git.run(path, "commit-tree", staged, "-p", head, "-m", INDEX_MESSAGE.format(name=name)),
            ]
        sha = git.run(path, "commit-tree", tree, *parents, "-m", ARCHIVE_MESSAGE.format(name=name))
    return keep_archive(repo, name, sha), sha


def keep_archive(repo: str, name: str, sha: str) -> str:
    ref = new_archive_ref(repo, name)
    git.run(repo, "update-ref", ref, sha, "")  # "": the ref must not exist yet
    return ref


def teardown_time(ref_tail: str) -> tuple[str, int] | None:
    """When the teardown that wrote `<name>/<stamp>[-n]` ran, as ISO UTC, and `n` (1 without it):
    the stamp is the teardown's clock. The archive's commit is the worktree's HEAD when nothing was
    uncommitted, so its date can be any time before: sorting by it put an older teardown first."""
    name, sep, tail = ref_tail.rpartition("/")
    if not sep or not name:
        return None
    when, _, n = tail.partition("-")
    try:
        parsed = time.strptime(when, STAMP)
    except ValueError:
        return None
    if n and not n.isdigit():
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", parsed), int(n or 1)


def list_archives(repo: str) -> list[dict]:
    """Every archive, newest teardown first: `at` is the teardown's time (the stamp in its ref),
    or, for a ref of the old one-per-name shape not yet moved, its commit's."""
    out = git.run(
        repo,
        "for-each-ref",
        "--format=%(refname)%00%(objectname)%00%(creatordate:unix)%00%(subject)",
        ARCHIVE_PREFIX,
    )
    archives = []
    order = {}
    for row in filter(None, out.splitlines()):
        ref, sha, created, subject = row.split("\0", 3)
        tail = ref[len(ARCHIVE_PREFIX) :]
        when = teardown_time(tail)
        if when is not None:
            at, n = when
        else:
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(created or 0)))
            n = 0
        order[ref] = (at, n)
        archives.append(
            {
                "ref": ref,
                "name": tail.rsplit("/", 1)[0] if when is not None else tail,
                "sha": sha,
                "at": at,
                "uncommitted": subject.startswith("thrum: archive of worktree"),
            }
        )
    # ISO UTC strings sort as times; `-n` orders teardowns within one second.
    archives.sort(key=lambda a: (*order[a["ref"]], a["ref"]), reverse=True)
    return archives


def find_archive(repo: str, wanted: str) -> dict:
    """The archive `wanted` names: a whole ref, or its part after the prefix; a bare name means
    that name's newest archive."""
    archives = list_archives(repo)
    key = wanted.removeprefix(ARCHIVE_PREFIX)
    exact = [a for a in archives if a["ref"][len(ARCHIVE_PREFIX) :] == key]
    if exact:
        return exact[0]
    named = [a for a in archives if a["name"] == key]  # newest first
    if named:
        return named[0]
    raise NotFound(f"no archive {wanted}: `thrum worktree archives` lists them")


def agents_in(engine: Engine, path: str) -> list[str]:
    real = os.path.realpath(path)
    return sorted(
        n for n, a in engine.agents.items() if a["worktree"] and os.path.realpath(a["worktree"]) == real
    )


def find_worktree(engine: Engine, name: str) -> dict:
    path = path_for(engine, name)
    trees = list_worktrees(engine.layout.repo)
    for t in trees:
        if os.path.realpath(t["path"]) == path:
            return t
    # `worktree list` shows every linked worktree by its folder's name, Thrum's or not: one made
    # by `git worktree add` elsewhere is named here, with git's own way to remove it.
    for t in trees:
        if os.path.basename(os.path.normpath(t["path"])) == name:
            raise InvalidInput(
                f"{name} is a git worktree Thrum did not create ({t['path']}): Thrum tears down only"
                f" its own, under {base_dir(engine)}; remove it with `git worktree remove {t['path']}`"
            )
    raise NotFound(f"no worktree named {name} (looked for {path})")


def run_audit(engine: Engine, name: str, live_panes: list[str]) -> Audit:
    t = find_worktree(engine, name)
    path = t["path"]
    target = current_branch(engine.layout.repo)
    a = Audit(
        name=name,
        path=path,
        branch=t["branch"],
        head=t["head"],
        target=target,
        live_panes=live_panes,
        agents=agents_in(engine, path),
        archive_ref=f"{ARCHIVE_PREFIX}{name}/<time>",
    )
    if os.path.isdir(path):
        a.uncommitted, a.untracked = status_of(path)
        a.ignored, a.ignored_over_cap, a.ignored_dirs = ignored_of(path)
    if target and t["head"]:
        a.unmerged, a.squash_merged = unmerged_commits(engine.layout.repo, t["head"], target)
    return a


def view(engine: Engine, t: dict) -> dict:
    path = t["path"]
    exists = os.path.isdir(path)
    changed, untracked = status_of(path) if exists else ([], [])
    agents = agents_in(engine, path)
    status = (
        "missing"
        if not exists
        else "clean"
        if not (changed or untracked)
        else f"dirty ({len(changed) + len(untracked)} changed)"
    )
    return {
        "name": os.path.basename(path),
        "path": path,
        "branch": t["branch"],
        "head": t["head"],
        "agent": agents[0] if agents else None,
        "agents": agents,
        "status": status,
    }


# -- engine methods --


@method("worktree.create", WorktreeCreateParams, writes=True)
async def create(engine: Engine, caller: Caller, p: WorktreeCreateParams) -> dict:
    path = path_for(engine, p.name)
    if os.path.exists(path):
        raise Conflict(f"{path} already exists")
    if p.detach and p.branch:
        raise InvalidInput("--detach and --branch are mutually exclusive")
    if p.runtime:  # before the worktree is made: install_for and the session would take it as given
        known_runtime(engine, p.runtime)
    if p.agent is not None and not p.role:
        raise InvalidInput("an agent for the worktree needs --role too")
    if p.agent is not None:  # "" is a bad name, not "no agent"
        problem = names.agent_name_problem(p.agent, p.role)
        if problem:
            raise InvalidName(problem)
        if p.agent in engine.agents:
            raise Conflict(f"agent @{p.agent} already exists in {engine.agents[p.agent]['worktree']}")
    branch = None if p.detach else (p.branch or f"feature/{p.name}")
    if branch:
        check = await asyncio.to_thread(
            git.run, engine.layout.repo, "check-ref-format", "--branch", branch, check=False
        )
        if not check:
            raise InvalidInput(f"invalid branch name {branch!r}")
    repo = engine.layout.repo
    if p.agent and engine.tmux is not None:
        await tmux_methods.session_clash(engine, p.agent)  # its session is named after it
    existed = bool(branch) and await asyncio.to_thread(
        git.ok, repo, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}"
    )
    branch = await asyncio.to_thread(_create, repo, path, branch, p.base, p.detach)
    enrolled = False
    try:
        await asyncio.to_thread(write_redirects, repo, path)
        result: dict = {"name": p.name, "path": path, "branch": branch, "agent": None, "session": None}
        # The runtime named, else the one the agent's session will run (the default): `tmux
        # launch` types its prime command, which exists only once its files are installed.
        runtime = p.runtime or (
            tmux_methods.runtime_for(engine, None).name if p.agent and engine.tmux is not None else None
        )
        if runtime:
            installed = await install_for(engine, path, runtime, p.agent, p.role, p.module)
            if installed:
                result["integrations"] = installed
        if p.agent:
            reg = await enroll(
                engine,
                name=p.agent,
                role=p.role or "",
                worktree=path,
                module=p.module,
                runtime=p.runtime,
                intent=p.intent,
            )
            enrolled = True
            result["agent"] = reg["agent"]
            result["session"] = await _agent_session(engine, p.agent, p, path)
    except BaseException:
        # Nothing of a failed create stays: the agent, the worktree, and the branch it made.
        undo = _undo_create(engine, caller, path, None if existed else branch, p.agent if enrolled else None)
        await asyncio.shield(undo)
        raise
    return result


async def _undo_create(
    engine: Engine, caller: Caller, path: str, branch: str | None, agent: str | None
) -> None:
    repo = engine.layout.repo
    if agent and agent in engine.agents:
        await engine.commit(engine.event("agent.delete", author_of(engine, caller), {"name": agent}))
    await asyncio.to_thread(git.run, repo, "worktree", "remove", "--force", path, check=False)
    await asyncio.to_thread(git.run, repo, "worktree", "prune", check=False)
    if branch:
        await asyncio.to_thread(git.run, repo, "branch", "-D", branch, check=False)


async def _agent_session(engine: Engine, agent: str, p: WorktreeCreateParams, path: str) -> dict | None:
    """The agent's tmux session, created (not launched) in its new worktree, named after the agent:
    the worktree is the caller's new one, so creating it needs no check of its own."""
    if engine.tmux is None:
        return None
    s = await tmux_methods.create_tmux_session(
        engine,
        session=agent,
        cwd=path,
        worktree=path,
        runtime=tmux_methods.runtime_for(engine, p.runtime or None),
        agent=agent,
        role=p.role or "agent",
        module=p.module,
        intent=p.intent,
    )
    return tmux_methods.session_view(engine, s)


@method("worktree.list", Params)
async def list_(engine: Engine, caller: Caller, p: Params) -> dict:
    trees = await asyncio.to_thread(list_worktrees, engine.layout.repo)
    return {"worktrees": [await asyncio.to_thread(view, engine, t) for t in trees]}


async def live_panes_for(engine: Engine, path: str) -> list[str]:
    """Live tmux panes whose agent works in `path` (none when tmux is off)."""
    return await engine.tmux.live_panes_in(path) if engine.tmux is not None else []


@method("worktree.audit", WorktreeNameParams)
async def audit(engine: Engine, caller: Caller, p: WorktreeNameParams) -> dict:
    path = path_for(engine, p.name)
    a = await asyncio.to_thread(run_audit, engine, p.name, await live_panes_for(engine, path))
    return {"audit": asdict(a), "problems": a.problems, "notes": a.notes, "safe": not a.problems}


@method("worktree.teardown", WorktreeTeardownParams, writes=True, timeout=False)
async def teardown(engine: Engine, caller: Caller, p: WorktreeTeardownParams) -> dict:
    path = path_for(engine, p.name)
    require_owner(engine, caller, path, f"tearing down the worktree {p.name}")
    a = await asyncio.to_thread(run_audit, engine, p.name, await live_panes_for(engine, path))
    if a.problems and not p.force:
        also = f"; at stake too: {'; '.join(a.notes)}" if a.notes else ""
        raise Conflict(
            f"refusing to tear down {p.name}: {'; '.join(a.problems)} (pass --force to archive and remove)"
            + also
        )
    repo = engine.layout.repo
    if os.path.isdir(a.path):
        ref, sha = await asyncio.to_thread(archive, repo, a.path, p.name)
    else:
        sha = a.head
        ref = await asyncio.to_thread(keep_archive, repo, p.name, a.head)
    if engine.tmux is not None:
        await engine.tmux.kill_panes_in(a.path)
    await asyncio.to_thread(git.run, repo, "worktree", "remove", "--force", a.path, check=False)
    await asyncio.to_thread(git.run, repo, "worktree", "prune")
    deleted_agents = []
    if not p.keep_agent:
        for name in a.agents:
            await engine.commit(engine.event("agent.delete", author_of(engine, caller), {"name": name}))
            deleted_agents.append(name)
    branch_deleted = False
    if p.delete_branch and a.branch:
        await asyncio.to_thread(git.run, repo, "branch", "-D", a.branch)
        branch_deleted = True
    return {
        "name": p.name,
        "path": a.path,
        "archive_ref": ref,
        "archived": sha,
        "forced": bool(a.problems),
        "problems": a.problems,
        "notes": a.notes,
        "agents_deleted": deleted_agents,
        "branch_deleted": branch_deleted,
        "audit": asdict(a),
    }


@method("worktree.archives", Params)
async def archives(engine: Engine, caller: Caller, p: Params) -> dict:
    return {"archives": await asyncio.to_thread(list_archives, engine.layout.repo)}


def _restore(repo: str, found: dict, path: str, branch: str) -> None:
    """A new worktree at the archive: its commits, and what was uncommitted at teardown back as
    uncommitted changes (the archive's own commit undone into the working tree): deleted files
    deleted, ignored files back (ignored again), and the index as it was when the archive has it
    (its second parent; an archive written before that comes back with nothing staged)."""
    sha = found["sha"]
    start = git.run(repo, "rev-parse", f"{sha}^") if found["uncommitted"] else sha
    _create(repo, path, branch, start, False)
    if found["uncommitted"]:
        git.run(path, "read-tree", "--reset", "-u", sha)
        staged = git.run(repo, "rev-parse", "--verify", "--quiet", f"{sha}^2^{{tree}}", check=False)
        if staged:
            git.run(path, "read-tree", staged)
        else:
            git.run(path, "reset", "--quiet")
    write_redirects(repo, path)


@method("worktree.restore", WorktreeRestoreParams, writes=True)
async def restore(engine: Engine, caller: Caller, p: WorktreeRestoreParams) -> dict:
    repo = engine.layout.repo
    found = await asyncio.to_thread(find_archive, repo, p.ref)
    name = p.name or found["name"]
    problem = name_problem(name)
    if problem:
        raise InvalidName(problem)
    path = path_for(engine, name)
    if os.path.exists(path):
        raise Conflict(f"{path} already exists: restore under another name (--name)")
    branch = f"restored/{name}-{stamp()}"
    await asyncio.to_thread(_restore, repo, found, path, branch)
    return {"name": name, "path": path, "branch": branch, "archive": found}

"""Wiring agent runtimes to Thrum, each in its own formats and places (RUNTIMES.md §12).

`install(Request)` is the one entry point: `thrum init --runtime`, `quickstart --runtime`, and the
engine's `worktree.create` / `tmux.create` (so the console's new-agent dialog too) all call it. One
module per runtime says what it writes; `common` holds the merge rules they share.
"""

from __future__ import annotations

import importlib
import os
import subprocess
from dataclasses import dataclass, field
from types import ModuleType

from thrum_engine.integrations.common import PARTS, InstallError, Wiring, Workspace
from thrum_engine.integrations.entries import PRIME, RUNTIMES

__all__ = [
    "PARTS",
    "RUNTIMES",
    "InstallError",
    "Request",
    "install",
    "known",
    "module",
    "plan",
    "prime_missing",
]

GENERIC_BLOCK = """## Thrum

The agents working in this repo coordinate through Thrum (`thrum --help`).
- Your briefing (identity, team, unread mail, your work, what to do next): `thrum prime`
- Read messages: `thrum inbox` (marks them read; `--unread` only peeks); wait for one: `thrum wait --timeout 5m`
- Send: `thrum send "..." --to @name` (or @role, @everyone); reply in a thread: `thrum reply MSG_ID "..."`
- Say what you are doing: `thrum session set-intent "..."`; who is around: `thrum team`
"""


def known(name: str) -> bool:
    return name in RUNTIMES


def module(name: str) -> ModuleType:
    if not known(name):
        raise InstallError(f"no integration for runtime {name!r}: one of {', '.join(RUNTIMES)}")
    return importlib.import_module(f"thrum_engine.integrations.{name}")


def prime_missing(runtime: str, worktree: str) -> str | None:
    """Why `runtime`'s prime command would be an unknown command in `worktree` (its skill or command
    file is in neither the worktree nor the user-level place `init --user` writes), or None when it
    can be typed. Only for the runtimes Thrum wires: a custom preset's prime is its owner's."""
    from thrum_engine.integrations import user_scope
    from thrum_engine.integrations.entries import PRIME_FILE

    rel = PRIME_FILE.get(runtime) if known(runtime) else None
    if not rel or os.path.isfile(os.path.join(worktree, rel)):
        return None
    if user_scope.supported(runtime):
        home_rel = user_scope.user_path(runtime, rel)
        if home_rel and os.path.isfile(os.path.join(os.path.expanduser("~"), home_rel)):
            return None
    return (
        f"{rel} is missing: `{PRIME[runtime]}` would be an unknown command (`thrum init --runtime {runtime}`)"
    )


def mcp_available() -> bool:
    """Whether this thrum has `thrum mcp serve`: MCP entries that start a missing command would
    only show the user an error in their runtime."""
    from thrum_engine.cli.main import BY_PATH

    return "mcp serve" in BY_PATH


@dataclass
class Request:
    worktree: str
    repo: str
    runtimes: list[str]
    agent: str | None = None
    role: str | None = None
    module: str = ""
    coordinator: str = "coordinator"
    force: bool = False
    dry_run: bool = False
    stealth: bool = False
    parts: tuple[str, ...] = PARTS
    roles_mode: str = "default"
    notes: list[str] = field(default_factory=list)
    user: bool = False  # into the user's home (integrations.user_scope), not the worktree


def instruction_block(req: Request) -> str:
    """The block for the worktree's instruction files (CLAUDE.md, AGENTS.md, GEMINI.md...): always
    the generic block. Those files are committed and shared by every agent working from the branch
    (a worktree created later checks out the same CLAUDE.md), so they must name no agent; who an
    agent is, its role and its team reach it at run time from the SessionStart hook and `thrum
    prime`, which render the role template for that agent."""
    del req  # the same block for every agent (kept as a parameter for the callers' sake)
    return GENERIC_BLOCK


def plan(req: Request) -> Workspace:
    if req.user:
        return _plan_user(req)
    ws = Workspace(req.worktree)
    wiring = _wiring(req, ws, instruction_block(req))
    for name in req.runtimes:
        module(name).wire(ws, wiring)
    return ws


def _wiring(req: Request, ws: Workspace, block: str) -> Wiring:
    return Wiring(
        root=ws.root,
        repo=req.repo,
        block=block,
        force=req.force,
        parts=req.parts,
        mcp="mcp" in req.parts and mcp_available(),
    )


def _plan_user(req: Request) -> Workspace:
    from thrum_engine.integrations import user_scope

    unsupported = [r for r in req.runtimes if not user_scope.supported(r)]
    if unsupported:
        raise InstallError(
            f"--user: no user-level wiring for {', '.join(unsupported)}; install it per worktree (without --user)"
        )
    ws = user_scope.UserWorkspace(user_scope.home_dir())
    wiring = _wiring(req, ws, GENERIC_BLOCK)  # a user-level file serves every agent: it names none
    for name in req.runtimes:
        ws.runtime = name
        module(name).wire(ws, wiring)
    return ws


def _tracked(worktree: str, rels: list[str]) -> set[str]:
    if not rels:
        return set()
    proc = subprocess.run(
        ["git", "ls-files", "-z", "--", *rels], cwd=worktree, capture_output=True, text=True, check=False
    )
    return {p for p in proc.stdout.split("\0") if p}


def exclude(worktree: str, rels: list[str]) -> list[str]:
    """Anchored rules for `rels` in the common `info/exclude` (every worktree reads it)."""
    from thrum_engine import runtime_files

    return runtime_files.exclude(worktree, rels, "--stealth")


def is_linked_worktree(worktree: str) -> bool:
    """A `git worktree add` checkout (its git dir is not the common one), not the main checkout."""
    from thrum_engine.layout import NotARepo, common_git_dir, worktree_git_dir

    try:
        return os.path.realpath(worktree_git_dir(worktree)) != os.path.realpath(common_git_dir(worktree))
    except (OSError, NotARepo):
        return False


def install(req: Request) -> dict:
    """Plan, then (unless dry_run) write. Raises InstallError, with nothing written, when a file
    cannot be merged into."""
    for name in req.runtimes:
        module(name)  # an unknown runtime is refused before anything is read
    ws = plan(req)
    pending = ws.pending()
    skipped: list[str] = []
    if req.stealth and not req.user:
        tracked = _tracked(ws.root, [c.rel for c in pending])
        for c in pending:
            if c.rel in tracked:
                skipped.append(c.rel)
                del ws.changes[c.rel]
        pending = ws.pending()
        if skipped:
            ws.notes.append("--stealth leaves tracked files alone: not changed " + ", ".join(sorted(skipped)))
    result: dict = {
        "worktree": ws.root,
        "user": req.user,
        "runtimes": list(req.runtimes),
        "dry_run": req.dry_run,
        "files": [
            {"path": c.rel, "action": c.action, "parts": sorted(set(c.parts))}
            for c in sorted(ws.changes.values(), key=lambda c: c.rel)
        ],
        "notes": ws.notes + req.notes + _actions(req.runtimes, pending, user=req.user),
        "kept": list(ws.kept),
        "prime": {r: PRIME[r] for r in req.runtimes},
    }
    if req.dry_run:
        result["diff"] = ws.diff()
        return result
    created = [c.rel for c in pending if c.old is None]
    result["written"] = ws.apply()
    if not req.user:
        _hide_runtime_files(req, ws, created, skipped, result)
    return result


def _actions(runtimes: list[str], pending: list, *, user: bool = False) -> list[str]:
    """The step each runtime needs from the user before it runs what this install writes (trusting
    Codex hooks, approving project MCP servers, trusting a Gemini folder): a ✓ for a file the runtime
    skips until then must say so, once per runtime, only when such a file is written. `user`: the
    steps for user-level files (USER_ACTION: approvals and trusted folders are about projects)."""
    touched = {p for c in pending for p in c.parts}
    out: list[str] = []
    for name in runtimes:
        action: dict[str, str] = getattr(module(name), "USER_ACTION" if user else "ACTION", {})
        seen = [text for part, text in action.items() if f"{name}:{part}" in touched]
        out += [text for i, text in enumerate(seen) if text not in seen[:i]]
    return out


def _hide_runtime_files(
    req: Request, ws: Workspace, created: list[str], skipped: list[str], result: dict
) -> None:
    """Keep what Thrum installed out of `git status` where it must not show: everything with
    --stealth; in a linked worktree (an agent's), the files Thrum created there, so a fresh worktree
    is clean, `git add -A` commits none of them, and teardown and review do not count them as work
    (runtime_files records them by hash: an edited one counts again)."""
    from thrum_engine import runtime_files

    if req.stealth:
        ours = [c.rel for c in ws.changes.values() if c.rel not in skipped]
        result["excluded"] = exclude(ws.root, ours)
    elif created and is_linked_worktree(ws.root):
        ours = [rel for rel in created if rel not in _tracked(ws.root, created)]
        result["excluded"] = runtime_files.exclude(ws.root, ours, "installed into agents' worktrees")
    else:
        ours = []
    known = runtime_files.manifest(ws.root)
    keep = [*ours, *(rel for rel in result["written"] if rel in known)]
    if keep:
        runtime_files.record(ws.root, keep)


def describe(name: str) -> dict | None:
    """What Thrum installs for a runtime (for `runtime show`); None for a runtime it has no wiring for."""
    if not known(name):
        return None
    mod = module(name)
    from thrum_engine.integrations.entries import PRIME_FILE

    files = {
        "instructions": getattr(mod, "INSTRUCTIONS", None) or getattr(mod, "RULE", None),
        "prime": PRIME_FILE.get(name),
        "hooks": (getattr(mod, "HOOKS_FILE", None) or getattr(mod, "SETTINGS", None)) if mod.HOOKS else None,
        "mcp": getattr(mod, "MCP", None) or getattr(mod, "CONFIG", None) or getattr(mod, "SETTINGS", None),
    }
    return {
        "prime": PRIME[name],
        "files": files,
        "hook_events": {k: v[0] for k, v in mod.HOOKS.items()},
        "notes": list(mod.NOTES),
        "install": f"thrum init --runtime {name}",
    }

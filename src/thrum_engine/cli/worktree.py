"""worktree create|list|teardown."""

from __future__ import annotations

from thrum_engine import names
from thrum_engine.cli.args import exclusive
from thrum_engine.cli.call import CliError, Ctx
from thrum_engine.cli.output import line


def create(ctx: Ctx) -> int:
    a = ctx.args
    exclusive(a, "--detach", "--branch")
    name = a["worktree"]
    problem = names.problem("worktree", name) or (
        names.runtime_name_problem(a["runtime"]) if a.get("runtime") is not None else None
    )
    if problem:
        raise CliError(problem)
    params = {
        "name": name,
        "detach": a["detach"],
        "module": a.get("module") or "",
        "intent": a.get("intent") or "",
        "runtime": a.get("runtime") or "",
    }
    for key in ("branch", "base", "role"):
        if a.get(key):
            params[key] = a[key]
    if a.get("name") is not None:  # `--name ""` is a bad name, not "no agent"
        params["agent"] = a["name"]
    r = ctx.call("worktree.create", params)

    def human(r: dict) -> None:
        line(f"✓ Worktree created at {r['path']}")  # upstream's scripts grep this line
        line(f"  {r['name']} " + (f"on {r['branch']}" if r["branch"] else "(detached)"))
        if r["agent"]:
            line(f"✓ Agent @{r['agent']['name']} registered there")
        if r.get("session"):
            line(
                f"✓ tmux session {r['session']['name']} ({r['session']['runtime']}); "
                f"start it with `thrum tmux launch {r['session']['name']}`"
            )

    return ctx.emit(r, human)


def list_(ctx: Ctx) -> int:
    r = ctx.call("worktree.list")

    def human(r: dict) -> None:
        if not r["worktrees"]:
            line("No worktrees.")
        for w in r["worktrees"]:
            who = "@" + w["agent"] if w["agent"] else "-"
            line(f"{w['name']}  {w['branch'] or 'detached'}  {w['status']}  {who}  {w['path']}")

    return ctx.emit(r["worktrees"] if ctx.json else r, human)


def teardown(ctx: Ctx) -> int:
    a = ctx.args
    r = ctx.call(
        "worktree.teardown",
        {
            "name": a["worktree"],
            "force": a["force"],
            "delete_branch": a["delete_branch"],
            "keep_agent": a["keep_agent"],
        },
        timeout=None,
    )

    def human(r: dict) -> None:
        if r["forced"]:
            line("! forced past: " + "; ".join(r["problems"]))
        line(f"✓ Archived {r['archived'][:12]} as {r['archive_ref']}")
        for note in r.get("notes") or []:  # ignored files archived, ignored folders removed
            line(f"  {note}")
        line(f"✓ Worktree {r['name']} removed")  # upstream's words
        line(f"  {r['path']}")
        for n in r["agents_deleted"]:
            line(f"Removed identity: {n}")
        if r["branch_deleted"]:
            line(f"✓ Deleted branch {r['audit']['branch']}")

    return ctx.emit(r, human)


def archives(ctx: Ctx) -> int:
    r = ctx.call("worktree.archives")

    def human(r: dict) -> None:
        if not r["archives"]:
            line("No archives.")
        for a in r["archives"]:
            extra = "  (with uncommitted work)" if a["uncommitted"] else ""
            line(f"{a['ref'][len('refs/thrum/archive/') :]}  {a['sha'][:12]}  {a['at']}{extra}")

    return ctx.emit(r["archives"] if ctx.json else r, human)


def restore(ctx: Ctx) -> int:
    params = {"ref": ctx.args["archive"]}
    if ctx.args.get("name") is not None:
        params["name"] = ctx.args["name"]
    r = ctx.call("worktree.restore", params)

    def human(r: dict) -> None:
        line(f"✓ Restored {r['archive']['ref']} as worktree {r['name']} at {r['path']} on {r['branch']}")

    return ctx.emit(r, human)

"""roles list | deploy: the role templates, who uses each, and rendering them into agents' files."""

from __future__ import annotations

import difflib
import os

from thrum_engine.cli.call import CliError, Ctx
from thrum_engine.cli.output import line
from thrum_engine.files import write_private


def _agents(ctx: Ctx) -> list[dict]:
    return ctx.call("agent.list", {})["agents"]


def list_(ctx: Ctx) -> int:
    from thrum_engine.integrations import roles

    repo = ctx.layout.repo
    agents = _agents(ctx)
    by_template: dict[str, list[str]] = {}
    for ag in agents:
        path, _ = roles.template_path(repo, ag.get("role") or "")
        by_template.setdefault(path, []).append(ag["name"])
    out = []
    for t in roles.templates(repo):
        out.append({**t, "agents": sorted(by_template.get(t["path"], []))})
    r = {"templates": out, "dir": roles.repo_dir(repo), "variables": list(roles.VARIABLES)}

    def human(r: dict) -> None:
        for t in r["templates"]:
            who = ", ".join("@" + a for a in t["agents"]) or "-"
            line(f"{t['role']:14s} {t['origin']:8s} {who}")
        line(f"(edit or add templates in {r['dir']}; variables: {', '.join(r['variables'])})")

    return ctx.emit(r, human)


def _instruction_runtimes(worktree: str) -> list[str]:
    """The runtimes whose instruction file in `worktree` carries Thrum's block (or rule file)."""
    from thrum_engine import integrations
    from thrum_engine.integrations.common import MD_BEGIN

    found = []
    for name in integrations.RUNTIMES:
        mod = integrations.module(name)
        rel = getattr(mod, "INSTRUCTIONS", None) or getattr(mod, "RULE", None)
        if not rel:
            continue
        try:
            with open(os.path.join(worktree, rel), encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, TypeError):
            continue
        if MD_BEGIN in text or rel == getattr(mod, "RULE", None):
            found.append(name)
    return found


def deploy(ctx: Ctx) -> int:
    """Render each agent's role template into its preamble and its worktree's instruction blocks.
    From the main checkout (the operator) for every agent or `--agent A`; from an agent's
    worktree only for that agent."""
    from thrum_engine import integrations
    from thrum_engine.cli.context import paths
    from thrum_engine.integrations import roles
    from thrum_engine.names import strip_at

    layout = ctx.layout
    agents = _agents(ctx)
    agent = ctx.agent_flag("--agent")
    want = strip_at(agent) if agent is not None else None
    if layout.worktree != layout.repo:
        me = ctx.require_me()
        if want and want != me:
            raise CliError(
                f"only the operator (in the main checkout) deploys roles for @{want}; you are @{me}"
            )
        want = me
    chosen = [a for a in agents if want is None or a["name"] == want]
    if want and not chosen:
        raise CliError(f"no agent named @{want}")
    dry = ctx.args["dry_run"]
    report = []
    diffs = []
    for ag in chosen:
        wt = ag.get("worktree") or layout.repo
        coordinator = roles.coordinator_of(agents, ag["name"], layout.repo)
        values = roles.RoleVars(
            ag["name"], ag.get("role") or "agent", ag.get("module") or "", wt, coordinator, layout.repo
        )
        text = roles.render(layout.repo, values)
        _, ppath = paths(layout, ag["name"])
        old = None
        if os.path.exists(ppath):
            with open(ppath, encoding="utf-8") as fh:
                old = fh.read()
        files = []
        if old != text:
            files.append({"path": ppath, "action": "create" if old is None else "update"})
            diffs += difflib.unified_diff(
                (old or "").splitlines(keepends=True), text.splitlines(keepends=True), ppath, ppath
            )
            if not dry:
                write_private(ppath, text)
        runtimes = _instruction_runtimes(wt) if os.path.isdir(wt) else []
        if runtimes:
            req = integrations.Request(
                worktree=wt,
                repo=layout.repo,
                runtimes=runtimes,
                agent=ag["name"],
                role=ag.get("role"),
                module=ag.get("module") or "",
                coordinator=coordinator,
                force=True,
                dry_run=dry,
                parts=("instructions",),
            )
            try:
                r = integrations.install(req)
            except integrations.InstallError as exc:
                raise CliError(exc.message) from None
            files += [
                {"path": os.path.join(wt, f["path"]), "action": f["action"]}
                for f in r["files"]
                if f["action"] != "keep"
            ]
            if r.get("diff"):
                diffs.append(r["diff"])
        template, origin = roles.template_path(layout.repo, ag.get("role") or "")
        report.append(
            {
                "agent": ag["name"],
                "role": ag.get("role"),
                "template": template,
                "origin": origin,
                "files": files,
            }
        )
    result = {"dry_run": dry, "agents": report}
    if dry:
        result["diff"] = "".join(d if d.endswith("\n") else d + "\n" for d in diffs)

    def human(r: dict) -> None:
        verb = "Would update" if r["dry_run"] else "✓ Updated"
        for a in r["agents"]:
            if not a["files"]:
                line(f"@{a['agent']}: up to date ({a['role']} from {a['origin']} template)")
            for f in a["files"]:
                line(f"{verb} {f['path']} for @{a['agent']} ({a['role']})")
        if r.get("diff"):
            line(r["diff"].rstrip("\n"))

    return ctx.emit(result, human)

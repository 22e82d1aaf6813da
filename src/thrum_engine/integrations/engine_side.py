"""The installer as the engine calls it (worktree.create, tmux.create: so the console's new-agent
dialog too): off the event loop, with the repo's recorded choices, for known runtimes only (a custom
preset or the shell gets no files)."""

from __future__ import annotations

import asyncio
import json
import os

from thrum_engine import integrations
from thrum_engine.integrations import roles


def _config(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


async def install_for(
    engine, worktree: str, runtime: str, agent: str | None, role: str | None, module: str = ""
) -> dict | None:
    """Install `runtime`'s files into `worktree` (a no-op when they are in place); None when Thrum
    has no wiring for that runtime. Raises InstallError (nothing written) on a file it cannot merge."""
    if not integrations.known(runtime):
        return None
    cfg = _config(engine.layout.config_file)
    team = [{"name": n, **a} for n, a in engine.agents.items()]
    coordinator = roles.coordinator_of(team, agent, engine.layout.repo)
    req = integrations.Request(
        worktree=os.path.realpath(worktree),
        repo=engine.layout.repo,
        runtimes=[runtime],
        agent=agent,
        role=role or (engine.agents.get(agent or "", {}).get("role")),
        module=module,
        coordinator=coordinator,
        stealth=bool((cfg.get("integrations") or {}).get("stealth")),
        roles_mode=str((cfg.get("roles") or {}).get("mode") or "default"),
    )
    return await asyncio.to_thread(integrations.install, req)

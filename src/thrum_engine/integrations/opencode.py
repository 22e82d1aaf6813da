"""OpenCode: AGENTS.md, `/thrum-prime` (.opencode/commands/thrum-prime.md), `mcp.thrum` in
opencode.json. No hooks: OpenCode runs only JS/TS plugins, and the 2.x plugin format is not settled
enough to ship one that surely loads; mail reaches an OpenCode agent by nudge (or MCP)."""

from __future__ import annotations

from thrum_engine.integrations import prime_text
from thrum_engine.integrations.common import Wiring, Workspace, named_entry, thrum_argv
from thrum_engine.integrations.entries import PRIME_FILE

NAME = "opencode"
INSTRUCTIONS = "AGENTS.md"
CONFIG = "opencode.json"
HOOKS: dict = {}
NOTES = ["no hooks are installed (OpenCode takes JS/TS plugins only): mail is delivered by nudge"]


def wire(ws: Workspace, w: Wiring) -> None:
    if w.wants("instructions"):
        ws.block(INSTRUCTIONS, w.block, f"{NAME}:instructions", w.force, heading="# AGENTS.md")
    if w.wants("prime"):
        ws.owned_file(
            PRIME_FILE[NAME] or "", prime_text.markdown("thrum-prime", skill=False), f"{NAME}:prime", w.force
        )
    if w.wants("mcp") and w.mcp:
        argv = thrum_argv()
        server = {"type": "local", "command": [*argv, "mcp", "serve"], "enabled": True}

        def config(d: dict) -> None:
            if not d:
                d["$schema"] = "https://opencode.ai/config.json"
            named_entry(d, CONFIG, "mcp", "thrum", server, w.force)

        ws.json(CONFIG, f"{NAME}:mcp", config)

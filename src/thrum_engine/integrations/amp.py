"""Amp: AGENTS.md and `amp.mcpServers` in .amp/settings.json. Amp has no documented hooks and its
`/` opens a palette, so the prime is a plain sentence (entries.PRIME) and nothing is installed for it."""

from __future__ import annotations

from thrum_engine.integrations.common import Wiring, Workspace, named_entry, thrum_argv

NAME = "amp"
INSTRUCTIONS = "AGENTS.md"
SETTINGS = ".amp/settings.json"
HOOKS: dict = {}
NOTES = ["no hooks (Amp documents none); workspace MCP servers need your approval in Amp"]


def wire(ws: Workspace, w: Wiring) -> None:
    if w.wants("instructions"):
        ws.block(INSTRUCTIONS, w.block, f"{NAME}:instructions", w.force, heading="# AGENTS.md")
    if w.wants("mcp") and w.mcp:
        argv = thrum_argv()
        server = {"command": argv[0], "args": [*argv[1:], "mcp", "serve"]}
        ws.json(
            SETTINGS,
            f"{NAME}:mcp",
            lambda d: named_entry(d, SETTINGS, "amp.mcpServers", "thrum", server, w.force),
        )

"""Amp: AGENTS.md and `amp.mcpServers` in .amp/settings.json. Amp has no documented hooks and its
`/` opens a palette, so the prime is a plain sentence (entries.PRIME) and nothing is installed for it."""

from __future__ import annotations

from thrum_engine.integrations.common import Wiring, Workspace, instructions, mcp_json, mcp_server

NAME = "amp"
INSTRUCTIONS = "AGENTS.md"
SETTINGS = ".amp/settings.json"
HOOKS: dict = {}
# What the user must do before the runtime uses what was installed: `init` says it when it writes.
ACTION = {"mcp": "Amp runs workspace MCP servers once you approve them in Amp"}
NOTES = ["no hooks (Amp documents none); workspace MCP servers need your approval in Amp"]


def wire(ws: Workspace, w: Wiring) -> None:
    instructions(ws, w, NAME, INSTRUCTIONS)
    mcp_json(ws, w, NAME, SETTINGS, "amp.mcpServers", mcp_server())

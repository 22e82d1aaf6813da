"""Auggie: AGENTS.md and `/thrum-prime` (.augment/commands/thrum-prime.md). Its hooks' input and
output shapes and a project-level MCP file are not documented well enough to install: none are."""

from __future__ import annotations

from thrum_engine.integrations.common import Wiring, Workspace, instructions, prime_markdown

NAME = "auggie"
INSTRUCTIONS = "AGENTS.md"
HOOKS: dict = {}
NOTES = [
    (
        "no hooks installed (Auggie's hook shapes are unverified); no MCP entry (Auggie reads MCP servers"
        " from ~/.augment/settings.json only)"
    )
]


def wire(ws: Workspace, w: Wiring) -> None:
    instructions(ws, w, NAME, INSTRUCTIONS)
    prime_markdown(ws, w, NAME, skill=False)

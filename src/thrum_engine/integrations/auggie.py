"""Auggie: AGENTS.md and `/thrum-prime` (.augment/commands/thrum-prime.md). Its hooks' input and
output shapes and a project-level MCP file are not documented well enough to install: none are."""

from __future__ import annotations

from thrum_engine.integrations import prime_text
from thrum_engine.integrations.common import Wiring, Workspace
from thrum_engine.integrations.entries import PRIME_FILE

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
    if w.wants("instructions"):
        ws.block(INSTRUCTIONS, w.block, f"{NAME}:instructions", w.force, heading="# AGENTS.md")
    if w.wants("prime"):
        ws.owned_file(
            PRIME_FILE[NAME] or "", prime_text.markdown("thrum-prime", skill=False), f"{NAME}:prime", w.force
        )

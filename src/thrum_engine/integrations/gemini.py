"""Gemini CLI: GEMINI.md, `/thrum:prime` (.gemini/commands/thrum/prime.toml), hooks and mcpServers
in .gemini/settings.json (hook timeouts in milliseconds; stdout must be JSON only)."""

from __future__ import annotations

from thrum_engine.integrations import prime_text
from thrum_engine.integrations.common import (
    JSON_DIALECT,
    Wiring,
    Workspace,
    hook_command,
    hook_groups,
    instructions,
    mcp_server,
    named_entry,
)
from thrum_engine.integrations.entries import PRIME_FILE

NAME = "gemini"
INSTRUCTIONS = "GEMINI.md"
SETTINGS = ".gemini/settings.json"
# Gemini event -> (thrum hook event, timeout in milliseconds)
HOOKS = {
    "SessionStart": ("session-start", 10_000),
    "BeforeAgent": ("prompt-submit", 5_000),
    "AfterAgent": ("stop", 10_000),
    "PreCompress": ("pre-compact", 10_000),
}
# What the user must do before the runtime uses what was installed: `init` says it when it writes.
_TRUST = "Gemini CLI reads .gemini/settings.json (hooks, MCP) only in a folder you trusted: trust this one"
ACTION = {"hooks": _TRUST, "mcp": _TRUST}
NOTES = [
    "Gemini reads .gemini/settings.json (hooks, MCP) only in a folder you trusted",
    "AfterAgent is Gemini's Stop: a `deny` decision makes it take another turn to read waiting mail",
]


def wire(ws: Workspace, w: Wiring) -> None:
    instructions(ws, w, NAME, INSTRUCTIONS)
    if w.wants("prime"):
        ws.owned_file(PRIME_FILE[NAME] or "", prime_text.gemini_toml(), f"{NAME}:prime", w.force)
    if w.wants("hooks") or (w.wants("mcp") and w.mcp):

        def settings(data: dict) -> None:
            if w.wants("hooks"):
                for event, (ours, timeout) in HOOKS.items():
                    hook = {
                        "name": f"thrum-{ours}",
                        "type": "command",
                        "command": hook_command(ours, NAME),
                        "timeout": timeout,
                    }
                    hook_groups(data, SETTINGS, event, {"hooks": [hook]}, w.force, ws.keep_edited)
            if w.wants("mcp") and w.mcp:
                named_entry(data, SETTINGS, "mcpServers", "thrum", mcp_server(), w.force, ws.keep_edited)

        ws.json(SETTINGS, f"{NAME}:hooks", settings, dialect=JSON_DIALECT[NAME], force=w.force)

"""Cursor agent CLI: .cursor/rules/thrum.mdc, `/thrum-prime`, .cursor/hooks.json (camelCase events,
a flat list each), .cursor/mcp.json."""

from __future__ import annotations

from thrum_engine.integrations import prime_text
from thrum_engine.integrations.common import (
    Wiring,
    Workspace,
    flat_hooks,
    hook_command,
    named_entry,
    thrum_argv,
)
from thrum_engine.integrations.entries import PRIME_FILE

NAME = "cursor"
RULE = ".cursor/rules/thrum.mdc"
HOOKS_FILE = ".cursor/hooks.json"
MCP = ".cursor/mcp.json"
# Cursor event -> (thrum hook event, timeout in seconds). beforeSubmitPrompt cannot add context:
# it only records that the agent is active; mail reaches it at `stop` (a follow-up message).
HOOKS = {
    "sessionStart": ("session-start", 10),
    "beforeSubmitPrompt": ("prompt-submit", 5),
    "stop": ("stop", 10),
    "preCompact": ("pre-compact", 10),
}
STOP_LOOP_LIMIT = 5
NOTES = [
    "a misspelled event in hooks.json loads silently and never fires: `thrum doctor integrations` checks the names",
    "project MCP servers need approval (`agent --approve-mcps`, or once in the CLI)",
]


def rule(body: str) -> str:
    return (
        "---\ndescription: How this agent works with its team through Thrum\nglobs:\nalwaysApply: true\n---\n\n"
        + body.rstrip()
        + "\n"
    )


def wire(ws: Workspace, w: Wiring) -> None:
    if w.wants("instructions"):
        ws.owned_file(RULE, rule(w.block), f"{NAME}:instructions", w.force)
    if w.wants("prime"):
        ws.owned_file(
            PRIME_FILE[NAME] or "", prime_text.markdown("thrum-prime", skill=False), f"{NAME}:prime", w.force
        )
    if w.wants("hooks"):

        def hooks(data: dict) -> None:
            data.setdefault("version", 1)
            for event, (ours, timeout) in HOOKS.items():
                entry: dict = {"command": hook_command(ours, NAME), "timeout": timeout}
                if event == "stop":
                    entry["loop_limit"] = STOP_LOOP_LIMIT
                flat_hooks(data, HOOKS_FILE, event, entry, w.force)

        ws.json(HOOKS_FILE, f"{NAME}:hooks", hooks)
    if w.wants("mcp") and w.mcp:
        argv = thrum_argv()
        server = {"command": argv[0], "args": [*argv[1:], "mcp", "serve"]}
        ws.json(MCP, f"{NAME}:mcp", lambda d: named_entry(d, MCP, "mcpServers", "thrum", server, w.force))

"""Cursor agent CLI: .cursor/rules/thrum.mdc, `/thrum-prime`, .cursor/hooks.json (camelCase events,
a flat list each), .cursor/mcp.json."""

from __future__ import annotations

from thrum_engine.integrations.common import (
    Wiring,
    Workspace,
    flat_hooks,
    hook_command,
    mcp_json,
    mcp_server,
    prime_markdown,
)

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
# What the user must do before the runtime uses what was installed: `init` says it when it writes.
ACTION = {
    "mcp": "Cursor runs project MCP servers once you approve them (`agent --approve-mcps`, or once in the CLI)"
}
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
    prime_markdown(ws, w, NAME, skill=False)
    if w.wants("hooks"):

        def hooks(data: dict) -> None:
            data.setdefault("version", 1)
            for event, (ours, timeout) in HOOKS.items():
                entry: dict = {"command": hook_command(ours, NAME), "timeout": timeout}
                if event == "stop":
                    entry["loop_limit"] = STOP_LOOP_LIMIT
                flat_hooks(data, HOOKS_FILE, event, entry, w.force, ws.keep_edited)

        ws.json(HOOKS_FILE, f"{NAME}:hooks", hooks)
    mcp_json(ws, w, NAME, MCP, "mcpServers", mcp_server())

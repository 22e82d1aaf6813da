"""Claude Code: CLAUDE.md, the `/thrum-prime` skill, hooks in .claude/settings.json, .mcp.json."""

from __future__ import annotations

from thrum_engine.integrations.common import (
    Wiring,
    Workspace,
    claude_style_hooks,
    instructions,
    mcp_json,
    mcp_server,
    prime_markdown,
)

NAME = "claude"
INSTRUCTIONS = "CLAUDE.md"
SETTINGS = ".claude/settings.json"
MCP = ".mcp.json"
# Claude event -> (thrum hook event, matcher, timeout in seconds)
HOOKS = {
    "SessionStart": ("session-start", "startup|resume|clear|compact", 10),
    "UserPromptSubmit": ("prompt-submit", None, 5),
    "Stop": ("stop", None, 10),
    "PreCompact": ("pre-compact", None, 10),
}
MCP_APPROVAL = "Claude Code asks you to approve the MCP servers in .mcp.json the first time it starts here"
NOTES = [
    "the SessionStart hook briefs the agent (also after /compact); Stop blocks while mail is waiting",
    "MCP servers in .mcp.json need the user's approval the first time Claude Code starts here",
]
# What the user must do before the runtime uses what was installed: `init` says it when it writes.
ACTION = {"mcp": MCP_APPROVAL}


def wire(ws: Workspace, w: Wiring) -> None:
    instructions(ws, w, NAME, INSTRUCTIONS)
    prime_markdown(ws, w, NAME, skill=True)
    claude_style_hooks(ws, w, NAME, SETTINGS, HOOKS)
    mcp_json(ws, w, NAME, MCP, "mcpServers", mcp_server(type="stdio"))

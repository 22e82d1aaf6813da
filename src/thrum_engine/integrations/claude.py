"""Claude Code: CLAUDE.md, the `/thrum-prime` skill, hooks in .claude/settings.json, .mcp.json."""

from __future__ import annotations

from thrum_engine.integrations import prime_text
from thrum_engine.integrations.common import (
    Wiring,
    Workspace,
    hook_command,
    hook_groups,
    named_entry,
    thrum_argv,
)
from thrum_engine.integrations.entries import PRIME_FILE

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
NOTES = [
    "the SessionStart hook briefs the agent (also after /compact); Stop blocks while mail is waiting",
    "MCP servers in .mcp.json need the user's approval the first time Claude Code starts here",
]


def wire(ws: Workspace, w: Wiring) -> None:
    if w.wants("instructions"):
        ws.block(INSTRUCTIONS, w.block, f"{NAME}:instructions", w.force, heading="# CLAUDE.md")
    if w.wants("prime"):
        ws.owned_file(
            PRIME_FILE[NAME] or "", prime_text.markdown("thrum-prime", skill=True), f"{NAME}:prime", w.force
        )
    if w.wants("hooks"):

        def hooks(data: dict) -> None:
            for event, (ours, matcher, timeout) in HOOKS.items():
                group: dict = {
                    "hooks": [{"type": "command", "command": hook_command(ours, NAME), "timeout": timeout}]
                }
                if matcher:
                    group = {"matcher": matcher, **group}
                hook_groups(data, SETTINGS, event, group, w.force)

        ws.json(SETTINGS, f"{NAME}:hooks", hooks)
    if w.wants("mcp") and w.mcp:
        argv = thrum_argv()
        server = {"type": "stdio", "command": argv[0], "args": [*argv[1:], "mcp", "serve"]}
        ws.json(MCP, f"{NAME}:mcp", lambda d: named_entry(d, MCP, "mcpServers", "thrum", server, w.force))

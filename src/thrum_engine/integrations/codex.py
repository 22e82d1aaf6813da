"""Codex CLI: AGENTS.md, the `$thrum-prime` skill, .codex/hooks.json, [mcp_servers.thrum]."""

from __future__ import annotations

import json

from thrum_engine.integrations import prime_text
from thrum_engine.integrations.common import Wiring, Workspace, hook_command, hook_groups, thrum_argv
from thrum_engine.integrations.entries import PRIME_FILE

NAME = "codex"
INSTRUCTIONS = "AGENTS.md"
HOOKS_FILE = ".codex/hooks.json"
CONFIG = ".codex/config.toml"
HOOKS = {
    "SessionStart": ("session-start", "startup|resume|clear|compact", 10),
    "UserPromptSubmit": ("prompt-submit", None, 5),
    "Stop": ("stop", None, 10),
    "PreCompact": ("pre-compact", None, 10),
}
TRUST_STEP = (
    "Codex runs project hooks only in a trusted project and only after you trust their exact content:"
    " start `codex` in this worktree, open `/hooks` and choose to trust Thrum's hooks (again after"
    " `thrum init --force` changes them)"
)
NOTES = [TRUST_STEP, "AGENTS.md is cut at 32 KiB across the git root to the working directory"]


def wire(ws: Workspace, w: Wiring) -> None:
    if w.wants("instructions"):
        ws.block(INSTRUCTIONS, w.block, f"{NAME}:instructions", w.force, heading="# AGENTS.md")
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
                hook_groups(data, HOOKS_FILE, event, group, w.force)

        ws.json(HOOKS_FILE, f"{NAME}:hooks", hooks)
    if w.wants("mcp") and w.mcp:
        argv = thrum_argv()
        body = (
            "[mcp_servers.thrum]\n"
            f"command = {json.dumps(argv[0])}\n"
            f"args = {json.dumps([*argv[1:], 'mcp', 'serve'])}\n"
        )
        ws.toml_block(
            CONFIG,
            body,
            f"{NAME}:mcp",
            w.force,
            present=lambda d: isinstance(d.get("mcp_servers"), dict) and "thrum" in d["mcp_servers"],
        )

"""Codex CLI: AGENTS.md, the `$thrum-prime` skill, .codex/hooks.json, [mcp_servers.thrum]."""

from __future__ import annotations

import json

from thrum_engine.integrations import claude
from thrum_engine.integrations.common import (
    Wiring,
    Workspace,
    claude_style_hooks,
    instructions,
    mcp_server,
    prime_markdown,
)

NAME = "codex"
INSTRUCTIONS = "AGENTS.md"
HOOKS_FILE = ".codex/hooks.json"
CONFIG = ".codex/config.toml"
READ_LIMIT = 32 * 1024  # Codex reads AGENTS.md only up to 32 KiB (RUNTIMES.md §12)
HOOKS = claude.HOOKS  # Codex reads Claude's hook events, matchers and output shapes
TRUST_STEP = (
    "Codex runs project hooks only in a trusted project and only after you trust their exact content:"
    " start `codex` in this worktree, open `/hooks` and choose to trust Thrum's hooks (again after"
    " `thrum init --force` changes them)"
)
# What the user must do before the runtime uses what was installed: `init` says it when it writes
# (Codex docs, /codex/hooks: "Non-managed command hooks must be reviewed and trusted before they
# run"; a new or changed hook is skipped until trusted).
ACTION = {"hooks": "Codex skips these hooks until you trust them: " + TRUST_STEP}
USER_ACTION = {
    "hooks": "Codex skips these hooks until you trust them: start `codex`, open `/hooks` and trust Thrum's"
}
NOTES = [TRUST_STEP, "AGENTS.md is cut at 32 KiB across the git root to the working directory"]


def wire(ws: Workspace, w: Wiring) -> None:
    instructions(ws, w, NAME, INSTRUCTIONS, limit=READ_LIMIT)
    prime_markdown(ws, w, NAME, skill=True)
    claude_style_hooks(ws, w, NAME, HOOKS_FILE, HOOKS)
    if w.wants("mcp") and w.mcp:
        server = mcp_server()
        body = (
            "[mcp_servers.thrum]\n"
            f"command = {json.dumps(server['command'])}\n"
            f"args = {json.dumps(server['args'])}\n"
        )
        ws.toml_block(
            CONFIG,
            body,
            f"{NAME}:mcp",
            w.force,
            present=lambda d: isinstance(d.get("mcp_servers"), dict) and "thrum" in d["mcp_servers"],
        )

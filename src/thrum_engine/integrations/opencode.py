"""OpenCode: AGENTS.md, `/thrum-prime` (.opencode/commands/thrum-prime.md), `mcp.thrum` in
opencode.json, and Thrum's plugin `.opencode/plugins/thrum.js` for the hooks.

OpenCode has no shell-command hooks: it runs JS/TS plugins. The plugin is written for the 2.x
plugin API (a default export `{id, setup}`, discovered in `.opencode/plugins/`; the sources are cited
in opencode_plugin.js) and calls `thrum hook EVENT --runtime opencode` at the same four moments as
the other runtimes' hooks. A 1.x OpenCode (named hook exports) does not run it: its log shows the
plugin failing to load, and mail reaches the agent by nudge as before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from thrum_engine.integrations.common import (
    JSON_DIALECT,
    Wiring,
    Workspace,
    instructions,
    named_entry,
    prime_markdown,
    thrum_argv,
    thrum_executable,
)

NAME = "opencode"
INSTRUCTIONS = "AGENTS.md"
CONFIG = "opencode.json"
CONFIG_JSONC = "opencode.jsonc"  # OpenCode reads both (merged); its docs start projects with this one
HOOKS_FILE = ".opencode/plugins/thrum.js"
PLUGIN_ID = "thrum"
# OpenCode moment -> (thrum hook event,): what the plugin listens to for each.
HOOKS = {
    "session.created": ("session-start",),
    "session.hook(context|request), new turn": ("prompt-submit",),
    "session.execution.succeeded": ("stop",),
    "session.compaction.started": ("pre-compact",),
}
NOTES = [
    (
        "hooks are Thrum's plugin .opencode/plugins/thrum.js (OpenCode 2.x plugin API: default export"
        " {id, setup}); the briefing and unread mail go into the system prompt, a turn that ends with mail"
        " waiting gets a queued prompt to read it"
    ),
    (
        "verified: the file location, the export shape and the hook and event names against OpenCode's"
        " 2.x source and docs; the plugin is run in tests by a node host that loads it as OpenCode does"
        " (not by a real opencode binary)"
    ),
    "OpenCode 1.x does not load 2.x plugins (its log shows the failure): there mail arrives by nudge",
]
_TEMPLATE = os.path.join(os.path.dirname(__file__), "opencode_plugin.js")


def plugin_source(argv: list[str]) -> str:
    """The plugin with the command that starts this thrum baked in."""
    with open(_TEMPLATE, encoding="utf-8") as fh:
        return fh.read().replace("__THRUM_ARGV__", json.dumps(argv))


def config_file(exists: Callable[[str], bool]) -> str:
    """Where `mcp.thrum` goes: opencode.jsonc when the project has it and no opencode.json (the
    user's config is there, and a second file beside it would split it), else opencode.json."""
    return CONFIG_JSONC if not exists(CONFIG) and exists(CONFIG_JSONC) else CONFIG


def wire(ws: Workspace, w: Wiring) -> None:
    instructions(ws, w, NAME, INSTRUCTIONS)
    prime_markdown(ws, w, NAME, skill=False)
    if w.wants("hooks"):
        ws.owned_file(HOOKS_FILE, plugin_source([thrum_executable()]), f"{NAME}:hooks", w.force)
    if w.wants("mcp") and w.mcp:
        argv = thrum_argv()
        server = {"type": "local", "command": [*argv, "mcp", "serve"], "enabled": True}

        rel = config_file(lambda r: ws.read(r) is not None)

        def config(d: dict) -> None:
            if not d:
                d["$schema"] = "https://opencode.ai/config.json"
            named_entry(d, rel, "mcp", "thrum", server, w.force, ws.keep_edited)

        ws.json(rel, f"{NAME}:mcp", config, dialect=JSON_DIALECT[NAME], force=w.force)

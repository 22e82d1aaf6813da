"""Gemini CLI: GEMINI.md, `/thrum:prime` (.gemini/commands/thrum/prime.toml), hooks and mcpServers
in .gemini/settings.json (hook timeouts in milliseconds; stdout must be JSON only)."""

from __future__ import annotations

from thrum_engine.integrations import prime_text
from thrum_engine.integrations.common import (
    JSON_DIALECT,
    InstallError,
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
    "Gemini's Stable channel runs hooks only with `hooksConfig.enabled`: Thrum sets it (your false stays)",
    "AfterAgent is Gemini's Stop: a `deny` decision makes it take another turn to read waiting mail",
]


def hooks_off(data: dict) -> str | None:
    """Why Gemini would run none of the hooks in these settings, if it would not. Hooks are on by
    default only in its Preview and Nightly channels ("If you are on the Stable channel, you must
    explicitly enable the hooks system in your settings.json"), so an unset switch is one too."""
    switch = data.get("hooksConfig")
    enabled = switch.get("enabled") if isinstance(switch, dict) else None
    if enabled is False:
        return "hooksConfig.enabled is false: Gemini runs no hooks"
    if enabled is not True:
        return "hooksConfig.enabled is not set: Gemini's Stable channel runs no hooks without it"
    return None


def context_names(data: dict) -> list[str] | None:
    """The instruction files Gemini reads as `context.fileName` names them (None: the default,
    GEMINI.md). A string is one name."""
    context = data.get("context")
    names = context.get("fileName") if isinstance(context, dict) else None
    if isinstance(names, str):
        return [names]
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else None


def _switch_hooks_on(ws: Workspace, data: dict) -> None:
    switch = data.setdefault("hooksConfig", {})
    if not isinstance(switch, dict):
        raise InstallError(f"{SETTINGS}: `hooksConfig` is not an object; fix it first, nothing was written")
    if switch.get("enabled") is False:  # the user's choice: said, not undone
        ws.notes.append(
            f"{SETTINGS}: hooksConfig.enabled is false, so Gemini runs none of its hooks (Thrum's"
            " included): set it to true for mail to arrive in each turn"
        )
    else:
        switch.setdefault("enabled", True)


def _name_instructions(data: dict) -> None:
    """Add GEMINI.md to a `context.fileName` the user set without it (left alone when unset: then
    GEMINI.md is what Gemini reads)."""
    names = context_names(data)
    if names is None or INSTRUCTIONS in names:
        return
    fn = data["context"]["fileName"]
    data["context"]["fileName"] = [fn, INSTRUCTIONS] if isinstance(fn, str) else [*fn, INSTRUCTIONS]


def wire(ws: Workspace, w: Wiring) -> None:
    instructions(ws, w, NAME, INSTRUCTIONS)
    if w.wants("instructions") and ws.read(SETTINGS) is not None:
        ws.json(
            SETTINGS, f"{NAME}:instructions", _name_instructions, dialect=JSON_DIALECT[NAME], force=w.force
        )
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
                _switch_hooks_on(ws, data)
            if w.wants("mcp") and w.mcp:
                named_entry(data, SETTINGS, "mcpServers", "thrum", mcp_server(), w.force, ws.keep_edited)

        ws.json(SETTINGS, f"{NAME}:hooks", settings, dialect=JSON_DIALECT[NAME], force=w.force)

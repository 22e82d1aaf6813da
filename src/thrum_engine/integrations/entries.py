"""What `tmux launch` types to prime each runtime, and the installed file that makes it work.

One table for both sides: the runtime presets (tmux/runtimes.py) type `PRIME[r]`, and the installer
writes `PRIME_FILE[r]`, the file that runtime loads to know that command (RUNTIMES.md §12). Stdlib
only and tiny: the presets import it on the engine's path.
"""

from __future__ import annotations

PRIME: dict[str, str] = {
    "claude": "/thrum-prime",  # .claude/skills/thrum-prime/SKILL.md; /thrum:prime needs a plugin
    "codex": "$thrum-prime",  # a skill mention; codex rejects slash commands with a colon
    "gemini": "/thrum:prime",  # .gemini/commands/thrum/prime.toml: sub-folders namespace
    "opencode": "/thrum-prime",
    "cursor": "/thrum-prime",  # .cursor/commands/<name>.md is /<name>, not namespaced
    "auggie": "/thrum-prime",
    # Amp's `/` opens a palette, so a slash command would only filter it: a sentence works.
    "amp": "Run `thrum prime` and follow what it says.",
}

PRIME_FILE: dict[str, str | None] = {
    "claude": ".claude/skills/thrum-prime/SKILL.md",
    "codex": ".agents/skills/thrum-prime/SKILL.md",
    "gemini": ".gemini/commands/thrum/prime.toml",
    "opencode": ".opencode/commands/thrum-prime.md",
    "cursor": ".cursor/commands/thrum-prime.md",
    "auggie": ".augment/commands/thrum-prime.md",
    "amp": None,  # typed as plain text: nothing to install
}

# The binary each runtime's preset starts (what a fake in tests is named like).
BINARY: dict[str, str] = {
    "claude": "claude",
    "codex": "codex",
    "gemini": "gemini",
    "opencode": "opencode",
    "cursor": "agent",
    "auggie": "auggie",
    "amp": "amp",
}

RUNTIMES: tuple[str, ...] = tuple(PRIME)

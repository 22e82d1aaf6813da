"""`--user`: the same wiring written once into the user's home instead of into a worktree.

Only when asked (`thrum init --runtime R --user`): nothing else ever writes outside the repo. Each
runtime reads its user-level files somewhere of its own (RUNTIMES.md §12), so the installers' worktree
paths are mapped here, per runtime; a part a runtime has no user-level file for is left out with a
note. The hooks written are the same `thrum hook EVENT` commands: they say nothing outside a Thrum
repo, so a user-level hook is safe in every other project. The instruction block is the generic one
(a user-level file serves every agent, so it names none).
"""

from __future__ import annotations

import os

from thrum_engine.integrations.common import InstallError, Workspace

# runtime -> {worktree path (or prefix ending in "/") -> home path, or None: no user-level file}
USER_PATHS: dict[str, dict[str, str | None]] = {
    "claude": {"CLAUDE.md": ".claude/CLAUDE.md", ".mcp.json": ".claude.json"},
    "codex": {"AGENTS.md": ".codex/AGENTS.md"},
    "gemini": {"GEMINI.md": ".gemini/GEMINI.md"},
    "cursor": {".cursor/rules/": None},  # user rules live in Cursor's settings, not in a file
    "opencode": {
        "AGENTS.md": ".config/opencode/AGENTS.md",
        "opencode.json": ".config/opencode/opencode.json",
        "opencode.jsonc": ".config/opencode/opencode.jsonc",
        ".opencode/": ".config/opencode/",
    },
}
NO_FILE_NOTE = {"cursor": "Cursor keeps user rules in its settings: add Thrum's block there by hand"}


def supported(runtime: str) -> bool:
    return runtime in USER_PATHS


def user_path(runtime: str, rel: str) -> str | None:
    table = USER_PATHS[runtime]
    if rel in table:
        return table[rel]
    for prefix, target in table.items():
        if prefix.endswith("/") and rel.startswith(prefix):
            return None if target is None else target + rel[len(prefix) :]
    return rel  # the same place under the home (`.claude/settings.json` -> `~/.claude/settings.json`)


class UserWorkspace(Workspace):
    """A workspace rooted at the home whose paths are the current runtime's user-level ones; changes
    are keyed `~/...` so what is printed says where it went. What it creates there is private
    (0600 files, 0700 directories: `~/.claude.json` and the like hold other settings and tokens
    later); a file that exists keeps its mode."""

    file_mode = 0o600
    dir_mode = 0o700
    scope = "your home"

    def __init__(self, home: str) -> None:
        super().__init__(home)
        self.runtime = ""
        self._skipped: set[str] = set()

    def _map(self, rel: str) -> str | None:
        if rel.startswith("~/"):
            return rel
        mapped = user_path(self.runtime, rel)
        return None if mapped is None else "~/" + mapped

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel.removeprefix("~/"))

    def read(self, rel: str) -> str | None:
        mapped = self._map(rel)
        return None if mapped is None else super().read(mapped)

    def write(self, rel: str, text: str, part: str) -> None:
        mapped = self._map(rel)
        if mapped is None:
            if self.runtime not in self._skipped:
                self._skipped.add(self.runtime)
                self.notes.append(
                    NO_FILE_NOTE.get(self.runtime, f"{self.runtime}: {rel} has no user-level place")
                )
            return
        super().write(mapped, text, part)


def home_dir() -> str:
    home = os.path.expanduser("~")
    if not home or home == "~" or not os.path.isdir(home):
        raise InstallError("--user needs a home directory: HOME is unset or not a directory")
    return home

"""Runtime presets: how to start each agent CLI, how to prime it, and what its screen looks like.

Screen text changes with every release, so the markers are data (regular expressions), and a
user can override or add presets in `~/.config/thrum/runtimes.json` or `<repo>/.thrum/runtimes.json`:

    {"presets": {"claude": {"command": ["claude", "--model", "opus"]},
                 "mine": {"extends": "claude", "command": ["/opt/bin/my-agent"]}}}
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, replace

from thrum_engine import names
from thrum_engine.errors import InvalidInput, InvalidName, NotFound
from thrum_engine.integrations.entries import PRIME
from thrum_engine.patterns import Pattern, PatternError, PatternTimeout, compile_pattern, latest_match, search

log = logging.getLogger("thrum.tmux")

# One scan of a pane's recent text by one marker (in a worker thread: see TmuxManager.decide).
# Markers run on every reading of a pane, so the budget is small; a marker past it is disabled
# (logged) and pane-state detection carries on with the others.
MARKER_BUDGET_SECONDS = 0.05


@dataclass(frozen=True)
class Runtime:
    name: str
    command: tuple[str, ...]
    prime: str | None  # typed once the runtime is idle after launch (integrations.entries); None: nothing
    idle: tuple[str, ...] = ()  # markers of an idle prompt (the latest marker in the stream wins)
    busy: tuple[str, ...] = ()
    dialog: tuple[str, ...] = ()  # permission / trust / selection dialogs: never type into these
    approve: str = "1"  # keys that approve a permission dialog once
    deny: str = "Escape"
    # The key that stops a running turn. The agent CLIs take Escape; a double C-c quits them
    # (RUNTIMES.md §10.7). A shell takes C-c.
    interrupt: str = "C-c"
    description: str = ""
    builtin: bool = True
    patterns: dict = field(default_factory=dict, compare=False, repr=False)

    def compiled(self, kind: str) -> list[Pattern]:
        cache = self.patterns
        if kind not in cache:
            cache[kind] = [compile_pattern(p, multiline=True) for p in getattr(self, kind)]
        return cache[kind]

    def disable(self, kind: str, rx: Pattern, exc: PatternTimeout) -> None:
        """Drop a marker that ran past its budget, for this engine's life: a costly marker must
        not stall pane-state detection again on every chunk of output."""
        try:
            self.compiled(kind).remove(rx)
        except ValueError:
            return  # another pane's reading (another thread) disabled it first
        log.error(
            "runtime %s: %s marker %r took longer than %gs on the pane's text; disabled (fix it in"
            " runtimes.json)",
            self.name,
            kind,
            rx.pattern,
            exc.budget,
        )

    def latest(self, kind: str, text: str) -> tuple[int, int]:
        """(start, end) of the latest match of any `kind` marker in `text`; (-1, -1) for none."""
        best = (-1, -1)
        for rx in list(self.compiled(kind)):
            try:
                found = latest_match(rx, text, MARKER_BUDGET_SECONDS)
            except PatternTimeout as exc:
                self.disable(kind, rx, exc)
                continue
            if found[0] > best[0]:
                best = found
        return best

    def any_match(self, kind: str, text: str) -> bool:
        """Whether any `kind` marker matches `text` (markers past their budget are disabled)."""
        for rx in list(self.compiled(kind)):
            try:
                if search(rx, text, MARKER_BUDGET_SECONDS) is not None:
                    return True
            except PatternTimeout as exc:
                self.disable(kind, rx, exc)
        return False

    def view(self) -> dict:
        d = asdict(self)
        d.pop("patterns")
        d["command"] = list(self.command)
        for k in ("idle", "busy", "dialog"):
            d[k] = list(d[k])
        return d


_CLAUDE_DIALOG = (
    r"Do you want to (proceed|make this edit|create)",
    r"No, and tell Claude what to do differently",
    r"Quick safety check",
    r"Do you trust the files in this folder\?",
    r"Yes, I trust this folder",
    r"Enter to select · ↑/↓ to navigate",
    r"❯ \d[.)] ",
)

BUILTIN: dict[str, Runtime] = {
    r.name: r
    for r in (
        Runtime(
            "claude",
            ("claude",),
            PRIME["claude"],
            idle=(r"^\s*[❯>][\s\u00a0]*$", r"\? for shortcuts"),
            busy=(r"(esc|ctrl\+c) to interrupt", r"^[✻✶✳✢✽·*] \S+…"),
            dialog=_CLAUDE_DIALOG,
            approve="1",
            deny="Escape",
            interrupt="Escape",
            description="Claude Code",
        ),
        Runtime(
            "codex",
            ("codex", "-c", "check_for_update_on_startup=false"),
            PRIME["codex"],
            idle=(r"^\s*›(?! \d\.)", r"context left", r"\d+% left"),
            busy=(r"Working \(.*(esc to i|•)", r"esc to interrupt"),
            dialog=(
                r"Would you like to (run the following command|make the following edits|grant these)",
                r"needs your approval",
                r"Do you trust the contents of this directory",
                r"Press enter to confirm or esc to cancel",
                r"› \d\. ",
            ),
            approve="1",
            deny="Escape",
            interrupt="Escape",
            description="OpenAI Codex CLI",
        ),
        Runtime(
            "gemini",
            ("gemini",),
            PRIME["gemini"],
            idle=(r"Type your message", r"context left\)"),
            busy=(r"esc to cancel",),
            dialog=(
                r"Waiting for user confirmation",
                r"Allow execution of",
                r"Apply this change\?",
                r"Do you trust the files in this folder",
            ),
            approve="Enter",
            deny="Escape",
            interrupt="Escape",
            description="Gemini CLI",
        ),
        Runtime(
            "opencode",
            ("opencode",),
            PRIME["opencode"],
            idle=(r"Ask anything",),
            busy=(r"esc (again to )?interrupt",),
            dialog=(r"Permission required",),
            approve="Enter",
            deny="Escape",
            interrupt="Escape",
            description="OpenCode",
        ),
        Runtime(
            "cursor",
            ("agent",),
            PRIME["cursor"],
            idle=(r"^\s*›(?! \d\.)",),
            busy=(r"ctrl\+c to stop", r"[⬡⬢] \S+…"),
            dialog=(r"Run this command\?", r"Trust this workspace"),
            approve="Enter",
            deny="Escape",
            description="Cursor agent CLI",
        ),
        Runtime(
            "auggie",
            ("auggie",),
            PRIME["auggie"],
            busy=(r"esc to (cancel|interrupt)",),
            interrupt="Escape",
            description="Augment Auggie (no idle marker: silence decides)",
        ),
        Runtime(
            "amp",
            ("amp",),
            PRIME["amp"],
            busy=(r"esc to cancel",),
            dialog=(r"allow all for this session",),
            interrupt="Escape",
            description="Amp",
        ),
        Runtime(
            "shell", (), None, idle=(r"[$#%>] $",), description="a plain shell: nothing is launched or typed"
        ),
    )
}


def name_problem(name: str) -> str | None:
    return names.runtime_name_problem(name)


def preset_files(repo: str) -> list[str]:
    user = os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "thrum", "runtimes.json"
    )
    return [user, os.path.join(repo, ".thrum", "runtimes.json")]


def _from_entry(name: str, entry: dict, known: dict[str, Runtime]) -> Runtime:
    if not isinstance(entry, dict):
        raise InvalidInput(f"runtime preset {name!r} must be an object")
    base = known.get(entry.get("extends", name))
    fields = {k: v for k, v in entry.items() if k != "extends"}
    unknown = set(fields) - {
        "command",
        "prime",
        "idle",
        "busy",
        "dialog",
        "approve",
        "deny",
        "interrupt",
        "description",
    }
    if unknown:
        raise InvalidInput(f"runtime preset {name!r}: unknown keys {sorted(unknown)}")
    for k in ("command", "idle", "busy", "dialog"):
        if k in fields:
            if not isinstance(fields[k], list) or not all(isinstance(x, str) for x in fields[k]):
                raise InvalidInput(f"runtime preset {name!r}: {k} must be a list of strings")
            fields[k] = tuple(fields[k])
    for pat in fields.get("idle", ()) + fields.get("busy", ()) + fields.get("dialog", ()):
        try:
            compile_pattern(pat, multiline=True)
        except PatternError as exc:
            raise InvalidInput(f"runtime preset {name!r}: invalid pattern {pat!r}: {exc}") from None
    if base is None:
        if "command" not in fields:
            raise InvalidInput(f"runtime preset {name!r} needs a command (or extends)")
        return Runtime(name=name, prime=fields.pop("prime", None), builtin=False, **fields)
    return replace(base, name=name, builtin=False, patterns={}, **fields)


def load(repo: str) -> dict[str, Runtime]:
    presets = dict(BUILTIN)
    for path in preset_files(repo):
        if not os.path.exists(path):
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read runtime presets {path}: {exc}") from None
        for name, entry in (data.get("presets") or {}).items():
            problem = name_problem(name)
            if problem:
                raise InvalidInput(f"{path}: {problem}")
            presets[name] = _from_entry(name, entry, presets)
    return presets


def get(repo: str, name: str) -> Runtime:
    problem = name_problem(name)
    if problem:
        raise InvalidName(problem)
    presets = load(repo)
    if name not in presets:
        raise NotFound(f"unknown runtime {name!r}: one of {', '.join(sorted(presets))}")
    return presets[name]

#!/usr/bin/env python3
"""A stand-in for an interactive agent CLI, for tests: it draws a runtime's idle prompt,
has a busy phase with a spinner, can show a permission dialog, runs `thrum` when told to,
and records every line typed into it (--log) so tests can see exactly what arrived; input
that was already waiting when it came back to its prompt is noted in `<log>.typeahead`.

Typed commands:  busy SECONDS | dialog | dialog-over | run THRUM-ARGS... | compact | exit | anything else (echoed)

With `--hooks-from DIR` it also does what the runtime of its `--style` does with the hooks
installed in DIR: it reads that runtime's own hook file (claude .claude/settings.json, codex
.codex/hooks.json, gemini .gemini/settings.json, cursor .cursor/hooks.json), and runs the matching
commands at session start (Codex: with the first turn), on each prompt and at each turn's end (and
around `compact`, as each runtime does: START_AFTER_COMPACT), with that
runtime's stdin JSON, timeout unit, matcher rules and output reading. What each hook returned is
appended to `<log>.hooks` (JSON lines) and shown on screen; a Stop that blocks makes it take
another turn, as the runtime would, within the runtime's own loop limit.

OpenCode has no hook file: its hooks are JS plugins. With `--style opencode` the fake starts
tests/opencode_host.mjs under node, which loads the plugins installed in DIR the way OpenCode 2.x
does and plays the session's moments at them (session.created, each turn's model request, the turn's
end, a compaction); the system-prompt text a plugin adds is the context, a prompt it queues at the
turn's end is the block (and, as in OpenCode, that prompt is the next turn).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shlex
import subprocess
import sys
import time

STYLES = {
    # idle prompt, busy line, dialog lines
    "claude": (
        "─" * 40 + "\n❯ ",
        "✻ Pondering… ({n}s · esc to interrupt)",
        ["Do you want to proceed?", "❯ 1. Yes", "  2. No, and tell Claude what to do differently (esc)"],
    ),
    "codex": (
        "› ",
        "• Working ({n}s • esc to interrupt)",
        [
            "Would you like to run the following command?",
            "› 1. Yes, proceed (y)",
            "  3. No, and tell Codex what to do differently (esc)",
            "Press enter to confirm or esc to cancel",
        ],
    ),
    "gemini": (
        "│ > Type your message or @path/to/file\n",
        "⠏ Thinking (esc to cancel, {n}s)",
        ["Waiting for user confirmation...", "Allow execution of: 'rm'?"],
    ),
    "opencode": ('┃ Ask anything... "Fix the bug"\n', "esc interrupt", ["△ Permission required"]),
    "cursor": ("› ", "⬢ Reading… ctrl+c to stop", ["Run this command?"]),
    "auggie": ("", "esc to cancel", ["Approve?"]),
    "amp": ("", "esc to cancel", ["approve? allow all for this session"]),
}


# The runtime's own event names for our four moments, and where its hooks live.
HOOK_EVENTS = {
    "claude": {
        "start": "SessionStart",
        "prompt": "UserPromptSubmit",
        "stop": "Stop",
        "compact": "PreCompact",
    },
    "codex": {"start": "SessionStart", "prompt": "UserPromptSubmit", "stop": "Stop", "compact": "PreCompact"},
    "gemini": {
        "start": "SessionStart",
        "prompt": "BeforeAgent",
        "stop": "AfterAgent",
        "compact": "PreCompress",
    },
    "cursor": {
        "start": "sessionStart",
        "prompt": "beforeSubmitPrompt",
        "stop": "stop",
        "compact": "preCompact",
    },
}
HOOK_FILES = {
    "claude": ".claude/settings.json",
    "codex": ".codex/hooks.json",
    "gemini": ".gemini/settings.json",
    "cursor": ".cursor/hooks.json",
}
# Where each runtime finds a `/name` (or `$name`) command: skills and command files, project first,
# then the user's own (RUNTIMES.md §12). Gemini namespaces by sub-folder: `/a:b` is a/b.toml.
COMMAND_FILES = {
    "claude": ("/", (".claude/skills/{n}/SKILL.md", ".claude/commands/{n}.md")),
    "codex": ("$", (".agents/skills/{n}/SKILL.md",)),
    "gemini": ("/", (".gemini/commands/{p}.toml",)),
    "opencode": ("/", (".opencode/commands/{n}.md",)),
    "cursor": ("/", (".cursor/commands/{n}.md",)),
    "auggie": ("/", (".augment/commands/{n}.md",)),
}


def unknown_command(style: str, project: str, line: str) -> str | None:
    """The command `line` invokes when this runtime would not find it (as the real one answers
    `Unknown skill`), else None: a prime typed where its skill was never installed shows here."""
    sigil, places = COMMAND_FILES.get(style, ("", ()))
    if not sigil or not line.startswith(sigil) or len(line) < 2 or not line[1].isalpha():
        return None
    name = line[1:].split()[0]
    for root in (project, os.path.expanduser("~")):
        for place in places:
            if os.path.isfile(os.path.join(root, place.format(n=name, p=name.replace(":", "/")))):
                return None
    return name


DEFAULT_TIMEOUT = {"claude": 60.0, "codex": 600.0, "gemini": 60.0, "cursor": 60.0}  # seconds
# When each runtime runs its session-start hooks. Codex queues the source at session construction (and
# after a compaction) and dispatches it in the next turn, before the model request (codex-rs:
# `set_pending_session_start_source`, `run_pending_session_start_hooks` from `run_turn`). Gemini fires
# SessionStart for startup, resume and clear only (docs/hooks, "Session event matchers"), and no Cursor
# source has sessionStart after a compaction: those two run only the pre-compact hook then.
START_AT_FIRST_TURN = frozenset({"codex"})
START_AFTER_COMPACT = frozenset({"claude", "codex"})
CLAUDE_STOP_LIMIT = 8  # Claude overrides a Stop hook after this many consecutive blocks
OPENCODE_HOST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "opencode_host.mjs")


class Hooks:
    """One runtime's view of the hooks installed in a project directory."""

    def __init__(self, style: str, project: str, log_path: str) -> None:
        self.style = style
        self.project = os.path.realpath(project)
        self.log_path = log_path + ".hooks"
        self.file = os.path.join(self.project, HOOK_FILES[style])
        with open(self.file, encoding="utf-8") as fh:
            self.config = json.load(fh)  # a file the runtime cannot parse: it would fail at start too
        self.session = f"fake-{os.getpid()}"
        self.loops = 0

    def commands(self, event: str, match: str | None) -> list[tuple[str, float]]:
        """(command, timeout in seconds) of the hooks the runtime runs for `event`."""
        entries = (self.config.get("hooks") or {}).get(event) or []
        out = []
        for e in entries:
            if self.style == "cursor":  # a flat list; timeout in seconds
                out.append((e["command"], float(e.get("timeout", DEFAULT_TIMEOUT["cursor"]))))
                continue
            matcher = e.get("matcher")
            if matcher not in (None, "", "*") and match is not None:
                pattern = (
                    matcher if self.style != "gemini" else re.escape(matcher)
                )  # gemini: exact for lifecycle
                if not re.fullmatch(pattern, match):
                    continue
            for h in e.get("hooks") or []:
                if h.get("type", "command") != "command":
                    continue
                t = h.get("timeout")
                if self.style == "gemini":  # milliseconds
                    seconds = float(t) / 1000 if t is not None else DEFAULT_TIMEOUT["gemini"]
                else:
                    seconds = float(t) if t is not None else DEFAULT_TIMEOUT[self.style]
                out.append((h["command"], seconds))
        return out

    def stdin(self, moment: str, event: str, **fields) -> dict:
        if self.style == "cursor":
            base = {"conversation_id": self.session, "generation_id": f"gen-{self.loops}",
                    "hook_event_name": event, "workspace_roots": [self.project]}  # fmt: skip
            if moment == "stop":
                base.update(status="completed", loop_count=fields.get("loop_count", 0))
            if moment == "prompt":
                base["prompt"] = fields.get("prompt", "")
            return base
        base = {"session_id": self.session, "transcript_path": f"/tmp/{self.session}.jsonl",
                "cwd": self.project, "hook_event_name": event}  # fmt: skip
        if self.style == "gemini":
            base["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        else:
            base["permission_mode"] = "default"
        if self.style == "codex":
            base.update(model="gpt-fake", turn_id=f"turn-{self.loops}")
        if moment == "start":
            base["source"] = fields.get("source", "startup")
        if moment == "prompt":
            base["prompt"] = fields.get("prompt", "")
        if moment == "stop":
            base["stop_hook_active"] = fields.get("stop_hook_active", False)
            if self.style == "codex":
                base["last_assistant_message"] = fields.get("said", "")
            if self.style == "gemini":
                base.update(prompt=fields.get("prompt", ""), prompt_response=fields.get("said", ""))
        if moment == "compact":
            base["trigger"] = "manual"
        return base

    def env(self) -> dict:
        env = dict(os.environ)
        key = {"claude": "CLAUDE_PROJECT_DIR", "codex": None, "gemini": "GEMINI_PROJECT_DIR",
               "cursor": "CURSOR_PROJECT_DIR"}[self.style]  # fmt: skip
        if key:
            env[key] = self.project
        if self.style in ("gemini", "cursor"):
            env["CLAUDE_PROJECT_DIR"] = self.project  # both set Claude's name as an alias
        return env

    def run(self, moment: str, match: str | None = None, **fields) -> dict:
        """Run every hook for `moment`; what the runtime takes from them: context, block reason."""
        event = HOOK_EVENTS[self.style][moment]
        result: dict = {"event": event, "moment": moment, "context": [], "block": None, "runs": []}
        cwd = os.path.dirname(self.file) if self.style == "cursor" else self.project
        for command, timeout in self.commands(event, match):
            payload = json.dumps(self.stdin(moment, event, **fields))
            try:
                proc = subprocess.run(
                    ["/bin/sh", "-c", command],
                    input=payload,
                    capture_output=True,
                    text=True,
                    cwd=cwd,
                    env=self.env(),
                    timeout=timeout,
                    check=False,
                )
                code, out, err = proc.returncode, proc.stdout, proc.stderr
            except subprocess.TimeoutExpired:
                code, out, err = None, "", "timed out"
            run = {"command": command, "exit": code, "stdout": out, "stderr": err, "timeout": timeout}
            result["runs"].append(run)
            self.read_output(moment, code, out, err, result)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(result) + "\n")
        return result

    def read_output(self, moment: str, code, out: str, err: str, result: dict) -> None:
        data = None
        if out.strip():
            try:
                data = json.loads(out)
            except ValueError:
                if self.style == "gemini":  # Gemini requires JSON on stdout: anything else is a failure
                    result.setdefault("errors", []).append("stdout is not JSON")
                    return
        if code == 2 and moment == "stop" and self.style != "cursor":
            result["block"] = err.strip()
            return
        if code != 0:
            return
        if self.style == "cursor":
            if isinstance(data, dict):
                if moment == "start" and data.get("additional_context"):
                    result["context"].append(data["additional_context"])
                if moment == "stop" and data.get("followup_message"):
                    result["block"] = data["followup_message"]
            return
        if isinstance(data, dict):
            ctx = (data.get("hookSpecificOutput") or {}).get("additionalContext")
            if ctx and moment in ("start", "prompt"):
                result["context"].append(ctx)
            blocking = ("deny", "block") if self.style == "gemini" else ("block",)
            if moment == "stop" and data.get("decision") in blocking:
                result["block"] = data.get("reason") or ""
        elif out.strip() and moment in ("start", "prompt") and self.style != "gemini":
            result["context"].append(out)  # plain stdout is context for these events

    def stop_limit(self) -> int:
        if self.style == "cursor":
            limits = [e.get("loop_limit", 5) for e in (self.config.get("hooks") or {}).get("stop") or []]
            return int(min(limits)) if limits else 5
        return CLAUDE_STOP_LIMIT


OPENCODE_MOMENTS = {"start": "created", "prompt": "prompt", "stop": "idle", "compact": "compact"}
OPENCODE_EVENTS = {"created": "session.created", "prompt": "session.hook(request)",
                   "idle": "session.execution.succeeded", "compact": "session.compaction.*"}  # fmt: skip


class OpenCodeHooks:
    """OpenCode's view of the plugins installed in a project: a node host runs them (see top)."""

    style = "opencode"

    def __init__(self, project: str, log_path: str) -> None:
        self.project = os.path.realpath(project)
        self.log_path = log_path + ".hooks"
        argv = ["node", OPENCODE_HOST, "--project", self.project]
        if os.environ.get("FAKE_OPENCODE_HOOK_NAME"):
            argv += ["--hook-name", os.environ["FAKE_OPENCODE_HOOK_NAME"]]
        self.proc = subprocess.Popen(
            argv, cwd=self.project, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        hello = json.loads(self.proc.stdout.readline() or '{"ok": false, "error": "host died"}')
        self.plugins = hello.get("plugins") or []
        self.load_error = None if hello.get("ok") else hello.get("error")
        self.loops = 0

    def ask(self, cmd: dict) -> dict:
        if self.load_error:
            return {"ok": False, "error": self.load_error}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline() or '{"ok": false, "error": "host died"}')

    def run(self, moment: str, match: str | None = None, **fields) -> dict:
        op = OPENCODE_MOMENTS[moment]
        result: dict = {"event": OPENCODE_EVENTS[op], "moment": moment, "context": [], "block": None,
                        "runs": [], "plugins": self.plugins}  # fmt: skip
        if moment == "start" and match == "compact":
            answer: dict = {"ok": True, "skipped": "OpenCode starts no session after a compaction"}
        else:
            cmd = {"op": op, "text": fields.get("prompt", "")} if op == "prompt" else {"op": op}
            answer = self.ask(cmd)
        result["runs"].append(answer)
        if not answer.get("ok"):
            result.setdefault("errors", []).append(answer.get("error"))
        result["context"] = [t for t in answer.get("system") or [] if t]
        queued = answer.get("queued") or []
        if queued:
            result["block"] = queued[0]["text"]
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(result) + "\n")
        return result

    def stop_limit(self) -> int:
        return 100  # OpenCode runs every queued prompt: the plugin keeps its own limit

    def close(self) -> None:
        if self.proc.poll() is None and not self.load_error:
            try:
                self.ask({"op": "exit"})
            except (OSError, ValueError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


DIALOG_ROW = 30  # where `dialog-over` draws its dialog: rows the test's output never reaches


def read_unechoed() -> str:
    """A line read with the terminal's echo off (a TUI draws what it wants, not what was typed)."""
    import termios

    fd = sys.stdin.fileno()
    try:
        old = termios.tcgetattr(fd)
    except termios.error:
        return sys.stdin.readline().rstrip("\n")
    quiet = list(old)
    quiet[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        return sys.stdin.readline().rstrip("\n")
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, old)


def install_fake(bindir: str, binary: str, style: str, log: str) -> str:
    """A fake `binary` in `bindir` (for tests to put on a PATH): this script in `style`, running the
    hooks installed in the directory it starts in. Returns the directory to prepend to PATH."""
    os.makedirs(bindir, exist_ok=True)
    path = os.path.join(bindir, binary)
    me = os.path.abspath(__file__)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f'#!/bin/sh\nexec {sys.executable} {me} --style {style} --log {log} --hooks-from "$PWD"\n')
    os.chmod(path, 0o755)
    return bindir


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--style", default="claude", choices=sorted(STYLES))
    ap.add_argument("--hooks-from", help="the project directory whose installed hooks to run")
    a = ap.parse_args()
    prompt, busy, dialog = STYLES[a.style]
    hooks: Hooks | OpenCodeHooks | None = None
    if a.hooks_from and a.style in HOOK_FILES:
        hooks = Hooks(a.style, a.hooks_from, a.log)
    elif a.hooks_from and a.style == "opencode":
        hooks = OpenCodeHooks(a.hooks_from, a.log)

    def log(text: str) -> None:
        with open(a.log, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")

    def out(text: str, end: str = "\n") -> None:
        sys.stdout.write(text + end)
        sys.stdout.flush()

    def show(r: dict) -> None:
        for c in r["context"]:
            out(f"[hook {r['event']}] context: " + c.strip().splitlines()[0])
        if r["block"]:
            out(f"[hook {r['event']}] blocked: " + r["block"].strip().splitlines()[0])

    def end_of_turn(prompt_text: str, said: str) -> None:
        """The runtime's Stop: a block makes another turn (the reason is its next instruction)."""
        if hooks is None:
            return
        active, loops = False, 0
        while True:
            r = hooks.run("stop", stop_hook_active=active, loop_count=loops, prompt=prompt_text, said=said)
            show(r)
            if not r["block"] or loops + 1 >= hooks.stop_limit():
                return
            log(f"continued: {r['block'].strip().splitlines()[0]}")
            active, loops = True, loops + 1
            hooks.loops = loops
            if isinstance(hooks, OpenCodeHooks):  # the queued prompt is OpenCode's next turn
                show(hooks.run("prompt", prompt=r["block"]))

    def finish() -> int:
        if isinstance(hooks, OpenCodeHooks):
            hooks.close()
        return 0

    pending_start = "startup" if hooks is not None else None  # a session-start not yet run (Codex)
    if hooks is not None and a.style not in START_AT_FIRST_TURN:
        show(hooks.run("start", match="startup", source="startup"))
        pending_start = None
    out(f"fake {a.style} agent ready")
    redrawn = False  # the composer is on screen already (drawn in place, not printed again)
    while True:
        if select.select([sys.stdin], [], [], 0)[0]:
            # Input typed while we were busy (not at the prompt): tests check nudges never do this.
            with open(a.log + ".typeahead", "a", encoding="utf-8") as fh:
                fh.write("typeahead\n")
        if not redrawn:
            out(prompt, end="")
        redrawn = False
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            continue
        if not line:
            return finish()
        line = line.rstrip("\n")
        log(line)
        unknown = unknown_command(a.style, a.hooks_from, line) if a.hooks_from else None
        if unknown:
            log(f"unknown command: {unknown}")
            out(f"Unknown skill: {unknown}")
            continue
        if hooks is not None and line and pending_start:
            show(hooks.run("start", match=pending_start, source=pending_start))
            pending_start = None
        if hooks is not None and line:
            show(hooks.run("prompt", prompt=line))
        cmd, _, rest = line.partition(" ")
        if cmd == "busy":
            seconds = float(rest or 1)
            end = time.monotonic() + seconds
            n = 0
            while time.monotonic() < end:
                out(busy.format(n=n))
                time.sleep(0.2)
                n += 1
            out(f"done after {seconds:g}s")
        elif cmd == "dialog":
            for ln in dialog:
                out(ln)
            answer = sys.stdin.readline().rstrip("\n")
            log(f"answer: {answer}")
            out("Approved." if answer.strip() in ("1", "y", "") else "Denied.")
        elif cmd == "dialog-over":
            # A full-screen TUI's dialog (Claude Code's): the composer is emptied in place on submit,
            # the dialog is drawn over rows of the screen and erased in place once answered. Nothing is
            # printed after it, so the stream ends with the dialog while the screen shows the composer.
            out("\x1b[1A\r\x1b[2K" + prompt.rsplit("\n", 1)[-1] + "\x1b7", end="")
            for row, ln in enumerate(dialog, DIALOG_ROW):
                out(f"\x1b[{row};1H\x1b[2K{ln}", end="")
            out("\x1b8", end="")
            answer = read_unechoed()
            log(f"answer: {answer}")
            out(
                "\x1b7"
                + "".join(f"\x1b[{row};1H\x1b[2K" for row in range(DIALOG_ROW, DIALOG_ROW + len(dialog))),
                end="",
            )
            out("\x1b8", end="")
            redrawn = True
            continue
        elif cmd == "run":
            proc = subprocess.run(["thrum", *shlex.split(rest)], capture_output=True, text=True)
            out(proc.stdout + proc.stderr, end="")
        elif cmd == "exit":
            return finish()
        elif cmd == "compact" and hooks is not None:
            show(hooks.run("compact"))
            if a.style in START_AT_FIRST_TURN:
                pending_start = "compact"  # with the next turn
            elif a.style in START_AFTER_COMPACT or isinstance(hooks, OpenCodeHooks):
                show(hooks.run("start", match="compact", source="compact"))
        elif line:
            out(f"ok: {line}")
        if line and cmd != "exit":
            end_of_turn(line, "done")


if __name__ == "__main__":
    raise SystemExit(main())

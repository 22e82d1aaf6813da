#!/usr/bin/env python3
"""A stand-in for an interactive agent CLI, for tests: it draws a runtime's idle prompt,
has a busy phase with a spinner, can show a permission dialog, runs `thrum` when told to,
and records every line typed into it (--log) so tests can see exactly what arrived; input
that was already waiting when it came back to its prompt is noted in `<log>.typeahead`.

Typed commands:  busy SECONDS | dialog | run THRUM-ARGS... | exit | anything else (echoed)
"""

from __future__ import annotations

import argparse
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--style", default="claude", choices=sorted(STYLES))
    a = ap.parse_args()
    prompt, busy, dialog = STYLES[a.style]

    def log(text: str) -> None:
        with open(a.log, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")

    def out(text: str, end: str = "\n") -> None:
        sys.stdout.write(text + end)
        sys.stdout.flush()

    out(f"fake {a.style} agent ready")
    while True:
        if select.select([sys.stdin], [], [], 0)[0]:
            # Input typed while we were busy (not at the prompt): tests check nudges never do this.
            with open(a.log + ".typeahead", "a", encoding="utf-8") as fh:
                fh.write("typeahead\n")
        out(prompt, end="")
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            continue
        if not line:
            return 0
        line = line.rstrip("\n")
        log(line)
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
        elif cmd == "run":
            proc = subprocess.run(["thrum", *shlex.split(rest)], capture_output=True, text=True)
            out(proc.stdout + proc.stderr, end="")
        elif cmd == "exit":
            return 0
        elif line:
            out(f"ok: {line}")


if __name__ == "__main__":
    raise SystemExit(main())

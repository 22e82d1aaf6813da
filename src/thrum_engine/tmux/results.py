"""What a queued command came to (walk bug 18: a failing pytest was "done", its output ended
with the prompt). In a POSIX shell the command is typed wrapped so that the shell itself prints a
marker with its exit status when it ends; in an LLM runtime the text is a prompt, and its result
says so instead of pretending to have a status."""

from __future__ import annotations

import re
import shlex

MARKER = "THRUM-{token}-END:"


def wrap(command: str, token: str) -> str:
    """The line typed for `command`: run by `eval` (its own quoting, comments, `&` and `cd` intact),
    then printf prints the marker with `$?`. The marker is assembled by printf, so the echo of
    the typed line never matches it."""
    return f"eval {shlex.quote(command)}; printf '\\n{MARKER.format(token='%s')}%s\\n' {token} \"$?\""


def marker_re(token: str) -> re.Pattern[str]:
    return re.compile(re.escape(MARKER.format(token=token)) + r"(\d+)")


def echo_end(token: str) -> str:
    """The end of the typed line as the pane echoes it: the output starts after it."""
    return f'{token} "$?"'


def cut_output(text: str, token: str) -> str:
    """The command's own output: after the echo of the typed line, before the marker."""
    end = text.rfind(echo_end(token))
    if end >= 0:
        text = text[end + len(echo_end(token)) :]
    mark = text.find(MARKER.format(token=token))
    if mark >= 0:
        text = text[:mark]
    return text.strip("\n")


def label(row: dict) -> str:
    """One line a person reads: `failed (exit 1) in 2.3s`, `completed (exit 0) in 0.1s`, `completed:
    prompt typed to claude`, `queued`. A prompt's item completes when it is typed (what the agent then
    does has no exit status); CLI.md's `completed` is kept for scripts that wait for the word."""
    status = row["status"]
    if status in ("queued", "running", "cancelled", "interrupted"):
        return status
    if row.get("kind") == "prompt":
        what = f"prompt typed to {row.get('runtime') or 'the runtime'}"
        return f"completed: {what}" if status == "done" else f"{what}: {status}"
    took = f" in {row['duration']:.1f}s" if row.get("duration") is not None else ""
    code = row.get("exit_code")
    word = "completed" if status == "done" else status  # upstream's word: scripts grep "completed"
    if code is None:
        return f"{word} (no exit status){took}" if status == "done" else f"{word}{took}"
    return f"{word} (exit {code}){took}"

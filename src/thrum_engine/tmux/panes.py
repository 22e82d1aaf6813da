"""A pane's streamed output and the state read from it.

tmux `pipe-pane` appends everything the pane prints to a file; the engine
reads only what is new. The state is decided by the *latest* marker in the
recent text (an idle prompt, a busy spinner, a dialog), adjusted by how long
the pane has been quiet. No `capture-pane` polling.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from thrum_engine.tmux.runtimes import Runtime

# CSI / OSC / two-byte escapes and C0 controls other than \t \n \r.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>NOMc78]"
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
)
_CRLF = re.compile(r"\r+\n")
TAIL_CHARS = 16_000
SCAN_CHARS = 4_000


BUSY_LINES = 4  # a spinner sits at the bottom; one with more lines under it is history


def _lines_after(text: str, pos: int) -> int:
    """Non-empty lines after the line holding `pos`."""
    rest = text[pos:]
    nl = rest.find("\n")
    return 0 if nl < 0 else sum(1 for ln in rest[nl + 1 :].split("\n") if ln.strip())


def clean(data: str) -> str:
    """Escape sequences and control characters removed; CRLF made LF. A lone CR stays (see `render`)."""
    return _CRLF.sub("\n", _ANSI.sub("", data))


def render(text: str) -> str:
    """Apply carriage returns the way a terminal does: `abcdef\rxy` shows as `xycdef`."""
    if "\r" not in text:
        return text
    out = []
    for line in text.split("\n"):
        if "\r" in line:
            shown = ""
            for part in line.split("\r"):
                shown = part + shown[len(part) :]
            line = shown
        out.append(line)
    return "\n".join(out)


@dataclass
class PaneState:
    state: str  # working | idle | blocked | unknown | exited
    source: str  # what decided it, for humans: "pane: busy marker", "pane: quiet 12s at the prompt"
    since: float  # wall time the state was entered

    def view(self, now: float | None = None) -> dict:
        now = now or time.time()
        return {"state": self.state, "source": self.source, "age_seconds": round(now - self.since, 1)}


class PaneStream:
    def __init__(self, session: str, path: str, runtime: Runtime) -> None:
        self.session = session
        self.path = path
        self.runtime = runtime
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0
        self.tail = ""
        self.last_output = 0.0  # monotonic
        self.last_output_wall = 0.0
        self.current = PaneState("unknown", "pane: no output yet", time.time())
        self.dead = False

    def read_new(self, max_bytes: int = 1 << 20) -> str:
        """Read what the pane printed since last time; returns the cleaned text."""
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            return ""
        if size < self.offset:  # truncated (rotation): start over from the top
            self.offset = 0
        if size == self.offset:
            return ""
        with open(self.path, "rb") as fh:
            fh.seek(max(self.offset, size - max_bytes))
            data = fh.read(size - self.offset)
        self.offset = size
        text = clean(data.decode("utf-8", "replace"))
        self.feed(text)
        return text

    def feed(self, text: str) -> None:
        if not text:
            return
        self.tail = (self.tail + text)[-TAIL_CHARS:]
        self.last_output = time.monotonic()
        self.last_output_wall = time.time()

    def decide(self, silence: float, now_mono: float | None = None) -> PaneState:
        """Re-read the state from the tail; keeps `since` when the state did not change."""
        now_mono = now_mono or time.monotonic()
        if self.dead:
            new = PaneState("exited", "pane: process exited", time.time())
            return self._settle(new)
        window = render(self.tail[-SCAN_CHARS:])
        quiet = now_mono - self.last_output if self.last_output else None
        dialog = self.runtime.latest("dialog", window)
        busy = self.runtime.latest("busy", window)
        idle = self.runtime.latest("idle", window)
        # Ties (a dialog's "❯ 1. Yes" also looks like a prompt) go to the more cautious reading.
        latest = max((dialog[0], 2, "dialog"), (busy[0], 1, "busy"), (idle[0], 0, "idle"))
        if latest[0] >= 0 and latest[2] == "dialog":
            new = PaneState("blocked", "pane: permission dialog", time.time())
        elif quiet is not None and quiet < silence:
            new = PaneState("working", "pane: output just now", time.time())
        elif latest[0] >= 0 and latest[2] == "busy" and _lines_after(window, busy[1]) <= BUSY_LINES:
            new = PaneState("working", "pane: busy marker", time.time())
        elif latest[0] >= 0 and latest[2] == "idle":
            if _lines_after(window, idle[1]):
                # Lines after the last prompt and no new prompt: a command is still running.
                new = PaneState("working", "pane: output after the prompt", time.time())
            else:
                new = PaneState("idle", "pane: at the prompt", time.time())
        elif not self.runtime.idle and self.last_output:
            new = PaneState("idle", "pane: quiet (this runtime has no idle marker)", time.time())
        else:
            new = PaneState("unknown", "pane: no known marker", time.time())
        return self._settle(new)

    def _settle(self, new: PaneState) -> PaneState:
        if new.state == self.current.state:
            self.current.source = new.source
            return self.current
        self.current = new
        return new

"""A pane's streamed output and the state read from it.

tmux `pipe-pane` appends everything the pane prints to a file; the engine
reads only what is new. The state is decided by the *latest* marker in the
recent text (an idle prompt, a busy spinner, a dialog), adjusted by how long
the pane has been quiet. No `capture-pane` polling.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable
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


JUST_NOW = "pane: output just now"
PROMPT_ENDS = ("$", "#", "%", ">", "❯", "›")
BUSY_LINES = 4  # a spinner sits at the bottom; one with more lines under it is history


def _lines_after(text: str, pos: int) -> int:
    """Non-empty lines after the line holding `pos`."""
    rest = text[pos:]
    nl = rest.find("\n")
    return 0 if nl < 0 else sum(1 for ln in rest[nl + 1 :].split("\n") if ln.strip())


def screen_text(lines: list[str]) -> str:
    """A `capture-pane` as the markers read a stream: trailing blank rows dropped, and the blank
    tmux trims after a prompt glyph put back (`$ `), as the stream has it."""
    lines = list(lines)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines) + (" " if lines and lines[-1].endswith(PROMPT_ENDS) else "")


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


def _size(path: str) -> int | None:
    """The size of the pane log at `path`; None when it is missing or not a plain file (a link
    planted there is never followed: what it points to is not this pane's output)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


class PaneStream:
    def __init__(self, session: str, path: str, runtime: Runtime) -> None:
        self.session = session
        self.path = path
        self.runtime = runtime
        self.offset = _size(path) or 0
        self.tail = ""
        self.last_output = 0.0  # monotonic
        self.last_output_wall = 0.0
        self.current = PaneState("unknown", "pane: no output yet", time.time())
        self.dead = False

    def read_new(self, max_bytes: int = 1 << 20) -> str:
        """Read what the pane printed since last time; returns the cleaned text."""
        size = _size(self.path)
        if size is None:
            return ""
        if size < self.offset:  # truncated (rotation): start over from the top
            self.offset = 0
        if size == self.offset:
            return ""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:  # gone, or a link swapped in since: nothing is read through it
            return ""
        with os.fdopen(fd, "rb") as fh:
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

    def decide(
        self, silence: float, now_mono: float | None = None, screen: Callable[[], str | None] | None = None
    ) -> PaneState:
        """Re-read the state from the tail; keeps `since` when the state did not change.

        The stream is what the pane printed, not what it shows: input typed and then erased
        (`oops` and four backspaces, a TUI redrawing its composer) leaves text after the prompt
        that is no longer on the screen, and no marker matches it (walk bug 2: `unknown` forever
        over an idle prompt). So a quiet pane the stream cannot call idle or blocked is read again
        from `screen()`, the screen as rendered (`capture-pane`), when given; so is a quiet pane whose
        stream ends with a dialog."""
        now_mono = now_mono or time.monotonic()
        if self.dead:
            new = PaneState("exited", "pane: process exited", time.time())
            return self._settle(new)
        quiet = now_mono - self.last_output if self.last_output else None
        new = self._reading(render(self.tail[-SCAN_CHARS:]), quiet, silence)
        # A dialog the stream still ends with may be gone: a TUI erases an answered dialog in place
        # and draws nothing after it (walk A 4: blocked long after the answer). Once the pane is
        # quiet the screen says whether it is still open.
        stale = new.state == "blocked" and quiet is not None and quiet >= silence
        if screen is not None and (stale or new.state in ("unknown", "working") and new.source != JUST_NOW):
            shown = screen()
            if shown is not None:
                new = self._reading(shown, quiet, silence, " (on screen)")
        return self._settle(new)

    def _reading(self, window: str, quiet: float | None, silence: float, where: str = "") -> PaneState:
        dialog = self.runtime.latest("dialog", window)
        busy = self.runtime.latest("busy", window)
        idle = self.runtime.latest("idle", window)
        # Ties (a dialog's "❯ 1. Yes" also looks like a prompt) go to the more cautious reading.
        latest = max((dialog[0], 2, "dialog"), (busy[0], 1, "busy"), (idle[0], 0, "idle"))
        now = time.time()
        if latest[0] >= 0 and latest[2] == "dialog":
            return PaneState("blocked", "pane: permission dialog" + where, now)
        if quiet is not None and quiet < silence:
            return PaneState("working", JUST_NOW, now)
        if latest[0] >= 0 and latest[2] == "busy" and _lines_after(window, busy[1]) <= BUSY_LINES:
            return PaneState("working", "pane: busy marker" + where, now)
        if latest[0] >= 0 and latest[2] == "idle":
            if _lines_after(window, idle[1]):
                # Lines after the last prompt and no new prompt: a command is still running.
                return PaneState("working", "pane: output after the prompt" + where, now)
            return PaneState("idle", "pane: at the prompt" + where, now)
        if not self.runtime.idle and self.last_output:
            return PaneState("idle", "pane: quiet (this runtime has no idle marker)", now)
        return PaneState("unknown", "pane: no known marker" + where, now)

    def _settle(self, new: PaneState) -> PaneState:
        if new.state == self.current.state:
            self.current.source = new.source
            return self.current
        self.current = new
        return new

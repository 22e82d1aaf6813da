"""libtmux calls, blocking (each forks `tmux`): the engine runs them in threads.

Sessions are addressed by exact name (`=name`, tmux prefix-matches otherwise)
and panes by id (`%N`). Every session Thrum creates carries user options
`@thrum_repo`, `@thrum_agent` and `@thrum_runtime`, so a repo sees only its own.
"""

from __future__ import annotations

import os
import shlex
import time

import libtmux
from libtmux.exc import LibTmuxException

from thrum_engine.files import open_append_private as private_file
from thrum_engine.tmux.attach import DEFAULT_SOCKET

FIELDS = (
    "session_name",
    "@thrum_repo",
    "@thrum_agent",
    "@thrum_runtime",
    "pane_id",
    "pane_pid",
    "pane_dead",
    "pane_current_path",
    "session_attached",
    "pane_pipe",
    "session_created",
    "pane_current_command",
    "pane_tty",
)
SEP = "\x1f"
# Typing pitfalls (RUNTIMES.md §10): text with -l, a pause, then Enter on its own.
ENTER_DELAY = 0.15
CHUNK = 512


class TmuxError(Exception):
    pass


class Tmux:
    def __init__(self, socket_name: str | None, enter_delay: float = ENTER_DELAY) -> None:
        self.socket_name = socket_name
        self.enter_delay = enter_delay
        self.server = libtmux.Server(socket_name=socket_name or DEFAULT_SOCKET)

    def cmd(self, *args: str) -> list[str]:
        try:
            res = self.server.cmd(*args)
        except LibTmuxException as exc:
            raise TmuxError(str(exc)) from None
        if res.stderr and any(s.strip() for s in res.stderr):
            raise TmuxError(" ".join(res.stderr).strip())
        return res.stdout

    def alive(self) -> bool:
        try:
            return self.server.is_alive()
        except (LibTmuxException, OSError):
            return False

    def sessions(self) -> list[dict]:
        """Every session's first pane with Thrum's tags; [] when no server runs."""
        if not self.alive():
            return []
        fmt = SEP.join("#{" + f + "}" for f in FIELDS)
        try:
            lines = self.cmd("list-panes", "-a", "-F", fmt)
        except TmuxError:
            return []
        seen: dict[str, dict] = {}
        for ln in lines:
            parts = ln.split(SEP)
            if len(parts) != len(FIELDS):
                continue
            row = dict(zip(FIELDS, parts))
            seen.setdefault(row["session_name"], row)
        return list(seen.values())

    def exists(self, name: str) -> bool:
        return any(s["session_name"] == name for s in self.sessions())

    def create(
        self, name: str, cwd: str, command: str, *, tags: dict[str, str], width: int = 200, height: int = 50
    ) -> dict:
        self.cmd("new-session", "-d", "-s", name, "-c", cwd, "-x", str(width), "-y", str(height), command)
        try:
            # (`=name:` — tmux 3.3 refuses a bare `=name` as a set-option target.)
            for k, v in tags.items():
                self.cmd("set-option", "-t", f"={name}:", k, v)
            # Keep a dead pane visible so its exit can be seen (and its output read).
            self.cmd("set-option", "-w", "-t", f"={name}:", "remain-on-exit", "on")
            return next(s for s in self.sessions() if s["session_name"] == name)
        except BaseException:
            self.cmd("kill-session", "-t", f"={name}")
            raise

    def pipe(self, pane_id: str, path: str) -> None:
        """Append the pane's output to `path`, a file only its user can read (it holds everything the
        agent's terminal showed): made 0600 here, and `umask 077` should the pipe ever create it."""
        os.close(private_file(path))
        self.cmd("pipe-pane", "-O", "-t", pane_id, f"umask 077; exec cat >> {shlex.quote(path)}")

    def send_text(self, pane_id: str, text: str, *, enter: bool = True) -> float | None:
        """Type `text` literally (never through a shell), then Enter after a pause; returns when the
        Enter went out (None without one). One call, on one thread: an engine stopped meanwhile
        (its task cancelled) still sends the Enter, so no typed line is ever left in the pane for
        the next writer to append to (walk, session 18)."""
        for i in range(0, len(text), CHUNK):
            chunk = text[i : i + CHUNK]
            if chunk.endswith(";"):
                chunk = chunk[:-1] + "\\;"  # tmux takes a trailing `;` as a command separator
            if chunk:
                self.cmd("send-keys", "-t", pane_id, "-l", "--", chunk)
        if not enter:
            return None
        time.sleep(self.enter_delay)
        entered = time.time()
        self.cmd("send-keys", "-t", pane_id, "Enter")
        return entered

    def send_keys(self, pane_id: str, *keys: str) -> None:
        self.cmd("send-keys", "-t", pane_id, *keys)

    def capture(self, pane_id: str, lines: int = 50) -> list[str]:
        return self.cmd("capture-pane", "-p", "-J", "-t", pane_id, "-S", f"-{max(lines, 1)}")

    def cursor_line(self, pane_id: str) -> str:
        """The screen row the pane's cursor is on, as shown (trailing blanks dropped)."""
        out = self.cmd("display-message", "-p", "-t", pane_id, "#{cursor_y}")
        y = out[0].strip() if out else ""
        if not y.isdigit():
            return ""
        row = self.cmd("capture-pane", "-p", "-t", pane_id, "-S", y, "-E", y)
        return row[0].rstrip() if row else ""

    def kill(self, name: str) -> None:
        self.cmd("kill-session", "-t", f"={name}")

    def client_activity(self, name: str) -> float | None:
        """Last key press of any client attached to the session (epoch seconds), None if none attached."""
        try:
            lines = self.cmd("list-clients", "-t", f"={name}", "-F", "#{client_activity}")
        except TmuxError:
            return None
        stamps = [int(x) for x in lines if x.strip().isdigit()]
        return max(stamps) if stamps else None

    def respawn(self, pane_id: str, cwd: str, command: str) -> None:
        self.cmd("respawn-pane", "-k", "-t", pane_id, "-c", cwd, command)


def default_shell() -> str:
    return os.environ.get("SHELL") or "/bin/sh"


def shell_command(shell: str, *, env: dict[str, str], unset: tuple[str, ...]) -> str:
    """The pane's first command: the shell, started by `env` with inherited variables removed."""
    parts = ["env"] + [x for v in unset for x in ("-u", v)] + [f"{k}={v}" for k, v in env.items()]
    return "exec " + " ".join(shlex.quote(p) for p in parts) + " " + shell

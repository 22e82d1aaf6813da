"""Is the runtime really there? Its binary on the pane's PATH before a launch (walk bug 6: a
missing `claude` looked like a dead engine after a 50 s wait), and after a launch whether the pane
fell back to its shell (bug 9: the team said `online` over a dead runtime)."""

from __future__ import annotations

import fcntl
import functools
import os
import shlex
import shutil
import struct
import sys
import termios

from thrum_engine.tmux.runtimes import Runtime
from thrum_engine.tmux.server import default_shell

# Foreground commands that mean "the pane is at a shell prompt", whichever shell the user runs.
SHELLS = frozenset(
    {"sh", "bash", "zsh", "fish", "dash", "ksh", "mksh", "tcsh", "csh", "nu", "elvish", "xonsh"}
)


# Shells that run `eval` and report a status in `$?`: a queued command there carries its exit status.
POSIX_SHELLS = SHELLS - {"fish", "nu", "elvish", "xonsh", "tcsh", "csh"}


def shell_basename(shell_setting: str | None) -> str:
    """The pane shell's program name (`bash --norc` -> `bash`)."""
    first = shlex.split(shell_setting or default_shell() or "sh")[:1] or ["sh"]
    return os.path.basename(first[0])


def shell_names(shell_setting: str | None) -> frozenset[str]:
    """The names tmux reports as `pane_current_command` for the pane's shell."""
    return SHELLS | {shell_basename(shell_setting)}


@functools.cache
def thrum_bin_dir() -> str | None:
    """The directory of the `thrum` this engine runs from: a venv the user never activated (the
    README's way) included, which a pane's inherited PATH lacks (walk bug 11)."""
    here = os.path.dirname(os.path.abspath(sys.executable))
    if os.access(os.path.join(here, "thrum"), os.X_OK):
        return here
    found = shutil.which("thrum")
    return os.path.dirname(found) if found else None


def agent_pane_path() -> str:
    """The PATH Thrum gives the panes it creates (set on the pane's command, so a tmux server
    started earlier with another environment makes no difference): the engine's own, with this
    `thrum` found first."""
    path = os.environ.get("PATH", os.defpath)
    bindir = thrum_bin_dir()
    if bindir and bindir not in path.split(os.pathsep):
        path = bindir + os.pathsep + path
    return path


def missing_binary(runtime: Runtime, path: str) -> str | None:
    """The runtime's binary when it is not on `path` (or not executable), else None."""
    if not runtime.command:
        return None
    binary = runtime.command[0]
    if os.sep in binary:
        return None if os.path.isfile(binary) and os.access(binary, os.X_OK) else binary
    return None if shutil.which(binary, path=path) else binary


def not_found_message(binary: str, path: str) -> str:
    """The shell's own words first, so the operator recognises them at once."""
    return (
        f"{binary}: command not found (not on the PATH the agent's pane gets: {path}; install it or set"
        f" the runtime's command in .thrum/runtimes.json)"
    )


def fell_back_to_shell(current_command: str, runtime: Runtime, shells: frozenset[str]) -> bool:
    """A launched runtime whose pane shows its shell again: the runtime exited (or never ran)."""
    return bool(runtime.command) and current_command in shells


def unread_input(tty: str) -> int | None:
    """Bytes typed into the pane that nobody has read yet (the kernel's input queue of its tty), or
    None when that cannot be told. A line still queued after a launch means the shell has not taken
    the command yet (its rc files still running, a loaded machine), not that the runtime exited."""
    try:
        fd = os.open(tty, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return None
    finally:
        os.close(fd)

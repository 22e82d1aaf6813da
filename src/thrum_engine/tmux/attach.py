"""How a terminal joins an agent's session. Stdlib only: the CLI and the console both use it.

* From outside tmux, or from a client of another tmux server: `attach-session` with $TMUX removed
  (nesting is what the user asked for); detaching ends the command and whoever ran it carries on.
* From a client of the agents' own server, a nested attach would loop, so the CLI switches the
  client to the session (`switch-client`: the user asked to go there). The console must get its
  terminal back when the user detaches, and a detach there would detach the whole client, console
  included (walk bug 2), so it opens the session in a popup over itself instead: the popup holds a
  client of its own, and detaching from it closes the popup and leaves the console where it was.

Every attach says, on the attached client's status line, which key brings the user back."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Attach:
    argv: list[str]
    env: dict[str, str]
    popup: bool  # runs over the caller's screen (no need to hand the terminal over)


# The agents' tmux server when `tmux.socket_name` is unset: tmux's own default socket, named, never
# the server of whoever started the engine (`$TMUX`): a console inside tmux and the daemon it hands
# over to must see the same sessions (walk A, 2).
DEFAULT_SOCKET = "default"


def server_argv(socket_name: str | None) -> list[str]:
    return ["tmux", "-L", socket_name or DEFAULT_SOCKET]


def inside_server(socket_name: str | None, env: dict[str, str]) -> bool:
    """Is the caller a client of the agents' tmux server?"""
    sock_path = os.path.join(
        env.get("TMUX_TMPDIR") or "/tmp", f"tmux-{os.getuid()}", socket_name or DEFAULT_SOCKET
    )
    inside = env.get("TMUX", "").split(",")[0]
    return bool(inside) and os.path.realpath(inside) == os.path.realpath(sock_path)


def detach_key(socket_name: str | None, env: dict[str, str]) -> str:
    """The server's prefix followed by d, as the user would type it ("C-b d")."""
    try:
        r = subprocess.run(
            [*server_argv(socket_name), "show-options", "-gv", "prefix"],
            env=env,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "C-b d"
    prefix = r.stdout.strip() if r.returncode == 0 else ""
    return f"{prefix or 'C-b'} d"


def attach_command(
    socket_name: str | None,
    session: str,
    env: dict[str, str],
    *,
    to: str = "the console",
    keep_screen: bool = False,
    detach: str = "C-b d",
) -> Attach:
    """`keep_screen`: the caller (the console) must get its screen back on detach, so from inside
    the agents' server it gets a popup rather than a switch of its own client."""
    base = server_argv(socket_name)
    env = dict(env)
    inside = inside_server(socket_name, env)
    if not inside and env.pop("TMUX", None):
        # Nested in another server, whose own prefix comes first: its prefix twice sends one on.
        detach = f"{detach.rpartition(' ')[0] or 'C-b'} {detach}"
    hint = ["display-message", "-d", "4000", f"thrum: {detach} returns to {to}"]
    attach = ["attach-session", "-t", f"={session}", ";", *hint]
    if not inside:
        return Attach([*base, *attach], env, popup=False)
    if not keep_screen:
        return Attach([*base, "switch-client", "-t", f"={session}", ";", *hint], env, popup=False)
    inner = "env -u TMUX -u TMUX_PANE " + shlex.join([*base, *attach])
    return Attach([*base, "display-popup", "-E", "-w", "95%", "-h", "95%", inner], env, popup=True)

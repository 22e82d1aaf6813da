"""How a terminal joins an agent's session: `switch-client` when it already is a client of that
tmux server (a nested attach there would loop), else `attach-session` with $TMUX removed (from
another server or none, nesting is what the user asked for). Stdlib only: the CLI and the console
both use it."""

from __future__ import annotations

import os


def attach_command(socket_name: str | None, session: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    sock_name = socket_name or "default"
    argv = ["tmux", "-L", sock_name]
    sock_path = os.path.join(env.get("TMUX_TMPDIR") or "/tmp", f"tmux-{os.getuid()}", sock_name)
    env = dict(env)
    inside = env.get("TMUX", "").split(",")[0]
    if inside and os.path.realpath(inside) == os.path.realpath(sock_path):
        argv += ["switch-client", "-t", f"={session}"]
    else:
        env.pop("TMUX", None)
        argv += ["attach-session", "-t", f"={session}"]
    return argv, env

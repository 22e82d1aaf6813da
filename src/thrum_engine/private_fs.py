"""The engine's socket directory and its append-only files (logs) are private to its user.

Directories inside the repo are made 0700 by `files.private_dir` (and logs opened 0600 by
`files.open_append_private`); here is the stricter rule for a socket directory outside it. Stdlib only (just `os`):
the CLI checks the socket directory before it spawns an engine.
"""

from __future__ import annotations

import os


class NotPrivate(Exception):
    """A directory Thrum would put its socket in is not safely ours: another user could hijack it."""


def owned_private_dir(path: str) -> str:
    """Create `path` 0700, or refuse it unless it is a directory we own that nobody else can enter.

    For a directory outside the repo that others might have prepared (`/tmp/thrum-<uid>`,
    `$XDG_RUNTIME_DIR`): a socket in someone else's directory can be swapped for theirs."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.stat(path)
    uid = os.getuid()
    if not os.path.isdir(path):
        raise NotPrivate(
            f"{path} is not a directory: remove it, or set THRUM_SOCKET to a path in a private directory"
        )
    if st.st_uid != uid:
        raise NotPrivate(
            f"the socket directory {path} is owned by uid {st.st_uid}, not by you (uid {uid}): "
            "remove it, or set XDG_RUNTIME_DIR or THRUM_SOCKET to a private directory"
        )
    if st.st_mode & 0o022:
        raise NotPrivate(
            f"the socket directory {path} is writable by other users (mode {st.st_mode & 0o7777:o}): "
            f"remove it, or set THRUM_SOCKET to a path in a private directory"
        )
    if st.st_mode & 0o077:
        # Ours and never writable by others (older versions made it 0755): nothing can have been planted.
        os.chmod(path, 0o700)
    return path


def ensure_socket_dir(socket_path: str, fallback_dir: str) -> None:
    """The directory the engine's socket goes in: strict when it is the shared fallback location."""
    d = os.path.dirname(socket_path) or "."
    if os.path.realpath(d) == os.path.realpath(fallback_dir):
        owned_private_dir(d)
    else:
        os.makedirs(d, mode=0o700, exist_ok=True)

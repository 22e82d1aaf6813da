"""Settings that follow `.thrum/config.json` while the engine runs.

Upstream's scripts edit the config file and expect the next command to see the change (issue 12,
item 2), so the engine checks the file's stamp (one `stat`, microseconds) before each request and
reloads when it moved. A file that no longer parses, or holds a bad value, keeps the last good
settings: a half-written edit must not take the engine down or reset it to defaults. The error is
logged once per bad version and reported by `daemon status` until the file is good again.

Environment overrides (`THRUM_*`) still win over the file, as at start; `--local`, a flag of this
run, stays in force across reloads.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from thrum_engine.settings import ThrumSettings, load_settings

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

log = logging.getLogger("thrum.settings")

Stamp = tuple[int, int, int] | None  # (mtime_ns, size, inode), None when the file is absent


def stamp_of(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _file_says_local(path: str) -> bool:
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("local") is True


# Settings a running engine cannot take up: the objects built from them at start keep the value
# they had (the tmux server every session lives on). A change is reported until a restart.
AT_START = (("tmux", "socket_name"),)


def _at_start(settings: ThrumSettings) -> dict[str, object]:
    return {f"{a}.{b}": getattr(getattr(settings, a), b) for a, b in AT_START}


class LiveSettings:
    """The engine's current settings and the stamp of the file they came from."""

    def __init__(self, config_file: str, initial: ThrumSettings) -> None:
        self.config_file = config_file
        self.current = initial
        self.stamp: Stamp = stamp_of(config_file)
        self.error: str | None = None
        self.started_with = _at_start(initial)
        self.restart_needed: list[str] = []  # AT_START settings changed since the engine started
        self.reloads = 0
        self._looked_at = float("-inf")
        # `--local` given at start (not from the file) is this run's choice: keep it on reload.
        self._pinned_local = initial.local and not _file_says_local(config_file)

    # Requests that arrive within this many seconds of a look share it: a batch of pipelined
    # requests, or 16 blocking clients' requests each in a turn of the loop of its own, pay one
    # `stat` between them. An edit is still seen by the next command: starting one takes longer.
    LOOK_EVERY_SECONDS = 0.002

    def check(self) -> ThrumSettings | None:
        """Reload when the file changed; returns the new settings, or None when nothing changed (or
        the new file is bad: then `error` says why and the last good settings stay)."""
        t = time.monotonic()
        if t - self._looked_at < self.LOOK_EVERY_SECONDS:
            return None
        self._looked_at = t
        now = stamp_of(self.config_file)
        if now == self.stamp:
            return None
        self.stamp = now
        try:
            fresh = load_settings(self.config_file if now is not None else None)
        except Exception as exc:  # noqa: BLE001 - InvalidInput (bad JSON) or pydantic's ValidationError
            detail = getattr(exc, "message", None) or " ".join(str(exc).split())
            self.error = f"{self.config_file}: {detail}; keeping the last good settings"
            log.warning("settings not reloaded: %s", self.error)
            return None
        if self._pinned_local and not fresh.local:
            fresh = fresh.model_copy(update={"local": True})
        self.error = None
        self.reloads += 1
        self.current = fresh
        now_at_start = _at_start(fresh)
        self.restart_needed = [k for k, v in now_at_start.items() if v != self.started_with[k]]
        if self.restart_needed:
            log.warning(
                "settings reloaded from %s; %s take effect at the next start (thrum daemon restart)",
                self.config_file,
                ", ".join(self.restart_needed),
            )
        else:
            log.info("settings reloaded from %s", self.config_file)
        return fresh

    def view(self) -> dict:
        return {
            "config_file": self.config_file,
            "reloads": self.reloads,
            "error": self.error,
            "restart_needed": list(self.restart_needed),
        }

    def refresh(self, engine: Engine) -> None:
        """Called before each request: swap the file's settings in when it changed."""
        fresh = self.check()
        if fresh is not None:
            engine.settings = fresh

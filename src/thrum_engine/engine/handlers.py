"""Imports every module that registers engine methods."""

from thrum_engine import (  # noqa: F401
    changes,
    delivery_paths,
    doctor,
    feed,
    identity,
    messaging,
    team,
    worktrees,
)
from thrum_engine.engine import admin  # noqa: F401
from thrum_engine.monitors import methods as monitor_methods  # noqa: F401
from thrum_engine.tmux import methods as tmux_methods  # noqa: F401

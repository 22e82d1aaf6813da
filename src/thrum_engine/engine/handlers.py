"""Imports every module that registers engine methods."""

from thrum_engine import (  # noqa: F401
    briefing,
    changes,
    delivery_paths,
    doctor,
    feed,
    hooks_log,
    identity,
    messaging,
    team,
    worktrees,
)
from thrum_engine.engine import admin  # noqa: F401
from thrum_engine.monitors import methods as monitor_methods  # noqa: F401
from thrum_engine.review import methods as review_methods  # noqa: F401
from thrum_engine.review import trees as review_trees  # noqa: F401
from thrum_engine.tmux import methods as tmux_methods  # noqa: F401
from thrum_engine.sync import methods as sync_methods  # noqa: F401

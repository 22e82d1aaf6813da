"""Imports every module that registers engine methods."""

from thrum_engine import briefing, changes, doctor, feed, hooks_log, identity, messaging, team, worktrees  # noqa: F401
from thrum_engine.engine import admin  # noqa: F401
from thrum_engine.monitors import methods as monitor_methods  # noqa: F401
from thrum_engine.tmux import methods as tmux_methods  # noqa: F401
from thrum_engine.sync import methods as sync_methods  # noqa: F401

"""A literal, so `thrum version` costs no importlib.metadata lookup (+40 ms)."""

__version__ = "0.1.0"

"""The engine core: `Engine` (core.py), group commit (writer.py), push (bus.py), method table (registry.py)."""

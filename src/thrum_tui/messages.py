"""Messages the console's widgets and handles post upward."""

from __future__ import annotations

from textual.message import Message


class EngineChanged(Message):
    """Something the console shows may have changed; a burst of these collapses into one."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EngineChanged)

"""Messages the console's widgets and handles post upward."""

from __future__ import annotations

from textual.message import Message

from thrum_tui.engine_handle import Change


class EngineChanged(Message):
    """Something the console shows may have changed. A burst collapses into one message, keeping
    every piece of mail to the operator it carried (each one still gets its toast)."""

    def __init__(
        self, mail: list[Change] | None = None, *, parts: frozenset[str] = frozenset({"team", "mail"})
    ) -> None:
        super().__init__()
        self.mail = list(mail or ())
        self.parts = parts  # what on the main screen changed ("team", "mail"); empty: only pages care

    def can_replace(self, message: Message) -> bool:
        # Textual asks `older.can_replace(newer)` and, on True, drops the older one: merge into the
        # newer message, the one that will be handled.
        if isinstance(message, EngineChanged):
            message.mail = self.mail + message.mail
            message.parts = self.parts | message.parts
            return True
        return False

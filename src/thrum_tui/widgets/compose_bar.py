"""Always at the bottom: `@name text` + enter sends; the app does the sending."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import Input


def parse_compose(text: str) -> tuple[list[str], str]:
    """Leading `@address` words are recipients, the rest is the body."""
    words = text.strip().split(" ")
    to = []
    while words and words[0].startswith("@") and len(words[0]) > 1:
        to.append(words.pop(0))
    return to, " ".join(words).strip()


class ComposeBar(Input):
    DEFAULT_CSS = """
    ComposeBar {
        dock: bottom;
        border: tall $primary;
    }
    ComposeBar:focus {
        border: tall $accent;
    }
    """

    class Send(Message):
        def __init__(self, to: list[str], body: str) -> None:
            super().__init__()
            self.to = to
            self.body = body

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="@name message — enter sends", id=id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        to, body = parse_compose(event.value)
        if not event.value.strip():
            return
        self.post_message(self.Send(to, body))

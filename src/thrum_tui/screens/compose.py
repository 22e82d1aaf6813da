"""The big compose box: several lines, pasted test output, code. Opened by ctrl+e or shift+enter
in the compose bar, and by any paste of more than one line there (the bar is one line; a paste
was cut to its first line without a word, walk bug 4). ctrl+s sends, escape keeps the draft."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Label, TextArea

from thrum_tui.screens.base import Dialog


class ComposeDialog(Dialog):
    """Dismisses with the text to send, or None (escape: the draft goes back to the bar)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_dialog", "back"),
        Binding("ctrl+s", "send", "send", priority=True),
    ]
    DEFAULT_CSS = """
    ComposeDialog > #dialog { width: 110; }
    ComposeDialog TextArea { height: 20; }
    ComposeDialog .hint { color: $text-muted; }
    """

    def __init__(self, text: str, *, heading: str = "Compose") -> None:
        super().__init__()
        self.text = text
        self.heading = heading

    def compose(self):
        with Vertical(id="dialog"):
            yield Label(self.heading, classes="title", markup=False)
            yield TextArea(self.text, soft_wrap=True, id="body")
            yield Label(
                "@name … on the first line · ctrl+s sends · escape keeps the draft",
                classes="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        area = self.query_one(TextArea)
        area.focus()
        area.move_cursor(area.document.end)

    def action_send(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_dismiss_dialog(self) -> None:
        self.dismiss(None)

"""`z`: the selected agent's pane on the whole screen, read-only: watching an agent work without
attaching, so no key can reach its pane by accident (walk bug 2, "a read-only zoom")."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.binding import Binding, BindingType
from textual.widgets import Footer

from thrum_tui.screens.base import Page
from thrum_tui.widgets.pane_preview import PanePreview

ZOOM_SECONDS = 0.5
ZOOM_LINES = 2000  # the scrollback too: this is where the operator reads back what happened


class ZoomScreen(Page):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("z", "app.pop_screen", "back", show=False),
    ]
    DEFAULT_CSS = """
    ZoomScreen > PanePreview { height: 1fr; }
    """

    def __init__(self, session: str) -> None:
        super().__init__()
        self.session = session

    def compose(self):
        yield PanePreview(id="zoom")
        yield Footer()

    def on_mount(self) -> None:
        preview = self.query_one(PanePreview)
        preview.border_subtitle = "read-only · esc back"
        preview.focus()
        self.capture()
        self.set_interval(ZOOM_SECONDS, self.capture)

    @work(group="zoom", exclusive=True, exit_on_error=False)
    async def capture(self) -> None:
        preview = self.query_one(PanePreview)
        r, error = await self.attempt("tmux.capture", {"session": self.session, "lines": ZOOM_LINES})
        if r is None:
            preview.show(None, None, error or "the pane is gone")
            return
        preview.show(self.session, r["lines"])

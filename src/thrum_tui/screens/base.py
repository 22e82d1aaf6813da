"""What every dialog shares: engine calls that report failure inline instead of raising, and
escape to close."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label

from thrum_tui.engine_handle import EngineCallFailed
from thrum_tui.widgets.tables import RowTable, refill


class EngineCalls:
    """Mixin: `await self.call(...)` returns None after showing the error, so flows read linearly."""

    async def attempt(self, method: str, params: dict | None = None) -> tuple[dict | None, str | None]:
        """(result, None) or (None, the one-line reason)."""
        try:
            return await self.app.engine.call(method, params or {}), None  # type: ignore[attr-defined]
        except EngineCallFailed as exc:
            return None, exc.message

    async def call(self, method: str, params: dict | None = None) -> dict | None:
        result, error = await self.attempt(method, params)
        if error is not None:
            self.app.notify(error, title=method, severity="error")  # type: ignore[attr-defined]
        return result


class LiveView:
    """A screen that shows engine state: when something changed the app calls
    `refresh_from_engine` (at most twice a second) while the screen is on top."""

    def refresh_from_engine(self) -> None:
        raise NotImplementedError


class Dialog(EngineCalls, ModalScreen):
    # Tab moves focus as a priority binding: the app handles it before forwarding the next key, so a
    # fast typist's next keys land in the next field. As a plain binding it ran only after the keys
    # already queued to the old field had been typed there (walk bug 10).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_dialog", "close"),
        Binding("tab", "move_focus(1)", show=False, priority=True),
        Binding("shift+tab", "move_focus(-1)", show=False, priority=True),
    ]
    DEFAULT_CSS = """
    Dialog {
        align: center middle;
    }
    Dialog > #dialog {
        width: 84;
        max-width: 95%;
        height: auto;
        max-height: 95%;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    Dialog #dialog > Label.title {
        text-style: bold;
        color: $accent;
        margin-bottom: 1;
    }
    Dialog .row {
        height: auto;
    }
    Dialog .row > Label {
        width: 14;
        padding: 1 1 0 0;
        text-align: right;
    }
    Dialog .row > Input, Dialog .row > Select {
        width: 1fr;
    }
    Dialog .buttons {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    Dialog .buttons Button {
        margin-left: 2;
    }
    Dialog .problem {
        color: $error;
    }
    Dialog .ok {
        color: $success;
    }
    """

    def action_dismiss_dialog(self) -> None:
        self.dismiss(None)

    def action_move_focus(self, direction: int) -> None:
        if direction > 0:
            self.focus_next()
        else:
            self.focus_previous()


class FormDialog(Dialog):
    """A dialog of several fields: Enter in a text field goes to the next one, and Enter in the
    last one, ctrl+s or the dialog's own button submits (walk bug 22: Enter anywhere submitted with
    whatever the later fields held; walk bug 6: Enter in the last field went on to Cancel, and a
    second Enter threw the form away). Its own footer says so, over the main screen's.
    Subclasses implement `action_submit`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_dialog", "cancel"),
        *Dialog.BINDINGS[1:],
        Binding("enter", "next_field", show=False, priority=True),
        Binding("ctrl+s", "submit", "submit"),
    ]

    def on_mount(self) -> None:
        # Textual runs every class's on_mount, so a subclass's own does not replace this one.
        self.mount(Footer())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Enter moves on from a text field only: on a button or a list it does their job.
        return action != "next_field" or isinstance(self.focused, Input)

    def action_next_field(self) -> None:
        fields = [w for w in self.focus_chain if isinstance(w, Input)]
        if fields and self.focused is fields[-1]:
            self.action_submit()
        else:
            self.focus_next()

    def action_submit(self) -> None:
        raise NotImplementedError


class Page(EngineCalls, Screen):
    """A full screen (feed, monitors): escape or q goes back to the main screen."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "back")]


class TablePage(Page):
    """A page that is one titled table of what the engine lists (worktrees, schedules): `reload`
    (a worker) fetches and calls `fill`, on mount, on `u` and whenever the engine's state changes."""

    HEADING = ""
    COLUMNS: tuple[str, ...] = ()
    DEFAULT_CSS = """
    TablePage #page-title { padding: 0 1; background: $panel; }
    TablePage DataTable { height: 1fr; }
    """

    def compose(self):
        yield Label(self.HEADING, id="page-title", markup=False)
        yield RowTable(cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for c in self.COLUMNS:
            table.add_column(c, key=c)
        table.focus()
        self.reload()

    def refresh_from_engine(self) -> None:
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> object:  # a @work method in each page: fetch, then `fill`
        raise NotImplementedError

    def fill(self, title: str, rows: list[tuple[str, ...]], keys: list[str] | None = None) -> None:
        """Show `rows` under `title`, the cursor kept on the same row number."""
        self.query_one("#page-title", Label).update(title)
        table = self.query_one(DataTable)
        row = table.cursor_row
        refill(table, rows, keys)
        if rows:
            table.move_cursor(row=min(max(row, 0), len(rows) - 1))

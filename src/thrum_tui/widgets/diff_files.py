"""The review's file list: one row per changed file (viewed mark, status, +/−, path, comments),
drawn on demand like the diff beside it, so moving to the next of 100 files redraws two rows,
not the list (an OptionList re-measured every option on each change: bench/review.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message

from thrum_tui.textual_compat import set_border_title
from thrum_tui.widgets.row_view import RowView


@dataclass(slots=True)
class FileRow:
    path: str
    status: str
    added: int
    removed: int
    viewed: bool = False
    comments: int = 0


class FileList(RowView):
    DEFAULT_CSS = """
    FileList {
        height: 2fr;
        border: round $primary;
        background: $surface;
    }
    FileList:focus {
        border: round $accent;
    }
    FileList > .file-list--cursor { background: $primary 40%; }
    FileList > .file-list--added { color: $success; }
    FileList > .file-list--removed { color: $error; }
    FileList > .file-list--muted { color: $text-muted; }
    FileList > .file-list--viewed { color: $success; text-style: bold; }
    FileList > .file-list--comments { color: $warning; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "file-list--cursor",
        "file-list--added",
        "file-list--removed",
        "file-list--muted",
        "file-list--viewed",
        "file-list--comments",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "move(1)", "down", show=False),
        Binding("k,up", "move(-1)", "up", show=False),
        Binding("pagedown", "move(10)", show=False),
        Binding("pageup", "move(-10)", show=False),
        Binding("enter", "choose", "open", show=False),
    ]

    class Highlighted(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    class Chosen(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[FileRow] = []

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def show(self, rows: list[FileRow], cursor: int = 0) -> None:
        self.rows = rows
        self.cursor = max(0, min(cursor, len(rows) - 1))
        self._lines.clear()
        self.virtual_size = Size(max((len(r.path) for r in rows), default=0) + 24, len(rows))
        self.refresh()

    def update_row(self, index: int, row: FileRow) -> None:
        self.rows[index] = row
        self.refresh_rows(index)

    def set_title(self, title: str) -> None:
        """A new border title, repainting the border's top line, not the list (the viewed count
        changes on every file `]` reads to its end)."""
        set_border_title(self, title)

    def set_cursor(self, index: int) -> None:
        """Move the cursor without telling anyone (the screen already knows). Off the view, the
        list scrolls by half a page, not a row: `]` through 100 files repaints the whole list once
        every dozen files, not on each (bench/review.py)."""
        if not self.rows:
            return
        old, scrolled = self.place_cursor(index, recentre=True)
        if scrolled:
            self._lines.pop(old, None)
            self._lines.pop(self.cursor, None)
            self.refresh()
        else:
            self.refresh_rows(old, self.cursor)

    def action_move(self, step: int) -> None:
        before = self.cursor
        self.set_cursor(self.cursor + step)
        if self.cursor != before:
            self.post_message(self.Highlighted(self.cursor))

    def action_choose(self) -> None:
        if self.rows:
            self.post_message(self.Chosen(self.cursor))

    def row_segments(self, i: int) -> list[Segment]:
        r = self.rows[i]
        base = self._style("base") + (self._style("file-list--cursor") if i == self.cursor else Style())
        out = [
            Segment("✓ " if r.viewed else "  ", base + self._style("file-list--viewed")),
            Segment(r.status + " ", base + self._style("file-list--muted")),
            Segment(f"+{r.added}", base + self._style("file-list--added")),
            Segment(" ", base),
            Segment(f"−{r.removed}", base + self._style("file-list--removed")),
            Segment(f" {r.path}", base),
        ]
        if r.comments:
            out.append(Segment(f" 💬{r.comments}", base + self._style("file-list--comments")))
        return out

"""Filling a DataTable with what the engine sent, for every table of the console.

Two traps of Textual's DataTable are closed here, once. A `str` cell is parsed as markup: a commit
subject "[wip] fix" showed as " fix", and "a [/] b" raised in the middle of a reload. And an
auto-width column is measured only when the table's message queue empties, while a frame drawn
before that caches the rows at their header widths under an update count that the measuring does
not move: "featur" for "feature/alice" stayed on screen until the next fill (a loaded CI run
snapped it). Here each cell is plain text and each column is given the width of its widest cell
before the first row is drawn, so no frame depends on when the table next idles.

And every table and list of the console moves with j/k as with the arrows (README: "j / k move in a
list"): it is a `RowTable` or a `RowList`, never a bare DataTable or OptionList. The schedules page
had only the arrows, so `j j j` then `x` cancelled row 1 instead of row 4 (walk A, bug 5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, OptionList

# j/k move like the arrows (lazygit, Agent Deck), in every table and list.
JK_BINDINGS: list[BindingType] = [
    Binding("j", "cursor_down", show=False),
    Binding("k", "cursor_up", show=False),
]


class RowTable(DataTable):
    """A DataTable of the console: j/k move as the arrows do."""

    BINDINGS: ClassVar[list[BindingType]] = JK_BINDINGS


class RowList(OptionList):
    """An OptionList of the console: j/k move as the arrows do."""

    BINDINGS: ClassVar[list[BindingType]] = JK_BINDINGS


def plain(value: object) -> Text:
    """A cell as it reads, brackets and all."""
    return value if isinstance(value, Text) else Text(str(value), no_wrap=True, end="")


def _width(text: Text) -> int:
    return max(cell_len(line) for line in text.plain.split("\n"))


def refill(table: DataTable, rows: Sequence[Sequence[object]], keys: Sequence[str] | None = None) -> None:
    """Replace every row of `table` (its columns kept, in order) by `rows`, keyed by `keys`."""
    columns = [(c.key.value, c.label) for c in table.ordered_columns]
    cells = [[plain(v) for v in row] for row in rows]
    widths = [
        max([label.cell_len, *(_width(r[i]) for r in cells if i < len(r))])
        for i, (_, label) in enumerate(columns)
    ]
    if [c.width for c in table.ordered_columns if not c.auto_width] == widths:
        table.clear()  # the usual refresh: the same widths, the columns kept
    else:
        table.clear(columns=True)
        for (key, label), width in zip(columns, widths, strict=True):
            table.add_column(label, width=width, key=key)
    for i, row in enumerate(cells):
        table.add_row(*row, key=keys[i] if keys else None)

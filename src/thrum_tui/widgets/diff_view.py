"""One file's diff, drawn line by line on demand (Textual's line API): only the rows on screen are
built, highlighted and styled, so a 5,000-line diff opens as fast as a 50-line one.

Chosen over `textual-diff-view` (evaluated, see bench/review.py): that widget takes both whole
files and recomputes the diff with difflib, composes a widget per hunk, and has no cursor to hang
a comment on. Here the rows are git's own diff, a cursor line (and a range) is what a comment
anchors to, and each comment is drawn under the line it is about."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.syntax import ANSI_DARK, ANSI_LIGHT, ANSISyntaxTheme
from textual import work
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from thrum_engine.review.diff import DiffLine, FileDiff
from thrum_tui.textual_compat import no_layout_virtual_size

_SIGN = {"+": "+", "-": "-", " ": " ", "@": "", "\\": ""}
LEX_BLOCK = 48  # code rows highlighted per lexer call (about a screenful)


@dataclass(slots=True)
class Row:
    """A line of the diff (`line`), or a comment drawn under the line it anchors to (`comment`)."""

    line: DiffLine | None
    comment: dict | None = None
    index: int = -1  # the line's index in FileDiff.lines


# Lexers by file name pattern, found once per process: pygments' first lookup scans every lexer
# (~150 ms) and a lexer's first use compiles its rules, so both happen off the UI thread.
_LEXERS: dict[str, object | None] = {}


def _lexer_key(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name[name.rindex(".") :] if "." in name[1:] else name


def _lexer_for(path: str):
    from pygments.lexers import get_lexer_for_filename
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_for_filename(path, stripnl=False, stripall=False, ensurenl=False)
    except ClassNotFound:
        lexer = None
    if lexer is not None:
        list(lexer.get_tokens("x = 1\n"))  # compiles its rules now, not on the first frame
    _LEXERS[_lexer_key(path)] = lexer
    return lexer


class DiffView(ScrollView, can_focus=True):
    """Keys: j/k and arrows move the cursor, ]/[ next/previous hunk, page keys, g/G ends, v starts a
    range. The screen around it does the commenting (it hears `CursorMoved`)."""

    # Its box is fixed by the layout: a new file's size repaints, never re-lays out the screen.
    virtual_size = no_layout_virtual_size()
    DEFAULT_CSS = """
    DiffView {
        height: 1fr;
        border: round $primary;
        background: $surface;
    }
    DiffView:focus {
        border: round $accent;
    }
    DiffView > .diff-view--gutter { color: $text-muted; }
    DiffView > .diff-view--added { background: $success 18%; }
    DiffView > .diff-view--removed { background: $error 18%; }
    DiffView > .diff-view--hunk { color: $accent; text-style: bold; }
    DiffView > .diff-view--cursor { background: $primary 40%; }
    DiffView > .diff-view--range { background: $primary 22%; }
    DiffView > .diff-view--comment { color: $warning; }
    DiffView > .diff-view--outdated { color: $text-muted; text-style: italic; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "diff-view--gutter",
        "diff-view--added",
        "diff-view--removed",
        "diff-view--hunk",
        "diff-view--cursor",
        "diff-view--range",
        "diff-view--comment",
        "diff-view--outdated",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor(1)", "down", show=False),
        Binding("k,up", "cursor(-1)", "up", show=False),
        Binding("right_square_bracket", "hunk(1)", "next hunk"),
        Binding("left_square_bracket", "hunk(-1)", "prev hunk"),
        Binding("pagedown,space", "page(1)", "page down", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("g,home", "ends(-1)", "top", show=False),
        Binding("G,end", "ends(1)", "bottom", show=False),
        Binding("v", "toggle_range", "range"),
    ]

    class CursorMoved(Message):
        def __init__(self, view: DiffView) -> None:
            super().__init__()
            self.view = view

    class EdgeReached(Message):
        """`]` past the last hunk or `[` before the first: the screen moves to the next file."""

        def __init__(self, direction: int) -> None:
            super().__init__()
            self.direction = direction

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.file: FileDiff | None = None
        self.rows: list[Row] = []
        self.cursor = 0
        self.range_start: int | None = None  # where a range started (`v`)
        self.comments: list[dict] = []
        self._gutter = 4
        self._lexer = None
        self._strips: dict[int, list[Segment]] = {}  # row -> highlighted code segments
        self._lines: dict[int, Strip] = {}  # row -> its strip, when neither cursor nor range is on it
        self._style_cache: dict[str, Style] = {}
        self._theme = ANSISyntaxTheme(ANSI_DARK)
        self.border_title = "DIFF"

    # -- content --
    def show(
        self, file: FileDiff | None, comments: list[dict] | None = None, *, keep_cursor: bool = False
    ) -> None:
        same = file is not None and self.file is not None and file.path == self.file.path
        self.file = file
        self.comments = list(comments or [])
        self._lexer = None
        if file is not None:
            key = _lexer_key(file.path)
            if key in _LEXERS:
                self._lexer = _LEXERS[key]
            else:
                self._find_lexer(file.path)  # drawn plain until it is known, then coloured
        self._strips.clear()
        self._lines.clear()
        dark = not self.is_mounted or self.app.current_theme.dark
        self._theme = ANSISyntaxTheme(ANSI_DARK if dark else ANSI_LIGHT)
        self._build_rows()
        if not (keep_cursor and same):
            self.cursor, self.range_start = self._first_code_row(), None
            self.scroll_to(y=0, animate=False, immediate=True)
        self.cursor = min(self.cursor, max(0, len(self.rows) - 1))
        self.border_title = f"DIFF · {file.path}" if file else "DIFF"
        self.refresh()
        self.post_message(self.CursorMoved(self))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_cache.clear()
        self._lines.clear()  # a theme change: every row's colours

    @work(group="diff-lexer", exit_on_error=False)
    async def _find_lexer(self, path: str) -> None:
        lexer = await asyncio.to_thread(_lexer_for, path)
        if self.file is not None and self.file.path == path:
            self._lexer = lexer
            self._strips.clear()
            self._lines.clear()
            self.refresh()

    def _build_rows(self) -> None:
        rows: list[Row] = []
        f = self.file
        if f is None:
            self.rows = []
            self.virtual_size = Size(0, 0)
            return
        by_line: dict[tuple[str, int], list[dict]] = {}
        file_level = []
        for c in self.comments:
            if not c.get("line"):
                file_level.append(c)
                continue
            side = c.get("side", "new")
            by_line.setdefault((side, int(c.get("end_line") or c["line"])), []).append(c)
        rows += [Row(None, c) for c in file_level]
        width = 0
        for i, ln in enumerate(f.lines):
            rows.append(Row(ln, None, i))
            width = max(width, len(ln.text))
            key = ("old", ln.old) if ln.kind == "-" else ("new", ln.new)
            if key[1] is not None:
                rows += [Row(None, c) for c in by_line.pop(key, ())]  # type: ignore[arg-type]
        rows += [Row(None, c) for cs in by_line.values() for c in cs]  # lines the diff no longer shows
        if f.binary:
            rows.append(Row(DiffLine("@", "binary file: no text diff")))
        numbers = [ln.old or 0 for ln in f.lines] + [ln.new or 0 for ln in f.lines]
        self._gutter = max(3, len(str(max(numbers, default=0))))
        self.rows = rows
        self.virtual_size = Size(width + 2 * self._gutter + 6, len(rows))

    def _first_code_row(self) -> int:
        for i, r in enumerate(self.rows):
            if r.line is not None and r.line.kind in "+-":
                return i
        return 0

    # -- what the cursor is on --
    @property
    def cursor_row(self) -> Row | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def selection(self) -> tuple[str, int, int] | None:
        """(side, first line, last line) under the cursor or the range; None on a hunk header."""
        lo, hi = sorted((self.cursor, self.cursor if self.range_start is None else self.range_start))
        lines = [r.line for r in self.rows[lo : hi + 1] if r.line is not None and r.line.kind in "+- "]
        if not lines:
            return None
        side = "old" if all(ln.kind == "-" for ln in lines) else "new"
        nums = [ln.old if side == "old" else ln.new for ln in lines]
        nums = [n for n in nums if n is not None]
        if not nums:
            return None
        return side, min(nums), max(nums)

    def hunk_index(self) -> int:
        """Which hunk the cursor is in (0-based), for the title."""
        if self.file is None:
            return 0
        row = self.cursor_row
        idx = row.index if row is not None and row.line is not None else -1
        return max(0, sum(1 for h in self.file.hunks if h <= idx) - 1)

    # -- drawing --
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        i = scroll_y + y
        width = self.scrollable_content_region.width
        if i >= len(self.rows):
            return Strip.blank(width, self._style("base"))
        plain = i != self.cursor and self.range_start is None
        strip = self._lines.get(i) if plain else None
        if strip is None:
            strip = Strip(self._row_segments(i), None)
            if plain:
                self._lines[i] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, self._style("base"))

    def _style(self, name: str) -> Style:
        """Component styles, computed once per style change (each lookup walks the CSS)."""
        style = self._style_cache.get(name)
        if style is None:
            style = self._style_cache[name] = (
                self.rich_style if name == "base" else self.get_component_rich_style(name, partial=True)
            )
        return style

    def _row_segments(self, i: int) -> list[Segment]:
        row = self.rows[i]
        base = self._style("base")
        lo, hi = sorted((self.cursor, self.cursor if self.range_start is None else self.range_start))
        if i == self.cursor:
            bg = base + self._style("diff-view--cursor")
        elif lo <= i <= hi and self.range_start is not None:
            bg = base + self._style("diff-view--range")
        else:
            bg = None
        g = self._gutter
        if row.comment is not None:
            c = row.comment
            style = self._style("diff-view--outdated" if c.get("outdated") else "diff-view--comment")
            mark = "✎ pending" if c.get("pending") else "💬"
            where = (
                f"L{c['line']}" + (f"-{c['end_line']}" if c.get("end_line") else "")
                if c.get("line")
                else "file"
            )
            text = f"{' ' * (2 * g + 2)}  {mark} {where}: {' '.join(str(c['body']).split())}"
            if c.get("outdated"):
                text += "  (outdated)"
            return [Segment(text, (bg or base) + style)]
        ln = row.line
        assert ln is not None
        gutter = base + self._style("diff-view--gutter")
        if ln.kind == "@" or ln.kind == "\\":
            style = (bg or base) + self._style("diff-view--hunk")
            return [Segment(" " * (2 * g + 2), gutter), Segment(ln.text, style)]
        kind_style = (
            self._style("diff-view--added")
            if ln.kind == "+"
            else self._style("diff-view--removed")
            if ln.kind == "-"
            else Style()
        )
        line_bg = (bg or base) + kind_style if bg is None else bg
        old = str(ln.old) if ln.old is not None else ""
        new = str(ln.new) if ln.new is not None else ""
        out = [
            Segment(f"{old:>{g}} {new:>{g}} ", gutter if bg is None else bg + gutter),
            Segment(_SIGN[ln.kind] + " ", line_bg),
        ]
        out += [Segment(text, line_bg + style) for text, style in self._code(i, ln)]
        return out

    def _code(self, i: int, ln: DiffLine) -> list[tuple[str, Style]]:
        cached = self._strips.get(i)
        if cached is not None:
            return cached  # type: ignore[return-value]
        if self._lexer is None:
            parts = [(ln.text.expandtabs(4), Style())]
            self._strips[i] = parts  # type: ignore[assignment]
            return parts
        self._lex_block(i)
        return self._strips[i]  # type: ignore[return-value]

    def _lex_block(self, start: int) -> None:
        """Highlight LEX_BLOCK code rows from `start` in one pass: one lexer call is far cheaper
        than one per line, and a string or comment spanning lines is read as one."""
        rows = [
            j
            for j in range(start, min(start + LEX_BLOCK, len(self.rows)))
            if j not in self._strips and self.rows[j].line is not None and self.rows[j].line.kind in "+- "  # type: ignore[union-attr]
        ]
        if start not in rows:
            rows.insert(0, start)
        texts = [self.rows[j].line.text.expandtabs(4) for j in rows]  # type: ignore[union-attr]
        lines: list[list[tuple[str, Style]]] = [[]]
        for token, value in self._lexer.get_tokens("\n".join(texts)):  # type: ignore[union-attr]
            style = self._theme.get_style_for_token(token)
            pieces = value.split("\n")
            for k, piece in enumerate(pieces):
                if k:
                    lines.append([])
                if piece:
                    lines[-1].append((piece, style))
        for j, parts in zip(rows, lines):
            self._strips[j] = parts  # type: ignore[assignment]
        for j in rows[len(lines) :]:
            self._strips[j] = []  # type: ignore[assignment]

    # -- moving --
    def move_to(self, row: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(row, len(self.rows) - 1))
        height = self.scrollable_content_region.height or 1
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)
        self.refresh()
        self.post_message(self.CursorMoved(self))

    def action_cursor(self, step: int) -> None:
        self.move_to(self.cursor + step)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * max(1, self.scrollable_content_region.height - 1))

    def action_ends(self, direction: int) -> None:
        self.move_to(0 if direction < 0 else len(self.rows) - 1)

    def action_hunk(self, direction: int) -> None:
        """To the first changed line of the next (previous) hunk, its header at the top of the view."""
        heads = [i for i, r in enumerate(self.rows) if r.line is not None and r.line.kind == "@"]
        here = max((h for h in heads if h <= self.cursor), default=-1)
        targets = [h for h in heads if h > self.cursor] if direction > 0 else [h for h in heads if h < here]
        if not targets:
            self.post_message(self.EdgeReached(direction))
            return
        head = targets[0] if direction > 0 else targets[-1]
        self.move_to(self._first_change_after(head))
        self.scroll_to(y=max(0, head - 1), animate=False, immediate=True)

    def _first_change_after(self, head: int) -> int:
        for i in range(head + 1, len(self.rows)):
            r = self.rows[i]
            if r.line is not None and r.line.kind == "@":
                break
            if r.line is not None and r.line.kind in "+-":
                return i
        return min(head + 1, len(self.rows) - 1)

    def action_toggle_range(self) -> None:
        self.range_start = None if self.range_start is not None else self.cursor
        self.refresh()
        self.post_message(self.CursorMoved(self))

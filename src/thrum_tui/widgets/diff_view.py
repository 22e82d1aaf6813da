"""One file's diff, drawn line by line on demand (Textual's line API): only the rows on screen are
built, highlighted and styled, so a 5,000-line diff opens as fast as a 50-line one.

Chosen over `textual-diff-view` (evaluated, see bench/review.py): that widget takes both whole
files and recomputes the diff with difflib, composes a widget per hunk, and has no cursor to hang
a comment on. Here the rows are git's own diff, a cursor line (and a range) is what a comment
anchors to, and each comment is drawn under the line it is about.

Unified or side by side (`s`): side by side, a run of removed lines stands beside the run of added
lines that replaced it, old on the left, new on the right; a row's `line` is its new side when it
has one (what a comment anchors to), `other` the old line beside it."""

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

from thrum_engine.review.diff import DiffLine, FileDiff
from thrum_tui.textual_compat import set_border_title
from thrum_tui.widgets.row_view import RowView

_SIGN = {"+": "+", "-": "-", " ": " ", "@": "", "\\": ""}
LEX_BLOCK = 48  # code rows highlighted per lexer call (about a screenful)


@dataclass(slots=True)
class Row:
    """A line of the diff (`line`), or a comment drawn under the line it anchors to (`comment`)."""

    line: DiffLine | None
    comment: dict | None = None
    index: int = -1  # the line's index in FileDiff.lines
    other: DiffLine | None = None  # side by side: the removed line left of an added `line`
    other_index: int = -1


def side_by_side(lines: list[DiffLine]) -> list[tuple[int, int]]:
    """Rows of (index, other index) over `lines` (-1: none): context and headers alone, each run of
    removed lines paired with the run of added lines after it, row by row. A row's first index is
    its new line where it has one, so comments, hunks and ranges read rows as they do unified."""
    out: list[tuple[int, int]] = []
    i, n = 0, len(lines)
    while i < n:
        if lines[i].kind != "-":
            out.append((i, -1))
            i += 1
            continue
        j = i
        while j < n and lines[j].kind == "-":
            j += 1
        k = j
        while k < n and lines[k].kind == "+":
            k += 1
        removed, added = range(i, j), range(j, k)
        for r in range(max(len(removed), len(added))):
            if r < len(added):
                out.append((added[r], removed[r] if r < len(removed) else -1))
            else:
                out.append((removed[r], -1))
        i = k
    return out


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


def warm_lexers(paths: list[str]) -> None:
    """Find (and compile) the lexers of these files now. Blocking: called in the thread that fetches
    a review, so the screen's first frame is already coloured (the first lookup imports pygments'
    lexer table, ~150 ms, which in a thread beside the first frame held the GIL against it)."""
    for path in paths:
        if _lexer_key(path) not in _LEXERS:
            _lexer_for(path)


# One theme object each: a theme caches the style of each token type it has been asked for.
THEMES = {True: ANSISyntaxTheme(ANSI_DARK), False: ANSISyntaxTheme(ANSI_LIGHT)}
Highlights = dict[int, list[tuple[str, Style]]]  # a file's diff line -> its code, highlighted


def lex_block(lexer, theme: ANSISyntaxTheme, lines: list[DiffLine], start: int, into: Highlights) -> None:
    """Highlight LEX_BLOCK code lines from `start` in one pass: one lexer call is far cheaper than
    one per line, and a string or comment spanning lines is read as one. Neighbouring tokens of one
    style are one piece (fewer segments for every later step of drawing the row)."""
    todo = [
        j
        for j in range(start, min(start + LEX_BLOCK, len(lines)))
        if j not in into and lines[j].kind in "+- "
    ]
    if start not in todo:
        todo.insert(0, start)
    texts = [lines[j].text.expandtabs(4) for j in todo]
    out: list[list[tuple[str, Style]]] = [[]]
    for token, value in lexer.get_tokens("\n".join(texts)):
        style = theme.get_style_for_token(token)
        for k, piece in enumerate(value.split("\n")):
            if k:
                out.append([])
            if piece:
                row = out[-1]
                if row and row[-1][1] == style:
                    row[-1] = (row[-1][0] + piece, style)
                else:
                    row.append((piece, style))
    for j, parts in zip(todo, out):
        into[j] = parts
    for j in todo[len(out) :]:
        into[j] = []


class DiffView(RowView):
    """Keys: j/k and arrows move the cursor, ]/[ next/previous hunk, page keys, g/G ends, v starts a
    range, s unified / side by side. The screen around it does the commenting (it hears
    `CursorMoved`)."""

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
    DiffView > .diff-view--divider { color: $primary; }
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
        "diff-view--divider",
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
        Binding("s", "toggle_split", "side by side"),
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
        self.range_start: int | None = None  # where a range started (`v`)
        self.comments: list[dict] = []
        self.split = False  # side by side
        self._heads: list[int] = []  # rows of the hunk headers
        self._gutter = 4
        self._lexer = None
        self._strips: Highlights = {}  # the shown file's
        # Each file's highlights, kept while the same diff is reviewed (a file seen again, or the
        # next one highlighted ahead of time), so moving between files relexes nothing.
        self._highlights: dict[str, tuple[FileDiff, bool, Highlights]] = {}
        self._theme = THEMES[True]
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
        self._lines.clear()
        dark = not self.is_mounted or self.app.current_theme.dark
        self._theme = THEMES[dark]
        self._strips = self._highlights_of(file, dark) if file is not None else {}
        self._build_rows()
        if not (keep_cursor and same):
            self.cursor, self.range_start = self._first_code_row(), None
            self.scroll_to(y=0, animate=False, immediate=True)
        self.cursor = min(self.cursor, max(0, len(self.rows) - 1))
        set_border_title(self, self._title())
        self.refresh()
        self.post_message(self.CursorMoved(self))

    def _highlights_of(self, file: FileDiff, dark: bool) -> Highlights:
        kept = self._highlights.get(file.path)
        if kept is not None and kept[0] is file and kept[1] == dark:
            return kept[2]
        fresh: Highlights = {}
        self._highlights[file.path] = (file, dark, fresh)
        return fresh

    def prelex(self, file: FileDiff | None) -> None:
        """Highlight the first screenful of `file` (the one the reviewer is likely to open next)
        now, after a frame, rather than on the keystroke that opens it."""
        if file is None or file.binary or file is self.file or not self.is_mounted:
            return
        lexer = _LEXERS.get(_lexer_key(file.path))
        if lexer is None:
            return
        dark = self.app.current_theme.dark
        into = self._highlights_of(file, dark)
        first = next((j for j, ln in enumerate(file.lines) if ln.kind in "+- "), None)
        if first is not None and first not in into:
            lex_block(lexer, THEMES[dark], file.lines, first, into)

    def _title(self) -> str:
        if self.file is None:
            return "DIFF"
        return f"DIFF · {self.file.path}" + (" · side by side" if self.split else "")

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def cacheable(self, i: int) -> bool:
        return i != self.cursor and self.range_start is None

    def on_resize(self) -> None:
        if self.split:
            self._lines.clear()  # each side's width follows the view's

    def action_toggle_split(self) -> None:
        """Unified <-> side by side, the cursor staying on the same line of the file."""
        here = self.cursor_row
        anchor = (here.index, here.comment.get("id") if here.comment else None) if here else (-1, None)
        self.split = not self.split
        self._lines.clear()
        self._build_rows()
        for i, r in enumerate(self.rows):
            if (r.index, r.comment.get("id") if r.comment else None) == anchor or (
                r.comment is None and anchor[1] is None and r.other_index == anchor[0] >= 0
            ):
                self.cursor = i
                break
        else:
            self.cursor = min(self.cursor, max(0, len(self.rows) - 1))
        self.range_start = None
        set_border_title(self, self._title())
        self.move_to(self.cursor)

    @work(group="diff-lexer", exit_on_error=False)
    async def _find_lexer(self, path: str) -> None:
        lexer = await asyncio.to_thread(_lexer_for, path)
        if self.file is not None and self.file.path == path:
            self._lexer = lexer
            self._lines.clear()
            self.refresh()

    def _build_rows(self) -> None:
        rows: list[Row] = []
        f = self.file
        if f is None:
            self.rows, self._heads = [], []
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
        lines = f.lines
        pairs = side_by_side(lines) if self.split else [(i, -1) for i in range(len(lines))]
        for i, o in pairs:
            ln = lines[i]
            other = lines[o] if o >= 0 else None
            rows.append(Row(ln, None, i, other, o))
            width = max(width, len(ln.text))
            for x in (other, ln) if other is not None else (ln,):
                key = ("old", x.old) if x.kind == "-" else ("new", x.new)
                if key[1] is not None:
                    rows += [Row(None, c) for c in by_line.pop(key, ())]  # type: ignore[arg-type]
        rows += [Row(None, c) for cs in by_line.values() for c in cs]  # lines the diff no longer shows
        if f.binary:
            rows.append(Row(DiffLine("@", "binary file: no text diff")))
        numbers = [ln.old or 0 for ln in lines] + [ln.new or 0 for ln in lines]
        self._gutter = max(3, len(str(max(numbers, default=0))))
        self.rows = rows
        self._heads = [i for i, r in enumerate(rows) if r.line is not None and r.line.kind == "@"]
        # Side by side fits the view's width (each side cropped); unified scrolls sideways.
        self.virtual_size = Size(0 if self.split else width + 2 * self._gutter + 6, len(rows))

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
    def row_segments(self, i: int) -> list[Segment]:
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
        if self.split:
            return self._split_segments(row, bg, gutter)
        old = str(ln.old) if ln.old is not None else ""
        new = str(ln.new) if ln.new is not None else ""
        line_bg = self._line_bg(ln, bg)
        out = [
            Segment(f"{old:>{g}} {new:>{g}} ", gutter if bg is None else bg + gutter),
            Segment(_SIGN[ln.kind] + " ", line_bg),
        ]
        out += [Segment(text, line_bg + style) for text, style in self._code(row.index, ln)]
        return out

    def _line_bg(self, ln: DiffLine, bg: Style | None) -> Style:
        if bg is not None:
            return bg
        kind = ln.kind
        extra = (
            self._style("diff-view--added")
            if kind == "+"
            else self._style("diff-view--removed")
            if kind == "-"
            else Style()
        )
        return self._style("base") + extra

    def _split_segments(self, row: Row, bg: Style | None, gutter: Style) -> list[Segment]:
        """Old | new, each side its own number, sign and code, cropped to half the view."""
        ln = row.line
        assert ln is not None
        left: tuple[DiffLine | None, int] = (row.other, row.other_index) if row.other else (None, -1)
        right: tuple[DiffLine | None, int] = (ln, row.index)
        if ln.kind == "-":
            left, right = (ln, row.index), (None, -1)
        elif ln.kind == " ":
            left = (ln, row.index)
        width = self.content_width or 80
        half = max(8, (width - 1) // 2)
        out: list[Segment] = []
        for n, (side_line, index) in enumerate((left, right)):
            if n:
                out.append(Segment("│", self._style("base") + self._style("diff-view--divider")))
            out += self._half(side_line, index, "old" if n == 0 else "new", half, bg, gutter)
        return out

    def _half(
        self, ln: DiffLine | None, index: int, side: str, width: int, bg: Style | None, gutter: Style
    ) -> list[Segment]:
        g = self._gutter
        if ln is None:
            return [Segment(" " * width, bg or self._style("base"))]
        number = ln.old if side == "old" else ln.new
        line_bg = self._line_bg(ln, bg)
        sign = _SIGN[ln.kind] if ln.kind != " " else " "
        head = [
            Segment(f"{number if number is not None else '':>{g}} ", gutter if bg is None else bg + gutter),
            Segment(sign + " ", line_bg),
        ]
        room = width - g - 3
        body: list[Segment] = []
        for text, style in self._code(index, ln):
            if room <= 0:
                break
            piece = text[:room]
            body.append(Segment(piece, line_bg + style))
            room -= len(piece)
        if room > 0:
            body.append(Segment(" " * room, line_bg))
        return head + body

    def _code(self, i: int, ln: DiffLine) -> list[tuple[str, Style]]:
        """Line `i` of the file's diff, highlighted (cached by line: both layouts share it)."""
        cached = self._strips.get(i)
        if cached is not None:
            return cached
        if self._lexer is None or i < 0:
            # Plain until the lexer is known: not kept with the file's highlights (the row's strip is).
            return [(ln.text.expandtabs(4), Style())]
        self._lex_block(i)
        return self._strips[i]

    def _lex_block(self, start: int) -> None:
        assert self.file is not None
        lex_block(self._lexer, self._theme, self.file.lines, start, self._strips)

    # -- moving --
    def move_to(self, row: int) -> None:
        if not self.rows:
            return
        old, scrolled = self.place_cursor(row)
        if scrolled or self.range_start is not None:
            self.refresh()  # every row moved (or is in the range's highlight)
        else:
            self.refresh_rows(old, self.cursor)
        self.post_message(self.CursorMoved(self))

    def action_cursor(self, step: int) -> None:
        self.move_to(self.cursor + step)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * max(1, self.scrollable_content_region.height - 1))

    def action_ends(self, direction: int) -> None:
        self.move_to(0 if direction < 0 else len(self.rows) - 1)

    def action_hunk(self, direction: int) -> None:
        """To the first changed line of the next (previous) hunk. A hunk already wholly on screen
        is not scrolled to (the view stays put: two rows repaint, not all); another is brought in
        with its header at the top of the view."""
        heads = self._heads
        here = max((h for h in heads if h <= self.cursor), default=-1)
        targets = [h for h in heads if h > self.cursor] if direction > 0 else [h for h in heads if h < here]
        if not targets:
            self.post_message(self.EdgeReached(direction))
            return
        head = targets[0] if direction > 0 else targets[-1]
        end = next((h for h in heads if h > head), len(self.rows))  # the hunk's rows: head..end-1
        top, height = self.scroll_offset.y, self.scrollable_content_region.height or 1
        if not (top <= head and end <= top + height):
            self.scroll_to(y=max(0, head - 1), animate=False, immediate=True)  # then the cursor: one repaint
        self.move_to(self._first_change_after(head))

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

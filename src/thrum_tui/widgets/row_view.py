"""A list of rows drawn on demand (Textual's line API) with a cursor: only the rows on screen are
built, each kept as a strip until it changes, and component styles are looked up once per style
change. The review's file list and its diff are both one (bench/review.py: an OptionList
re-measured every option on each change, a widget per line was slower still)."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Offset, Region
from textual.scroll_view import ScrollView
from textual.strip import Strip

from thrum_tui.textual_compat import no_layout_virtual_size


class RowView(ScrollView, can_focus=True):
    """Subclasses say how many rows there are (`row_count`) and what one shows (`row_segments`)."""

    # Its box is fixed by the layout: new content's size repaints, never re-lays out the screen.
    virtual_size = no_layout_virtual_size()

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cursor = 0
        self._lines: dict[int, Strip] = {}  # row -> its strip, while nothing on it changes
        self._style_cache: dict[str, Style] = {}
        self._frame: tuple[Offset, int, Style] | None = None  # scroll, width, base: one frame's

    @property
    def row_count(self) -> int:
        raise NotImplementedError

    def row_segments(self, i: int) -> list[Segment]:
        raise NotImplementedError

    def cacheable(self, i: int) -> bool:
        """Whether row `i`'s strip may be kept (a row under a moving highlight is rebuilt)."""
        return True

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_cache.clear()
        self._lines.clear()  # a theme change: every row's colours

    def _style(self, name: str) -> Style:
        """Component styles, computed once per style change (each lookup walks the CSS)."""
        style = self._style_cache.get(name)
        if style is None:
            style = self._style_cache[name] = (
                self.rich_style if name == "base" else self.get_component_rich_style(name, partial=True)
            )
        return style

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines of one frame: the scroll offset and width (computed properties that walk
        the widget's geometry) are read once for them all, not once a line."""
        self._frame = (self.scroll_offset, self.scrollable_content_region.width, self._style("base"))
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def render_line(self, y: int) -> Strip:
        (scroll_x, scroll_y), width, base = self._frame or (
            self.scroll_offset,
            self.scrollable_content_region.width,
            self._style("base"),
        )
        i = scroll_y + y
        if i >= self.row_count:
            return Strip.blank(width, base)
        keep = self.cacheable(i)
        strip = self._lines.get(i) if keep else None
        if strip is None:
            strip = Strip(self.row_segments(i))
            if keep:
                self._lines[i] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    @property
    def content_width(self) -> int:
        """The width rows are drawn in (this frame's, while one is drawn)."""
        return self._frame[1] if self._frame is not None else self.scrollable_content_region.width

    def refresh_rows(self, *rows: int) -> None:
        """Repaint just these rows (forgetting their strips), where they are on screen."""
        top = self.scroll_offset.y
        for i in rows:
            self._lines.pop(i, None)
            if 0 <= i - top < (self.scrollable_content_region.height or 0):
                self.refresh_lines(i - top)

    def place_cursor(self, row: int, *, recentre: bool = False) -> tuple[int, bool]:
        """Put the cursor on `row` (clamped) and scroll just enough to show it (`recentre`: a
        cursor leaving the view brings it to the middle, so the next moves scroll nothing): the old
        row, and whether the view scrolled (then it all repaints)."""
        old, self.cursor = self.cursor, max(0, min(row, self.row_count - 1))
        height = self.scrollable_content_region.height or 1
        top = self.scroll_offset.y
        if recentre and not top <= self.cursor < top + height:
            self.scroll_to(y=max(0, self.cursor - height // 2), animate=False, immediate=True)
        elif self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)
        return old, self.scroll_offset.y != top

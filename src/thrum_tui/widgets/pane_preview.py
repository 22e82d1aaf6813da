"""The selected agent's tmux pane, refreshed while it is on screen and scrollable: following the
tail until the operator scrolls up, then holding still until they scroll back down.

"Following" is a flag that only the operator's scrolling clears, not "the view is at the end now":
a terminal that shrinks leaves the view where it was, above the new end, and the preview counted
that as "scrolled up" and stopped showing new output (walk A, bug 8)."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from thrum_tui.textual_compat import set_border_title

HELD_ROWS = 8  # the lines at the top of a held view that are looked for in a new capture


def held_top(old: list[str], new: list[str], top: int) -> int | None:
    """Where the line at the top of a held view (`old[top]`) is in `new`: the nearest place at or
    above `top` where the view's first lines are found again (the last line is left out: a
    spinner or prompt rewrites it in place); 0 when they left the capture; None if nothing moved."""
    anchor = old[top : min(top + HELD_ROWS, len(old) - 1)]
    if not anchor or new[top : top + len(anchor)] == anchor:
        return None
    for at in range(min(top, len(new)) - 1, -1, -1):
        if new[at : at + len(anchor)] == anchor:
            return at
    return 0


class PanePreview(VerticalScroll):
    DEFAULT_CSS = """
    PanePreview {
        height: 1fr;
        border: round $primary;
        background: $surface;
    }
    PanePreview:focus {
        border: round $accent;
    }
    PanePreview > Static {
        width: auto;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session: str | None = None
        self.shown_for: str | None = None  # the agent this preview was last drawn for
        self._note = ""
        self.lines: list[str] = []
        self.border_title = "PANE"
        self.border_subtitle = "a attach  c queue"
        self.following = True  # keep the tail in view; cleared only by scrolling up

    def on_mount(self) -> None:
        self.watch(self, "scroll_y", self._scrolled, init=False)

    def _scrolled(self, old: float, new: float) -> None:
        """The view moved. Reaching the end (the operator's scroll down, or ours) follows again;
        a move up is the operator's: nothing else moves it up without landing on the end (a
        shorter text or a taller box pulls the view down onto the end, a shrink does not move it)."""
        if self.is_vertical_scroll_end:
            self.following = True
        elif new < old:
            self.following = False

    def on_resize(self) -> None:
        if self.following:
            self.scroll_end(animate=False)

    def compose(self):
        yield Static("", id="pane-body", markup=False)

    @property
    def plain_text(self) -> str:
        return "\n".join(self.lines)

    def show(self, session: str | None, lines: list[str] | None, note: str = "") -> None:
        if session != self.session:
            self.following = True
        self.session = session
        set_border_title(self, f"pane · {session}" if session else "PANE")
        body = self.query_one("#pane-body", Static)
        if session is None or lines is None:
            note = note or "no tmux session for this agent"
            if self.lines or note != self._note:  # an unchanged placeholder is not redrawn
                self.lines, self._note = [], note
                body.update(Content.styled(note, "$text-muted"))
            return
        self._note = ""
        if lines == self.lines:
            return
        old, self.lines = self.lines, lines
        body.update(Content("\n".join(lines)))
        if self.following:
            self.scroll_end(animate=False)
            return
        # Held: the capture is the pane's last lines, so new output moves the held ones up the
        # text; the view moves with them and keeps showing the same lines, as tmux's copy mode does
        # (it stayed a fixed distance from the end and the text crept by: walk, bug 12).
        top = held_top(old, lines, round(self.scroll_y))
        if top is not None and top != round(self.scroll_y):
            self.call_after_refresh(self.scroll_to, y=top, animate=False)

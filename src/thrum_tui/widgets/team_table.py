"""The team: the operator first, then agents by attention (blocked, unread for you, working, idle,
offline), each with its state and age, unread count, role, runtime, branch and intent.

One pre-rendered line per member in an OptionList, not a DataTable: a DataTable re-renders every
cell of every visible row whenever any cell changes, and the unread counts change with each piece
of mail -- that redraw (~40 ms for fifty agents) was what a keystroke waited behind."""

from __future__ import annotations

from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from thrum_engine.durations import human_age
from thrum_tui.textual_compat import no_layout_virtual_size, redraw_option, set_border_title
from thrum_tui.widgets.tables import RowList

GLYPHS = {
    "here": "◆",
    "working": "●",
    "online": "●",
    "idle": "◌",
    "blocked": "!",
    "stuck": "!",
    "exited": "✕",
    "no session": "○",
    "offline": "○",
}
STYLES = {
    "here": "$accent",
    "working": "$success",
    "online": "$success",
    "idle": "$text-muted",
    "blocked": "b $error",
    "stuck": "b $error",
    "exited": "b $warning",
    "no session": "$text-disabled",
    "offline": "$text-disabled",
}
COLUMNS = (
    ("", 2),
    ("name", 21),
    ("state", 13),
    ("new", 4),
    ("role", 13),
    ("runtime", 9),
    ("branch", 19),
    ("intent", 30),
)
ATTENTION = {
    "blocked": 0,
    "stuck": 0,
    "exited": 0,
    "working": 2,
    "online": 2,
    "idle": 3,
    "no session": 4,
    "offline": 4,
}
# States a human must act on: counted in "needs you", first for `g`. (An exited runtime does
# nothing until relaunched; a killed session was the operator's own doing.)
NEEDS_HUMAN = frozenset({"blocked", "stuck", "exited"})
# A short column shows this many team rows before the panels under it get a line.
ROWS_FIRST = 12


def coarse_age(seconds: float) -> str:
    """Minutes are what an operator scans for; per-second ages would redraw every row every tick."""
    return "<1m" if seconds < 60 else human_age(seconds)


def attention_order(operator: str, members: list[dict]) -> list[dict]:
    """The operator first; then what needs a human soonest."""

    def key(m: dict) -> tuple:
        rank = ATTENTION.get(m["state"], 5)
        if rank > 0 and m.get("unread_from"):
            rank = 1  # has written to you and you have not read it
        return (rank, m["name"])

    ops = [m for m in members if m["name"] == operator]
    return ops + sorted((m for m in members if m["name"] != operator), key=key)


def _fit(text: str, width: int) -> str:
    text = text if len(text) < width else text[: width - 2] + "…"
    return text.ljust(width)


def header_line() -> Content:
    return Content.styled("".join(_fit(label, width) for label, width in COLUMNS).rstrip(), "b $text-muted")


class TeamTable(RowList):
    # Its box is fixed by the layout; a rebuild's passing changes of `virtual_size` must not ask
    # for a whole-screen layout (OptionList updates its own scrollbars).
    virtual_size = no_layout_virtual_size()

    DEFAULT_CSS = """
    TeamTable {
        height: 1fr;
        border: round $primary;
        border-title-color: $foreground;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    TeamTable:focus {
        border: round $accent;
    }
    """

    class AgentSelected(Message):
        """The highlighted row changed: the right side follows it."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    class AgentOpened(Message):
        """Enter on a row: open that agent (focus its conversation, read its mail)."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, operator: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.operator = operator
        self.border_title = "TEAM"
        self._members: list[dict] = []
        self._rows: list[str] = []  # each row's plain text as shown
        self.state_filter: tuple[str, frozenset[str]] | None = None  # (label, states shown); you always

    def on_mount(self) -> None:
        self.add_option(Option(header_line(), disabled=True))

    @property
    def names(self) -> list[str]:
        return [m["name"] for m in self._members]

    @property
    def members(self) -> list[dict]:
        return list(self._members)

    def member(self, name: str | None) -> dict | None:
        return next((m for m in self._members if m["name"] == name), None)

    @property
    def selected(self) -> str | None:
        row = (self.highlighted or 0) - 1
        return self._members[row]["name"] if 0 <= row < len(self._members) else None

    def move_cursor(self, *, row: int, animate: bool = False) -> None:
        """Highlight the member at `row` (0 is the operator)."""
        if 0 <= row < len(self._members):
            self.highlighted = row + 1

    def row_text(self, name: str) -> str:
        return self._rows[self.names.index(name)]

    def _redraw_row(self, index: int, prompt: Content) -> None:
        """Replace one row's text and forget only that row's rendering. (OptionList's own
        replace forgets every row's rendering and re-measures them all; a row here is always
        one line, so nothing else moves.)"""
        redraw_option(self, index, prompt)

    def _row(self, m: dict) -> tuple[str, Content]:
        me = m["name"] == self.operator
        state = "here" if me else m["state"]  # the console is open: the operator is here
        name = f"you (@{m['name']})" if me else m["name"]
        age = "" if me else " " + coarse_age(m.get("idle_seconds") or 0)
        new = m["unread"] if me else m.get("unread_from", 0)
        cells = [
            GLYPHS.get(state, "?"),
            name,
            f"{state}{age}",
            str(new) if new else "",
            m["role"],
            m.get("runtime") or "",
            m.get("branch") or "",
            (f"[{m['task_chip']}] " if m.get("task_chip") else "")
            + " ".join((m.get("intent") or "").split()),
        ]
        texts = [_fit(c, w) for c, (_, w) in zip(cells, COLUMNS)]
        styles = [STYLES.get(state, ""), "", STYLES.get(state, ""), "b $accent", "", "", "$text-muted", ""]
        plain = "".join(texts).rstrip()
        return plain, Content.assemble(*((t, st) if st else t for t, st in zip(texts, styles)))

    def show(self, members: list[dict], unread_from: dict[str, int] | None = None) -> None:
        """Show `members` in attention order, keeping the highlighted agent highlighted.
        `unread_from` counts the operator's unread mail per author: the "new" a row shows."""
        unread_from = unread_from or {}
        for m in members:
            m["unread_from"] = unread_from.get(m["name"], 0)
        keep = self.selected
        order = attention_order(self.operator, members)
        if self.state_filter is not None:
            shown = self.state_filter[1]
            order = [m for m in order if m["name"] == self.operator or m["state"] in shown]
        rows = [self._row(m) for m in order]
        if len(order) == len(self._members):
            # Same number of rows (the common case, even when the order changes): redraw only the
            # rows whose text changed, in place; the highlight stays on the same agent.
            for i, ((plain, rich), was) in enumerate(zip(rows, self._rows)):
                if plain != was:
                    self._redraw_row(i + 1, rich)
            self._members, self._rows = order, [p for p, _ in rows]
            if keep in self.names and self.selected != keep:
                with self.prevent(OptionList.OptionHighlighted):
                    self.highlighted = self.names.index(keep) + 1
            return
        # The team's rows come first in a short column: the side panels under it (height auto)
        # took every line at 60x20 and left the team its border alone (walk, bug 16); now they
        # are cut at the bottom instead.
        self.styles.min_height = 3 + min(len(order), ROWS_FIRST)  # border, header line, rows
        # Rebuilding moves the highlight; the right side must not follow that flicker.
        with self.prevent(OptionList.OptionHighlighted):
            self._members, self._rows = order, [p for p, _ in rows]
            self.clear_options()
            self.add_option(Option(header_line(), disabled=True))
            self.add_options(Option(rich) for _, rich in rows)
            self.highlighted = self.names.index(keep) + 1 if keep in self.names else (1 if order else None)
        if self.selected != keep and self.selected is not None:
            self.post_message(self.AgentSelected(self.selected))

    def filter_states(self, label: str | None, states: frozenset[str] = frozenset()) -> None:
        """Show only agents in `states` (None: everyone); the title says which."""
        self.state_filter = None if label is None else (label, states)
        set_border_title(self, "TEAM" if label is None else f"TEAM · {label} only")

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if self.selected is not None:  # rows carry no ids: their agent is whoever is at that index now
            self.post_message(self.AgentSelected(self.selected))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if self.selected is not None:
            self.post_message(self.AgentOpened(self.selected))

"""The team: the operator first, then agents by attention (blocked, unread for you, working, idle,
offline), each with its state and age, unread count and intent."""

from __future__ import annotations

from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable

from thrum_engine.durations import human_age

GLYPHS = {"here": "◆", "working": "●", "online": "●", "idle": "◌", "blocked": "!", "stuck": "!", "offline": "○"}
STYLES = {"here": "$accent", "working": "$success", "online": "$success", "idle": "$text-muted", "blocked": "b $error",
          "stuck": "b $error", "offline": "$text-disabled"}
COLUMN_KEYS = ("glyph", "name", "state", "unread", "role", "runtime", "branch", "intent")
COLUMNS = (("", 1), ("name", 20), ("state", 12), ("new", 3), ("role", 12), ("runtime", 8), ("branch", 18),
           ("intent", 30))
ATTENTION = {"blocked": 0, "stuck": 0, "working": 2, "online": 2, "idle": 3, "offline": 4}


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


class TeamTable(DataTable):
    DEFAULT_CSS = """
    TeamTable {
        height: 1fr;
        border: round $primary;
        border-title-color: $foreground;
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
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.operator = operator
        self.border_title = "TEAM"
        self._members: list[dict] = []
        self._cells_shown: list[tuple] = []

    def on_mount(self) -> None:
        # Fixed widths: styled cells do not widen auto-sized columns, and fixed columns keep rows
        # from jumping sideways as states change.
        for (label, width), key in zip(COLUMNS, COLUMN_KEYS):
            self.add_column(label, key=key, width=width)

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
        if not self._members or self.cursor_row < 0 or self.cursor_row >= len(self._members):
            return None
        return self._members[self.cursor_row]["name"]

    def show(self, members: list[dict], unread_from: dict[str, int] | None = None) -> None:
        """Replace the rows, keeping the highlighted agent highlighted. `unread_from` counts the
        operator's unread mail per author: that is the "new" an operator cares about per row."""
        unread_from = unread_from or {}
        for m in members:
            m["unread_from"] = unread_from.get(m["name"], 0)
        keep = self.selected
        order = attention_order(self.operator, members)
        cells = [self._cells(m) for m in order]
        if [m["name"] for m in order] == self.names:
            # Same rows in the same order (the common case): touch only the cells that changed --
            # a full rebuild per refresh is what made a busy team cost keystrokes.
            for m, row, old in zip(order, cells, self._cells_shown):
                for key, new, was in zip(COLUMN_KEYS, row, old):
                    if str(new) != str(was) or getattr(new, "spans", None) != getattr(was, "spans", None):
                        self.update_cell(m["name"], key, new)
            self._members, self._cells_shown = order, cells
            return
        # Rebuilding moves the cursor through row 0; the right side must not follow that flicker.
        with self.prevent(DataTable.RowHighlighted):
            self._members, self._cells_shown = order, cells
            self.clear()
            for m, row in zip(order, cells):
                self.add_row(*row, key=m["name"])
            if keep in self.names:
                self.move_cursor(row=self.names.index(keep), animate=False)
        if self.selected != keep and self.selected is not None:
            self.post_message(self.AgentSelected(self.selected))

    def _cells(self, m: dict) -> tuple:
        me = m["name"] == self.operator
        state = "here" if me else m["state"]  # the console is open: the operator is here
        glyph = Content.styled(GLYPHS.get(state, "?"), STYLES.get(state, ""))
        name = f"you (@{m['name']})" if me else m["name"]
        age = "" if me else " " + coarse_age(m.get("idle_seconds") or 0)
        new = m["unread"] if me else m["unread_from"]
        return (glyph, name, Content.styled(f"{state}{age}", STYLES.get(state, "")),
                Content.styled(str(new), "b $accent") if new else "", m["role"], m.get("runtime") or "",
                m.get("branch") or "", (m.get("intent") or "")[:40])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key is not None and event.row_key.value is not None:
            self.post_message(self.AgentSelected(event.row_key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key is not None and event.row_key.value is not None:
            self.post_message(self.AgentOpened(event.row_key.value))

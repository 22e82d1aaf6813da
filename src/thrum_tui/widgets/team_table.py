"""The team: the operator first, then agents by attention (blocked, unread for you, working, idle,
offline), each with its state and age, unread count and intent."""

from __future__ import annotations

from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable

from thrum_engine.durations import human_age

GLYPHS = {"working": "●", "online": "●", "idle": "◌", "blocked": "!", "stuck": "!", "offline": "○"}
STYLES = {"working": "$success", "online": "$success", "idle": "$text-muted", "blocked": "b $error",
          "stuck": "b $error", "offline": "$text-disabled"}
ATTENTION = {"blocked": 0, "stuck": 0, "working": 2, "online": 2, "idle": 3, "offline": 4}


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

    def on_mount(self) -> None:
        for label, key in (("", "glyph"), ("name", "name"), ("role", "role"), ("runtime", "runtime"),
                           ("state", "state"), ("new", "unread"), ("branch", "branch"), ("intent", "intent")):
            self.add_column(label, key=key)

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
        self._members = attention_order(self.operator, members)
        self.clear()
        for m in self._members:
            me = m["name"] == self.operator
            state = m["state"]
            glyph = Content.styled(GLYPHS.get(state, "?"), STYLES.get(state, ""))
            name = f"you (@{m['name']})" if me else m["name"]
            age = "" if me else " " + human_age(m.get("idle_seconds") or 0)
            new = m["unread"] if me else m["unread_from"]
            self.add_row(glyph, name, m["role"], m.get("runtime") or "",
                         Content.styled(f"{state}{age}", STYLES.get(state, "")),
                         Content.styled(str(new), "b $accent") if new else "",
                         m.get("branch") or "", (m.get("intent") or "")[:40], key=m["name"])
        if keep in self.names:
            self.move_cursor(row=self.names.index(keep), animate=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key is not None and event.row_key.value is not None:
            self.post_message(self.AgentSelected(event.row_key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key is not None and event.row_key.value is not None:
            self.post_message(self.AgentOpened(event.row_key.value))

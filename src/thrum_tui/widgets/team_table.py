"""The team: the operator first, then every agent with its state, age and unread count."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import DataTable

from thrum_engine.durations import human_age


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
        """The highlighted row changed: the conversation should follow it."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, operator: str, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.operator = operator
        self.border_title = "TEAM"
        self._members: list[dict] = []

    def on_mount(self) -> None:
        for label in ("name", "role", "runtime", "state", "unread"):
            self.add_column(label, key=label)

    @property
    def names(self) -> list[str]:
        return [m["name"] for m in self._members]

    @property
    def selected(self) -> str | None:
        if not self._members or self.cursor_row < 0 or self.cursor_row >= len(self._members):
            return None
        return self._members[self.cursor_row]["name"]

    def show(self, members: list[dict]) -> None:
        """Replace the rows, keeping the highlighted agent highlighted."""
        keep = self.selected
        ops = [m for m in members if m["name"] == self.operator]
        self._members = ops + [m for m in members if m["name"] != self.operator]
        self.clear()
        for m in self._members:
            name = f"you (@{m['name']})" if m["name"] == self.operator else m["name"]
            state = f"{m['state']} {human_age(m.get('idle_seconds') or 0)}"
            unread = str(m["unread"]) if m.get("unread") else ""
            self.add_row(name, m["role"], m.get("runtime") or "", state, unread, key=m["name"])
        if keep in self.names:
            self.move_cursor(row=self.names.index(keep), animate=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key is not None and event.row_key.value is not None:
            self.post_message(self.AgentSelected(event.row_key.value))

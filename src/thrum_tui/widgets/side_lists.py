"""Compact summaries under the team: worktrees and monitor rules. Their own screens hold detail."""

from __future__ import annotations

from thrum_tui.widgets.tables import RowTable, refill


class Summary(RowTable):
    DEFAULT_CSS = """
    Summary {
        height: auto;
        max-height: 10;
        border: round $primary;
    }
    Summary:focus {
        border: round $accent;
    }
    """

    COLUMNS: tuple[str, ...] = ()
    EMPTY = "none"

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", show_header=False)
        self.border_title = title

    def on_mount(self) -> None:
        for c in self.COLUMNS:
            self.add_column(c, key=c)

    def fill(self, rows: list[tuple]) -> None:
        refill(self, rows or [(self.EMPTY,) + ("",) * (len(self.COLUMNS) - 1)])


class WorktreeSummary(Summary):
    COLUMNS = ("branch", "status", "agent")
    EMPTY = "no worktrees"

    def show(self, worktrees: list[dict]) -> None:
        self.fill(
            [
                (w["branch"] or "detached", w["status"], "@" + w["agent"] if w["agent"] else "")
                for w in worktrees
            ]
        )


class MonitorSummary(Summary):
    COLUMNS = ("name", "pattern", "state")
    EMPTY = "no monitors (m to add)"

    def show(self, monitors: list[dict]) -> None:
        self.fill(
            [
                (m["name"], f"/{m['match']}/"[:24], f"{m['status']} · {m.get('matches', 0)} hits")
                for m in monitors
            ]
        )

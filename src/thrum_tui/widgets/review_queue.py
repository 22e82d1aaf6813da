"""The review queue under the team: each agent whose work waits for review, with how much and since
when; hidden while nothing does. Enter opens the review screen."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import DataTable

from thrum_tui.textual_compat import set_border_title
from thrum_tui.widgets.side_lists import Summary


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f" {int(seconds // size)}{unit}"
    return f" {int(seconds)}s"


def queue_row(e: dict) -> tuple[str, str, str]:
    mark = "● " if e["needs_you"] else "  "
    dirty = e["uncommitted"] + e["untracked"]
    work = f"↑{e['ahead']} +{e['added']} −{e['removed']}" + (f" ~{dirty}" if dirty else "")
    status = e["status"].replace("_", " ")
    if e["status"] == "requested":
        status += _ago(e["request_age"])
    if e["changed_since_review"]:
        status += " · changed"
    if e["tests"] and e["tests"]["passed"] is not None:
        status += " · tests ✓" if e["tests"]["passed"] else " · tests ✗"
    return (mark + "@" + e["agent"], work, status)


class ReviewQueue(Summary):
    COLUMNS = ("agent", "work", "review")
    EMPTY = "nothing to review"

    class Open(Message):
        def __init__(self, agent: str) -> None:
            super().__init__()
            self.agent = agent

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(title, id=id)
        self.entries: list[dict] = []
        self.display = False

    def show(self, entries: list[dict]) -> None:
        if entries == self.entries and self.row_count:
            return
        self.entries = entries
        self.display = bool(entries)
        needs = sum(1 for e in entries if e["needs_you"])
        set_border_title(self, f"REVIEW · {needs} need you" if needs else "REVIEW")
        self.fill([queue_row(e) for e in entries])
        # The table measures its new rows when its queue empties; the panel is `height: auto`, so
        # its column is laid out again once that is done (it was caught laid out 0 rows high).
        self.call_after_refresh(self.refresh, layout=True)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self.entries):
            self.post_message(self.Open(self.entries[event.cursor_row]["agent"]))

"""`D`: every pending schedule (issue 16), soonest first: who sends what to whom, how (once or its
cron), the next fire time and how far off it is, how often it fired. `x` cancels the highlighted
one (the operator may cancel anyone's); `a` shows ended ones too."""

from __future__ import annotations

import time
from typing import ClassVar

from textual import work
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Label

from thrum_engine.durations import human_age, parse_iso
from thrum_tui.screens.base import Page

COLUMNS = ("id", "from", "to", "how", "next", "in", "fired", "message")


def _how(s: dict) -> str:
    how = f"cron {s['cron']}" if s["kind"] == "cron" else "once"
    if s["ask"]:
        how += " · ask"
    if s["until_reply"]:
        how += " · until reply"
    return how


def schedule_row(s: dict, now: float | None = None) -> tuple[str, ...]:
    now = time.time() if now is None else now
    if s["status"] == "pending" and s["next_at"]:
        left = parse_iso(s["next_at"]) - now
        when = s["next_at"][:19].replace("T", " ")
        rel = human_age(left) if left >= 0 else "due"
    else:
        when, rel = s["status"], ""
    return (
        s["schedule_id"][-8:],
        "@" + s["author"],
        ", ".join(s["to"]),
        _how(s),
        when,
        rel,
        str(s["fires"]),
        " ".join((s["body"]["content"] or "").split())[:60],
    )


class SchedulesScreen(Page):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("x", "cancel_schedule", "cancel selected"),
        Binding("a", "toggle_all", "ended too"),
        Binding("u", "reload", "reload"),
    ]
    DEFAULT_CSS = """
    SchedulesScreen #schedules-title { padding: 0 1; background: $panel; }
    SchedulesScreen DataTable { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.schedules: list[dict] = []
        self.show_all = False

    def compose(self):
        yield Label("SCHEDULES", id="schedules-title")
        yield DataTable(id="schedules", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for c in COLUMNS:
            table.add_column(c, key=c)
        table.focus()
        self.reload()

    def refresh_from_engine(self) -> None:
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self.reload()

    @work(group="schedules", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        r = await self.call("schedule.list", {"all": self.show_all, "everyone": True})
        if r is None:
            return
        self.schedules = r["schedules"]
        pending = sum(s["status"] == "pending" for s in self.schedules)
        self.query_one("#schedules-title", Label).update(
            f"SCHEDULES · {pending} pending" + (" · with ended ones" if self.show_all else "")
            + " · x cancels · a ended too"
        )  # fmt: skip
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        now = time.time()
        for s in self.schedules:
            table.add_row(*schedule_row(s, now), key=s["schedule_id"])
        if self.schedules:
            table.move_cursor(row=min(max(row, 0), len(self.schedules) - 1))

    def action_cancel_schedule(self) -> None:
        table = self.query_one(DataTable)
        if not self.schedules or not 0 <= table.cursor_row < len(self.schedules):
            return
        s = self.schedules[table.cursor_row]
        if s["status"] == "pending":
            self.cancel(s["schedule_id"])

    @work(group="schedules-cancel", exit_on_error=False)
    async def cancel(self, schedule_id: str) -> None:
        if await self.call("schedule.cancel", {"schedule_id": schedule_id}) is not None:
            self.app.notify(f"cancelled {schedule_id}", timeout=2)
            self.reload()

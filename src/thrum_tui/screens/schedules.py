"""`D`: every pending schedule (issue 16), soonest first: who sends what to whom, how (once or its
cron), the next fire time and how far off it is, how often it fired. `x` cancels the highlighted
one, after asking (the operator may cancel anyone's); `a` shows ended ones too."""

from __future__ import annotations

import time
from typing import ClassVar

from textual import work
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from thrum_engine.durations import human_age, parse_iso
from thrum_tui.screens.base import TablePage
from thrum_tui.snippet import one_line

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
        one_line(s["body"]["content"] or "", 60),
    )


class SchedulesScreen(TablePage):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("x", "cancel_schedule", "cancel selected"),
        Binding("a", "toggle_all", "ended too"),
        Binding("u", "reload", "reload"),
    ]
    HEADING = "SCHEDULES"
    COLUMNS = COLUMNS

    def __init__(self) -> None:
        super().__init__()
        self.schedules: list[dict] = []
        self.show_all = False

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
        now = time.time()
        self.fill(
            f"SCHEDULES · {pending} pending" + (" · with ended ones" if self.show_all else "")
            + " · x cancels · a ended too",
            [schedule_row(s, now) for s in self.schedules],
            [s["schedule_id"] for s in self.schedules],
        )  # fmt: skip

    def action_cancel_schedule(self) -> None:
        table = self.query_one(DataTable)
        if not self.schedules or not 0 <= table.cursor_row < len(self.schedules):
            return
        s = self.schedules[table.cursor_row]
        if s["status"] != "pending":
            self.app.notify(f"{s['schedule_id']} is {s['status']} already", severity="warning")
            return
        from thrum_tui.screens.confirm import Confirm

        def answered(yes: bool | None) -> None:
            if yes:
                self.cancel(s["schedule_id"])

        # A cancel cannot be taken back, and the schedule may be someone else's (an agent's ask):
        # it asks first, as R and K do, naming what goes (walk A, bug 5).
        self.app.push_screen(
            Confirm(
                f"Cancel schedule {s['schedule_id'][-8:]}?",
                f"@{s['author']} → {', '.join(s['to'])} · {_how(s)} · next {schedule_row(s)[4]}\n"
                f"{one_line(s['body']['content'] or '', 70)}\n\nIt will never fire; this cannot be undone.",
                "Cancel schedule",
            ),
            answered,
        )

    @work(group="schedules-cancel", exit_on_error=False)
    async def cancel(self, schedule_id: str) -> None:
        if await self.call("schedule.cancel", {"schedule_id": schedule_id}) is not None:
            self.app.notify(f"cancelled {schedule_id}", timeout=2)
            self.reload()

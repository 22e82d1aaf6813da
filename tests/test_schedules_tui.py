"""The console's side of issue 16: the schedules page (`D`) lists pending schedules with their next
fire time and cancels one; the team table shows each agent's task chip."""

from __future__ import annotations

from textual.widgets import DataTable

from thrum_tui.screens.confirm import Confirm
from thrum_tui.screens.schedules import SchedulesScreen
from thrum_tui.widgets.team_table import TeamTable
from tui_helpers import OPERATOR, cli, console, until


async def test_the_schedules_page_shows_next_fire_times_and_cancels(team):
    repo, alice, bob = team
    repo.run("daemon", "stop")
    async with console(repo) as (app, pilot):
        once = (await cli(alice, "schedule", "create", "--to", "@bob", "--in", "2h", "check the deploy"))[
            "schedule"
        ]
        cron = (await cli(bob, "schedule", "create", "--to", "@alice", "--cron", "0 9 * * *", "standup"))[
            "schedule"
        ]
        await cli(bob, "session", "set-task", "bd-42")
        table = app.query_one(TeamTable)
        await until(
            pilot, lambda: "bob" in table.names and "[bd-42]" in table.row_text("bob"), "bob's task chip"
        )
        await pilot.press("D")
        screen = await until(
            pilot,
            lambda: isinstance(app.screen, SchedulesScreen) and len(app.screen.schedules) == 2 and app.screen,
            "the schedules",
        )
        assert {s["schedule_id"] for s in screen.schedules} == {once["schedule_id"], cron["schedule_id"]}
        times = [s["next_at"] for s in screen.schedules]
        assert times == sorted(times)  # soonest first
        shown = {s["schedule_id"]: s for s in screen.schedules}
        assert shown[once["schedule_id"]]["next_at"] == once["next_at"]
        grid = screen.query_one("DataTable")
        cells = [str(c) for c in grid.get_row(once["schedule_id"])]
        assert cells[1] == "@alice" and cells[2] == "@bob" and cells[3] == "once"
        assert cells[4] == once["next_at"][:19].replace("T", " ") and cells[5] in ("1h", "2h")
        assert "cron 0 9 * * *" in [str(c) for c in grid.get_row(cron["schedule_id"])]
        grid.move_cursor(row=[s["schedule_id"] for s in screen.schedules].index(once["schedule_id"]))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "x asks first")
        await pilot.press("y")
        await until(
            pilot, lambda: [s["schedule_id"] for s in screen.schedules] == [cron["schedule_id"]], "the cancel"
        )
        assert (await cli(alice, "schedule", "show", once["schedule_id"]))["schedule"][
            "status"
        ] == "cancelled"


async def statuses(app, ids: list[str]) -> list[str]:
    every = (await app.engine.call("schedule.list", {"all": True, "everyone": True}))["schedules"]
    status = {s["schedule_id"]: s["status"] for s in every}
    return [status[i] for i in ids]


async def test_j_k_move_on_the_schedules_page_and_x_cancels_the_highlighted_one_after_asking(team):
    """Walk A, bug 5: `j` did not move on this page, so `j j j x` cancelled row 1 (an agent's pending
    ask) instead of row 4, at once and for good."""
    repo, alice, bob = team
    repo.run("daemon", "stop")
    async with console(repo) as (app, pilot):
        ask = (
            await cli(alice, "schedule", "create", "--to", f"@{OPERATOR}", "--in", "1h", "--ask", "may I?")
        )["schedule"]
        for when in ("2h", "3h", "4h"):
            await cli(bob, "schedule", "create", "--to", "@alice", "--in", when, f"report in {when}")
        await pilot.press("D")
        screen = await until(
            pilot,
            lambda: isinstance(app.screen, SchedulesScreen) and len(app.screen.schedules) == 4 and app.screen,
            "the four schedules",
        )
        ids = [s["schedule_id"] for s in screen.schedules]
        assert ids[0] == ask["schedule_id"]  # soonest first
        grid = screen.query_one(DataTable)
        await pilot.press("j", "j", "j")
        assert grid.cursor_row == 3
        await pilot.press("k")
        assert grid.cursor_row == 2
        await pilot.press("j")
        await pilot.press("x")
        dialog = await until(pilot, lambda: isinstance(app.screen, Confirm) and app.screen, "x asks first")
        assert ids[3][-8:] in dialog.title_text and "report in 4h" in dialog.detail
        await pilot.press("n")  # no: nothing is cancelled
        await until(pilot, lambda: app.screen is screen, "back on the page")
        assert await statuses(app, ids) == ["pending"] * 4
        await pilot.press("x", "y")
        await until(pilot, lambda: ids[3] not in [s["schedule_id"] for s in screen.schedules], "the cancel")
        assert await statuses(app, ids) == ["pending", "pending", "pending", "cancelled"]

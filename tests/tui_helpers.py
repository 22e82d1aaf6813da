"""Driving the console in-process: the app in a Pilot, hosting (or attached to) the engine the
repo's agents talk to over the real CLI."""

from __future__ import annotations

import asyncio
import contextlib
import time

from thrum_engine.layout import Layout
from thrum_engine.settings import load_settings
from thrum_tui.app import ThrumApp
from thrum_tui.engine_handle import open_engine
from thrum_tui.widgets.compose_bar import ComposeBar
from thrum_tui.widgets.team_table import TeamTable

OPERATOR = "ada_lovelace"
DEADLINE = 20.0


@contextlib.asynccontextmanager
async def console(repo, *, size=(160, 45), settings=None):
    layout = Layout.discover(str(repo.path))
    settings = settings or load_settings(layout.config_file)
    async with open_engine(layout, settings, OPERATOR) as engine:
        app = ThrumApp(engine, settings=settings)
        record_notifications(app)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: OPERATOR in app.query_one(TeamTable).names)
            yield app, pilot


async def until(pilot, condition, what: str = "condition", timeout: float = DEADLINE, *, last=None):
    """`last`: what to show on a timeout (the state the condition was waiting on)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}" + (
            f"; last: {last()!r}" if last else ""
        )
        await pilot.pause(0.05)


async def cli(agent, *args):
    """Agents' CLI calls run in a thread: the console's engine answers them meanwhile."""
    return await asyncio.to_thread(agent.json, *args)


async def type_and_send(pilot, text: str) -> None:
    await pilot.press("i")
    bar = pilot.app.query_one(ComposeBar)
    bar.value = ""
    await pilot.press(*text)
    await pilot.press("enter")


async def select_agent(pilot, name: str) -> None:
    table = pilot.app.query_one(TeamTable)
    await until(pilot, lambda: name in table.names, f"{name} in the team")
    table.focus()
    table.move_cursor(row=table.names.index(name))
    await until(pilot, lambda: pilot.app.selected == name, f"{name} selected")


def record_notifications(app) -> None:
    """Every toast the app shows, as (title, message), in `app.shown_notifications` (through the
    public `notify`, not Textual's private store)."""
    app.shown_notifications = []
    show = app.notify

    def notify(message, *args, **kwargs):
        app.shown_notifications.append((str(kwargs.get("title") or ""), str(message)))
        return show(message, *args, **kwargs)

    app.notify = notify


def notified(app, fragment: str) -> bool:
    return any(fragment in message or fragment in title for title, message in app.shown_notifications)

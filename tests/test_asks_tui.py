"""The console's asks and held messages (issue 16): `H` lists open asks with age and the messages the
loop guard holds, `r` on a held one releases it; `d` in a thread shows the delivery ledger."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Static

from thrum_engine.layout import Layout
from thrum_engine.settings import load_settings
from thrum_tui.screens.asks import AsksScreen, LedgerScreen
from thrum_tui.screens.thread import ThreadScreen
from thrum_tui.widgets.header_line import HeaderLine
from tui_helpers import OPERATOR, cli, console, notified, until


@pytest.fixture
def hosted(team):
    """The team with the daemon stopped, so the console hosts the engine."""
    team[0].run("daemon", "stop")
    return team


async def test_held_messages_are_released_from_the_console_and_delivered(hosted):
    repo, alice, bob = hosted
    settings = load_settings(Layout.discover(str(repo.path)).config_file)
    settings.guards.pair_per_minute = 2
    async with console(repo, settings=settings) as (app, pilot):
        ask = await cli(alice, "send", "which port?", "--to", f"@{OPERATOR}", "--ask")
        await cli(alice, "send", "ping 1", "--to", "@bob")
        await cli(bob, "send", "pong 1", "--to", "@alice")
        held = await cli(alice, "send", "ping 2", "--to", "@bob")
        assert "loop guard" in held["held"]
        header = app.main_screen.query_one(HeaderLine)
        await until(
            pilot, lambda: header.held == 1 and header.asks.startswith("asks: 1"), "the header's counts"
        )
        await pilot.press("H")
        screen = await until(pilot, lambda: isinstance(app.screen, AsksScreen) and app.screen)
        await until(pilot, lambda: len(screen.held) == 1 and len(screen.asks) == 1, "the lists")
        assert screen.asks[0]["message_id"] == ask["message_id"]
        asks_table = screen.query_one("#asks", DataTable)
        assert asks_table.row_count == 1 and "@alice → @ada_lovelace" in str(asks_table.get_row_at(0))
        assert screen.held[0]["message_id"] == held["message_id"]
        await pilot.press("r")
        await until(pilot, lambda: screen.held == [], "released")
        inbox = await cli(bob, "inbox")
        assert "ping 2" in [m["body"]["content"] for m in inbox["messages"]]
        await until(pilot, lambda: header.held == 0, "the header's held count cleared")
        await pilot.press("escape")
        assert not isinstance(app.screen, AsksScreen)


async def test_the_header_s_asks_follow_the_ask_and_its_reply_as_needs_you_does(hosted, monkeypatch):
    """Walk bug 11: "needs you" rose 0.27 s after an ask, `asks: 1` 4.1 s later: the asks were
    read on the side panels' tick only. With that tick out of the way, the mail alone moves it."""
    import thrum_tui.app

    monkeypatch.setattr(thrum_tui.app, "TICK_SECONDS", 600.0)
    repo, alice, _bob = hosted
    async with console(repo) as (app, pilot):
        header = app.main_screen.query_one(HeaderLine)
        await until(pilot, lambda: app.refresher.idle and header.asks == "", "started, no asks")
        ask = await cli(alice, "send", "which port?", "--to", f"@{OPERATOR}", "--ask")
        await until(pilot, lambda: header.asks.startswith("asks: 1"), "the ask counted", timeout=5)
        assert header.needs_you >= 1
        await app.engine.call("message.reply", {"message_id": ask["message_id"], "body": "8080"})
        await until(pilot, lambda: header.asks == "", "the answered ask cleared", timeout=5)


async def test_an_ask_is_answered_or_acked_from_the_asks_dialog(hosted):
    """Walk bug 15: `H` listed the ask, but Enter did nothing and nothing in the console could ack
    one: an ask that needed no reply could only be closed from the CLI."""
    from thrum_tui.widgets.compose_bar import ComposeBar

    repo, alice, _bob = hosted
    async with console(repo) as (app, pilot):
        first = await cli(alice, "send", "saw the CI mail?", "--to", f"@{OPERATOR}", "--ask")
        await pilot.press("H")
        screen = await until(pilot, lambda: isinstance(app.screen, AsksScreen) and app.screen)
        await until(pilot, lambda: len(screen.asks) == 1, "the ask listed")
        await pilot.press("o")
        await until(pilot, lambda: screen.asks == [], "acked: no longer open")
        ledger = (await app.engine.call("message.get", {"message_id": first["message_id"]}))["message"]
        assert [d.get("acked_at") is not None for d in ledger["deliveries"]] == [True], ledger["deliveries"]
        second = await cli(alice, "send", "which port?", "--to", f"@{OPERATOR}", "--ask")
        await until(pilot, lambda: len(screen.asks) == 1, "the second ask listed")
        screen.query_one("#asks", DataTable).focus()
        await pilot.press("enter")
        bar = app.main_screen.query_one(ComposeBar)
        await until(
            pilot, lambda: app.screen is app.main_screen and app.focused is bar, "composing the answer"
        )
        assert bar.reply_to["message_id"] == second["message_id"]
        await pilot.press(*"8080", "enter")
        await until(pilot, lambda: bar.reply_to is None, "the answer sent")
        inbox = (await cli(alice, "inbox"))["messages"]
        assert [(m["body"]["content"], m["reply_to"]) for m in inbox] == [("8080", second["message_id"])]
        assert (await app.engine.call("ask.list", {"everyone": True}))["asks"] == []
        # An ask between two agents is listed too; only its recipient's reply closes it.
        await cli(alice, "send", "merge order?", "--to", "@bob", "--ask")
        await pilot.press("H")
        screen = await until(pilot, lambda: isinstance(app.screen, AsksScreen) and app.screen)
        await until(pilot, lambda: len(screen.asks) == 1, "bob's ask listed")
        await pilot.press("a")
        await until(pilot, lambda: notified(app, "that ask waits on @bob, not you"), "not yours to answer")
        assert app.screen is screen


async def test_d_in_a_thread_shows_the_delivery_ledger(hosted):
    repo, alice, bob = hosted
    async with console(repo) as (app, pilot):
        sent = await cli(alice, "send", "status?", "--to", "@bob", "--ask")
        await cli(bob, "inbox")
        await cli(bob, "ack", sent["message_id"], "--note", "fine")
        thread = await cli(bob, "reply", sent["message_id"], "all good")
        app.push_screen(ThreadScreen(thread["thread_id"], title="thread", focus_id=sent["message_id"]))
        screen = await until(
            pilot, lambda: isinstance(app.screen, ThreadScreen) and app.screen.views and app.screen
        )
        await until(
            pilot,
            lambda: screen.focused_message and screen.focused_message["message_id"] == sent["message_id"],
        )
        await pilot.press("d")
        ledger = await until(pilot, lambda: isinstance(app.screen, LedgerScreen) and app.screen)
        text = ledger.query_one("#ledger", Static)
        await until(pilot, lambda: "acked" in str(text.render()), "the ledger")
        shown = str(text.render())
        assert "@bob: replied (ask)" in shown and "ack note: fine" in shown
        for step in ("stored", "seen", "read", "acked", "replied"):
            assert step in shown


def test_delivery_marks_say_not_yet_delivered_and_open_ask():
    from thrum_tui.widgets.conversation import delivery_mark

    stored = {"state": "stored", "delivered": False, "via": None}
    assert delivery_mark({"deliveries": [stored]}) == "⚠ not yet delivered"
    assert delivery_mark({"deliveries": [{**stored, "ask": True}]}) == "⚠ not yet delivered?"
    nudged = {"state": "notified", "delivered": True, "via": "nudge", "ask": True}
    assert delivery_mark({"deliveries": [nudged]}) == "✓ nudge?"
    assert delivery_mark({"deliveries": [{**nudged, "state": "acked"}]}) == "✓✓"
    assert delivery_mark({"deliveries": [{**nudged, "state": "replied"}]}) == "↩"

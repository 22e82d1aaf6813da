"""Every console binding and flow against real parts: the engine the console hosts, agents on the
real CLI in real worktrees, tmux sessions on the repo's private server, real monitors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from pathlib import Path

import pytest
from textual import events
from textual.content import Content
from textual.widgets import Static

from conftest import send_many
from thrum_tui.screens.confirm import Confirm
from thrum_tui.screens.feed import FeedScreen, parse_filter
from thrum_tui.screens.help import HelpScreen
from thrum_tui.screens.monitors import MonitorForm, MonitorsScreen, regex_verdict
from thrum_tui.screens.new_agent import NewAgentScreen
from thrum_tui.screens.queue import QueueScreen
from thrum_tui.screens.teardown import TeardownScreen
from thrum_tui.screens.thread import ThreadScreen
from thrum_tui.widgets.compose_bar import ComposeBar
from thrum_tui.widgets.conversation import Conversation, delivery_mark, fold_threads
from thrum_tui.widgets.header_line import HeaderLine
from thrum_tui.widgets.pane_preview import PanePreview
from thrum_tui.widgets.team_table import TeamTable
from tui_helpers import OPERATOR, cli, console, notified, select_agent, until

pytestmark = pytest.mark.timeout(180)


def tmux(repo, *args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", repo.env["THRUM_TMUX__SOCKET_NAME"], *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout


def give_session(repo, agent) -> str:
    """A tmux session (plain shell) for an already registered agent, named after it."""
    repo.ok(
        "tmux",
        "create",
        agent.name,
        "--cwd",
        str(agent.cwd),
        "--name",
        agent.name,
        "--role",
        agent.role,
        "--runtime",
        "shell",
        cwd=agent.cwd,
    )
    return agent.name


@contextlib.asynccontextmanager
async def console_on_session(repo, agent):
    """The console with `agent` (given a tmux session) highlighted and its session known."""
    give_session(repo, agent)
    async with console(repo) as (app, pilot):
        await select_agent(pilot, agent.name)
        await until(pilot, lambda: app.selected_session() == agent.name, f"{agent.name}'s session known")
        yield app, pilot


@pytest.fixture
def hosted(team):
    """The team with the daemon stopped, so the console hosts the engine."""
    team[0].run("daemon", "stop")
    return team


# -- pure pieces --


def test_delivery_marks_and_thread_folding():
    assert delivery_mark({"deliveries": [{"state": "stored"}, {"state": "read"}]}) == "✓"
    assert delivery_mark({"deliveries": [{"state": "read"}, {"state": "read"}]}) == "✓✓"
    assert delivery_mark({"deliveries": [{"state": "read"}, {"state": "replied"}]}) == "↩"
    assert (
        delivery_mark({"deliveries": [{"state": "seen"}, {"state": "read"}]}) == "◎"
    )  # a peek is not a read
    assert delivery_mark({"deliveries": [{"state": "notified"}]}) == "✓"
    msgs = [
        {"message_id": "1", "thread_id": "t"},
        {"message_id": "2", "thread_id": None},
        {"message_id": "3", "thread_id": "t"},
        {"message_id": "4", "thread_id": "t"},
    ]
    assert [(m["message_id"], n) for m, n in fold_threads(msgs)] == [("1", 2), ("2", 0)]


def test_feed_filter_words():
    assert parse_filter("@bob role:reviewer scope:module:auth monitors flaky test") == {
        "agent": "bob",
        "role": "reviewer",
        "scope": "module:auth",
        "monitors": True,
        "text": "flaky test",
    }
    assert parse_filter("") == {}


def test_regex_live_verdict():
    assert regex_verdict("ALERT|FAIL", "xx FAIL yy") == (True, "✓ matches the sample")
    assert regex_verdict("ALERT", "ok")[1].startswith("○")
    ok, text = regex_verdict("(unclosed", "")
    assert not ok and text.startswith("✗ invalid regex")
    ok, text = regex_verdict("^(a|a)+$", "a" * 34 + "!")  # bounded: the console's loop never hangs on it
    assert not ok and text.startswith("✗ too slow")


# -- talking --


async def test_reply_to_the_highlighted_message_threads_it(hosted):
    repo, _alice, bob = hosted
    async with console(repo) as (app, pilot):
        await select_agent(pilot, "bob")
        sent = await cli(bob, "send", "need a decision on the schema", "--to", f"@{OPERATOR}")
        conversation = app.query_one(Conversation)
        await until(pilot, lambda: "need a decision" in conversation.plain_text, "bob's message")
        await pilot.press("enter")  # open bob: focus the conversation, his mail counts as read
        assert app.focused is conversation
        await pilot.press("r")
        bar = app.query_one(ComposeBar)
        assert app.focused is bar and bar.reply_to["message_id"] == sent["message_id"]
        await pilot.press(*"go with v2")
        await pilot.press("enter")
        await until(pilot, lambda: bar.value == "" and bar.reply_to is None, "reply sent")
        inbox = (await cli(bob, "inbox"))["messages"]
        assert [(m["body"]["content"], m["reply_to"]) for m in inbox] == [("go with v2", sent["message_id"])]
        # Bob sees his message read and replied to.
        mine = (await cli(bob, "sent"))["messages"]
        assert mine[0]["deliveries"][0]["state"] == "replied"
        # The conversation folds the reply under its root.
        await until(pilot, lambda: "[+1 in thread]" in conversation.plain_text, "the thread folded")


async def test_the_compose_bar_names_who_a_line_without_a_recipient_goes_to(hosted):
    """Walk bug 8: a line without `@name` went silently to the highlighted agent (a stray "1"
    meant as "focus the team" reached alice). The bar says whom, before and while typing."""
    repo, _alice, bob = hosted
    async with console(repo) as (app, pilot):
        bar = app.query_one(ComposeBar)
        await select_agent(pilot, "bob")
        assert "to @bob" in str(bar.placeholder)
        await pilot.press("4", *"status please")
        assert app.focused is bar and bar.border_title == "to @bob"
        bar.value = "@alice hi"
        await pilot.pause()
        assert not bar.border_title  # a line that names its recipient says nothing more
        bar.value = "status please"
        await pilot.press("enter")
        await until(pilot, lambda: bar.value == "", "sent")
        assert [m["body"]["content"] for m in (await cli(bob, "inbox"))["messages"]] == ["status please"]
        await select_agent(pilot, OPERATOR)
        assert "to @" not in str(bar.placeholder)


async def test_the_header_shows_the_repo_and_its_branch(hosted):
    """Walk A, bug 11: CONSOLE.md's header is `myrepo@main`; it showed the repo alone."""
    repo, _alice, _bob = hosted
    branch = repo.git("symbolic-ref", "--short", "HEAD").strip()
    async with console(repo) as (app, pilot):
        header = app.query_one(HeaderLine)
        await until(
            pilot, lambda: header.branch == branch, f"the branch {branch}", last=lambda: header.branch
        )
        assert f"{repo.path.name}@{branch}" in str(header.render())
        repo.git("checkout", "-q", "-b", "release/1.2")  # checked out while the console runs
        app._worktrees_at = 0.0
        app.request_refresh()
        await until(pilot, lambda: f"{repo.path.name}@release/1.2" in str(header.render()), "the new branch")


async def test_enter_opens_an_agent_and_marks_its_mail_read(hosted):
    repo, alice, _bob = hosted
    async with console(repo) as (app, pilot):
        await cli(alice, "send", "one", "--to", f"@{OPERATOR}")
        await cli(alice, "send", "two", "--to", f"@{OPERATOR}")
        header = app.query_one(HeaderLine)
        await until(pilot, lambda: header.needs_you == 2, "needs you: 2")
        table = app.query_one(TeamTable)
        assert table.names[1] == "alice"  # unread mail for you ranks her first after you
        await select_agent(pilot, "alice")
        await pilot.press("enter")
        await until(pilot, lambda: header.needs_you == 0, "needs you back to 0")
        states = [d["state"] for m in (await cli(alice, "sent"))["messages"] for d in m["deliveries"]]
        assert states == ["read", "read"]


async def test_mail_to_the_operator_raises_a_toast_and_the_bell(hosted):
    repo, alice, _bob = hosted
    async with console(repo) as (app, pilot):
        rings = []
        app.bell = lambda: rings.append(1)  # the terminal bell itself is not observable in a Pilot
        await cli(alice, "send", "the build is green", "--to", f"@{OPERATOR}")
        await until(pilot, lambda: notified(app, "the build is green"), "a toast")
        assert notified(app, "@alice → you")
        assert rings
        # Traffic between agents neither toasts nor rings.
        rings.clear()
        await cli(alice, "send", "fyi only", "--to", "@bob")
        await until(pilot, lambda: not notified(app, "fyi") and not app.refresher.pending)
        assert not notified(app, "fyi only") and not rings


async def test_what_an_agent_writes_reads_as_written_in_toasts_and_titles(hosted):
    """Brackets are text, not markup, wherever the console shows words it did not write: "[/]" in a
    message raised in its toast's render (and in the reply bar's title), "[wip]" and "[rejected]"
    vanished. The toast, the conversation and the reply title all show the body as sent."""
    repo, alice, _bob = hosted
    body = "a [/] b [wip] c ! [rejected] main [bold]d"
    async with console(repo) as (app, pilot):
        await select_agent(pilot, "alice")
        await cli(alice, "send", body, "--to", f"@{OPERATOR}")
        await until(pilot, lambda: notified(app, body), "a toast")
        # a toast renders its message as markup when asked to (Textual's Toast.render)
        assert [n.markup for n in app._notifications if body in n.message] == [False]
        conversation = app.query_one(Conversation)
        await until(pilot, lambda: body in conversation.plain_text, "alice's message")
        await pilot.press("enter", "r")
        bar = app.query_one(ComposeBar)
        await until(pilot, lambda: bar.reply_to is not None, "reply mode")
        assert bar.border_title is not None and body[:30] in Content.from_markup(bar.border_title).plain
        await pilot.pause()


async def test_a_huge_message_is_one_short_line_in_the_lists_and_cut_in_its_thread(hosted, tmp_path):
    """Walk (session 18): a 700 KB body (9,334 lines) was one line of every word in the
    conversation and the feed, which wrapped it into thousands: the feed took 3.7 s to draw and
    Esc 2 s to leave it. Lists show its head on one line; the thread view draws 64 KB of it."""
    from textual.widgets import OptionList, Static

    from thrum_tui.snippet import LINE_CHARS, VIEW_CHARS

    repo, alice, _bob = hosted
    big = tmp_path / "big.txt"
    big.write_text("".join(f"line {i:05d} " + "x" * 64 + "\n" for i in range(9_334)))
    async with console(repo) as (app, pilot):
        await select_agent(pilot, "alice")
        await cli(alice, "send", "--body-file", str(big), "--to", f"@{OPERATOR}")
        conversation = app.query_one(Conversation)
        await until(pilot, lambda: "line 00000" in conversation.plain_text, "alice's message")
        line = next(x for x in conversation.plain_text.splitlines() if "line 00000" in x)
        assert len(line) < LINE_CHARS + 80 and " …" in line
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FeedScreen), "the feed")
        feed = app.screen.query_one(OptionList)
        await until(pilot, lambda: feed.option_count > 0, "the feed's lines")
        prompts = [str(feed.get_option_at_index(i).prompt) for i in range(feed.option_count)]
        assert all(len(p) < LINE_CHARS + 80 for p in prompts)
        feed.focus()
        await pilot.press("enter")  # the highlighted message's thread
        await until(pilot, lambda: isinstance(app.screen, ThreadScreen), "the thread")
        bodies = [str(w.render()) for w in app.screen.query(Static) if w.has_class("body")]
        assert bodies and all(len(b) < VIEW_CHARS + 200 for b in bodies)
        assert "thrum message get msg_" in bodies[0]


async def test_a_burst_of_engine_changes_keeps_every_piece_of_mail(hosted):
    """Textual drops the older of two messages when `older.can_replace(newer)`: the merge must go
    into the newer one, or a burst toasts only its last piece of mail (code review smell 1)."""
    from thrum_tui.engine_handle import Change
    from thrum_tui.messages import EngineChanged

    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        seen: list[str] = []
        app.announce = lambda mail: seen.extend(c.author for c in mail)
        authors = [f"agent{i}" for i in range(5)]
        for i, author in enumerate(authors):  # queued together, before the pump runs: one burst
            app.post_message(
                EngineChanged(
                    [Change("message.create", author, (), str(i))],
                    parts=frozenset({"team"} if i == 0 else {"mail"}),
                )
            )
        await until(pilot, lambda: len(seen) >= len(authors), "every piece of mail announced", timeout=5)
        assert seen == authors


async def test_an_engine_change_while_the_console_closes_is_dropped(hosted):
    """Textual empties the screen stack on exit and still dispatches what was queued: a change
    that arrived then raised ScreenStackError out of the handler (a suite run caught it)."""
    from thrum_engine.ids import new_id
    from thrum_tui.engine_handle import Change
    from thrum_tui.messages import EngineChanged

    repo, _alice, _bob = hosted
    async with console(repo) as (app, _pilot):
        pass
    assert not app.screen_stack and app.main_screen.is_mounted  # the state the handler met
    app.on_engine_changed(
        EngineChanged([Change("message.create", "agent0", (), new_id("msg"))], parts=frozenset({"mail"}))
    )


async def test_per_agent_unread_counts_are_exact_beyond_one_page(hosted):
    """Walk bug 13: the team's "new" count came from one 100-message inbox page."""
    repo, _alice, bob = hosted
    async with console(repo) as (app, pilot):
        sent = await asyncio.to_thread(send_many, bob, [f"n{i}" for i in range(1, 131)], f"@{OPERATOR}")
        assert len(sent) == 130
        table = app.query_one(TeamTable)
        await until(pilot, lambda: (table.member("bob") or {}).get("unread_from") == 130, "bob's 130 counted")


async def test_j_k_move_and_number_keys_focus_the_panels(hosted):
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        table = app.query_one(TeamTable)
        await until(pilot, lambda: len(table.names) == 3, "the whole team")
        await select_agent(pilot, OPERATOR)
        await until(pilot, lambda: not app.refresher.running, "the selection's refresh done")
        await pilot.press("j")
        await until(pilot, lambda: app.selected == table.names[1], "j moved down")
        await until(pilot, lambda: not app.refresher.running, "the selection's refresh done")
        await pilot.press("k")
        await until(pilot, lambda: app.selected == OPERATOR, "k moved up")
        for key, panel in (("2", Conversation), ("3", PanePreview), ("1", TeamTable), ("4", ComposeBar)):
            await pilot.press(key)
            assert isinstance(app.focused, panel), key


async def test_the_left_column_collapses_at_the_size_the_terminal_has_now(hosted):
    """Walk A, bug 7: each resize applied the layout of the size before it (100 columns kept the
    worktrees and monitors; back at 200 they stayed hidden)."""
    repo, _alice, _bob = hosted
    async with console(repo, size=(160, 45)) as (app, pilot):
        trees = app.query_one("#worktrees")
        for width, narrow, tiny in ((100, True, False), (80, True, True), (200, False, False)):
            await pilot.resize_terminal(width, 45)
            await until(pilot, lambda w=width: app.size.width == w, f"{width} columns")
            assert (app.has_class("-narrow"), app.has_class("-tiny")) == (narrow, tiny), width
            await until(pilot, lambda n=narrow: trees.display is not n, f"worktrees shown: {not narrow}")


async def test_after_a_send_focus_goes_back_where_it_was_before_composing(hosted):
    """Walk A, bug 10: after a send the focus stayed in the compose bar, so `2` (focus the
    conversation) and enter sent a message "2" to the agent. The bar, the big compose box
    (ctrl+s), a reply and the palette's "Send a message" all give the focus back."""
    from thrum_tui.screens.compose import ComposeDialog

    repo, _alice, bob = hosted
    async with console(repo) as (app, pilot):
        await select_agent(pilot, "bob")
        bar = app.query_one(ComposeBar)
        conversation = app.query_one(Conversation)
        await pilot.press("2", "i", *"one", "enter")  # from the conversation, with the bar
        await until(pilot, lambda: bar.value == "" and isinstance(app.focused, Conversation), "back")
        await pilot.press("1", "i", *"two", "ctrl+e")  # from the team, with the big box
        await until(pilot, lambda: isinstance(app.screen, ComposeDialog), "the big box")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: bar.value == "" and isinstance(app.focused, TeamTable), "back to the team")
        await pilot.press("ctrl+p", *"Send a message")  # from the team, through the palette
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: app.focused is bar, "composing from the palette")
        await pilot.press(*"three", "enter")
        await until(pilot, lambda: bar.value == "" and isinstance(app.focused, TeamTable), "back again")
        sent = await cli(bob, "send", "a question", "--to", f"@{OPERATOR}")
        await until(pilot, lambda: "a question" in conversation.plain_text, "bob's question")
        conversation.focus()
        conversation.highlighted = next(
            i for i, m in enumerate(conversation.messages) if m["message_id"] == sent["message_id"]
        )
        await pilot.press("r", *"four", "enter")  # a reply, from the conversation
        await until(pilot, lambda: bar.reply_to is None and isinstance(app.focused, Conversation), "back")
        await pilot.press("1")  # a panel key again, not text in the bar
        assert isinstance(app.focused, TeamTable) and bar.value == ""
        inbox = (await cli(bob, "inbox"))["messages"]
        assert sorted(m["body"]["content"] for m in inbox) == ["four", "one", "three", "two"]


async def test_a_multi_line_paste_is_sent_whole_from_the_big_compose_box(hosted):
    """Walk bug 4: a paste of several lines was cut to its first line, silently."""
    from textual import events

    from thrum_tui.screens.compose import ComposeDialog

    repo, _alice, bob = hosted
    async with console(repo) as (app, pilot):
        await pilot.press("i")
        bar = app.query_one(ComposeBar)
        bar.value = "@bob "
        bar.cursor_position = len(bar.value)
        bar.post_message(events.Paste("the failing test:\n  assert 1 == 2\nE   AssertionError"))
        dialog = await until(
            pilot, lambda: isinstance(app.screen, ComposeDialog) and app.screen, "the big box"
        )
        assert (
            dialog.query_one("TextArea").text == "@bob the failing test:\n  assert 1 == 2\nE   AssertionError"
        )
        await pilot.press("escape")  # the draft is kept, and comes back whole
        await until(pilot, lambda: app.screen is app.main_screen and bar.value.startswith("@bob the failing"))
        await pilot.press("ctrl+e")
        dialog = await until(
            pilot, lambda: isinstance(app.screen, ComposeDialog) and app.screen, "the box again"
        )
        await pilot.press("ctrl+s")
        inbox = await until(pilot, lambda: bob.json("inbox", "--unread")["messages"], "bob's mail")
        assert inbox[0]["body"]["content"] == "the failing test:\n  assert 1 == 2\nE   AssertionError"
        await until(pilot, lambda: bar.value == "" and bar.draft is None, "the bar cleared")


async def test_at_completion_in_the_compose_bar(hosted):
    repo, _alice, bob = hosted
    async with console(repo) as (app, pilot):
        await pilot.press("i")
        bar = app.query_one(ComposeBar)
        bar.value = ""
        await pilot.press("@", "b")
        await until(pilot, lambda: bar.suggester_.suggest(bar.value) == "@bob", "suggestion @bob")
        await pilot.press("tab")
        assert bar.value == "@bob "
        await pilot.press("@", "r", "e")
        await until(pilot, lambda: bar.suggester_.suggest(bar.value) == "@bob @reviewer", "role suggestion")
        await pilot.press("tab", *"completed", "enter")
        await until(pilot, lambda: bar.value == "", "sent")
        assert [m["body"]["content"] for m in (await cli(bob, "inbox"))["messages"]] == ["completed"]


async def test_needs_you_jumps_to_a_blocked_or_writing_agent(hosted):
    repo, _alice, bob = hosted
    async with console(repo) as (app, pilot):
        await cli(bob, "send", "look at this", "--to", f"@{OPERATOR}")
        await until(pilot, lambda: app.query_one(HeaderLine).needs_you == 1)
        await pilot.press("g")
        await until(pilot, lambda: app.selected == "bob", "bob selected")


async def test_needs_you_jumps_to_your_inbox_for_mail_from_a_monitor(hosted):
    """Walk A, bug 6: mail to you from a monitor (or @system) raised the header's "needs you",
    and `g` said "nothing needs you right now": it looked only for agents in the team."""
    repo, _alice, _bob = hosted
    log = repo.path / "ci.log"
    log.write_text("")
    async with console(repo) as (app, pilot):
        await app.engine.call(
            "monitor.watch_file",
            {"name": "ci-alert", "path": "ci.log", "match": "FAILED", "to": f"@{OPERATOR}", "debounce": 0},
        )
        await select_agent(pilot, "bob")
        with log.open("a") as fh:
            fh.write("step 3 FAILED\n")
        header = app.query_one(HeaderLine)
        await until(pilot, lambda: header.needs_you == 1, "needs you: 1", last=lambda: header.needs_you)
        app.query_one(Conversation).focus()
        await pilot.press("g")
        await until(pilot, lambda: app.selected == OPERATOR, "your inbox selected")
        assert isinstance(app.focused, TeamTable)
        assert not notified(app, "nothing needs you")
        conversation = app.query_one(Conversation)
        await until(pilot, lambda: "step 3 FAILED" in conversation.plain_text, "the monitor's mail shown")


# -- feed, find, help, palette --


async def test_feed_shows_all_traffic_and_filters(hosted):
    repo, alice, bob = hosted
    async with console(repo) as (app, pilot):
        await cli(alice, "send", "schema v2 is in", "--to", "@bob")
        await cli(bob, "send", "reviewing now", "--to", "@alice")
        await pilot.press("f")
        screen = await until(pilot, lambda: isinstance(app.screen, FeedScreen) and app.screen)
        await until(pilot, lambda: len(screen.messages) == 2, "both messages in the feed")
        assert "@bob → @alice  reviewing now" in screen.lines[0]  # newest first
        screen.query_one("#filter").value = "schema"
        await until(pilot, lambda: [m["body"]["content"] for m in screen.messages] == ["schema v2 is in"])
        await cli(alice, "send", "schema v3 too", "--to", "@bob")
        await until(pilot, lambda: len(screen.messages) == 2, "the feed follows new traffic")
        await pilot.press("escape")
        assert not isinstance(app.screen, FeedScreen)


async def test_reply_on_a_page_answers_the_message_highlighted_there(hosted):
    """Walk bug 3: `r` on the feed replied to the main screen's highlight, not the page's."""
    repo, alice, bob = hosted
    async with console(repo) as (app, pilot):
        await select_agent(pilot, "bob")
        first = await cli(bob, "send", "main screen message", "--to", f"@{OPERATOR}")
        await until(pilot, lambda: "main screen message" in app.query_one(Conversation).plain_text)
        app.query_one(Conversation).highlighted = 0
        wanted = await cli(alice, "send", "the one on the feed", "--to", "@bob")
        await pilot.press("f")
        screen = await until(pilot, lambda: isinstance(app.screen, FeedScreen) and app.screen)
        await until(pilot, lambda: len(screen.messages) == 2, "both messages in the feed")
        screen.query_one("#feed").highlighted = 0  # newest first: alice's
        await pilot.press("r")
        bar = app.query_one(ComposeBar)
        await until(pilot, lambda: app.screen is app.main_screen and bar.reply_to is not None, "reply mode")
        assert bar.reply_to["message_id"] == wanted["message_id"] != first["message_id"]
        assert app.focused is bar


async def test_a_pages_title_is_not_hidden_under_its_filter(hosted):
    """Walk bug 15: the title and the filter were both docked to the top, one over the other."""
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        await pilot.press("f")
        screen = await until(pilot, lambda: isinstance(app.screen, FeedScreen) and app.screen)
        await pilot.pause(0.1)
        title, filter_ = screen.query_one("#feed-title").region, screen.query_one("#filter").region
        assert title.height >= 1 and not title.overlaps(filter_)


async def test_main_screen_keys_do_nothing_on_pages(hosted):
    """Keys that act on the main screen's selection neither run nor show in a page's footer."""
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        await select_agent(pilot, "bob")
        await pilot.press("f")
        screen = await until(pilot, lambda: isinstance(app.screen, FeedScreen) and app.screen)
        shown = {b.binding.action for b in app.active_bindings.values()}
        assert not shown & {"new_agent", "teardown", "attach", "queue", "kill_session", "restart_agent"}
        await pilot.press("n", "t", "K")
        await pilot.pause(0.2)
        assert app.screen is screen


async def test_find_searches_messages_and_opens_a_thread(hosted):
    repo, alice, bob = hosted
    async with console(repo) as (app, pilot):
        root = await cli(alice, "send", "flaky test in auth", "--to", "@bob")
        await cli(bob, "reply", root["message_id"], "fixed the flaky one")
        await cli(alice, "send", "unrelated", "--to", "@bob")
        await pilot.press("slash")
        screen = await until(pilot, lambda: isinstance(app.screen, FeedScreen) and app.screen)
        await pilot.press(*"flaky")
        await until(pilot, lambda: len(screen.messages) == 2, "two matches")
        await pilot.press("enter")  # filter done: focus the results
        await pilot.press("enter")  # open the highlighted message's thread
        thread = await until(pilot, lambda: isinstance(app.screen, ThreadScreen) and app.screen)
        await until(
            pilot,
            lambda: (
                [m["body"]["content"] for m in thread.messages]
                == ["flaky test in auth", "fixed the flaky one"]
            ),
            "the thread, oldest first",
        )


async def test_a_thread_shows_each_message_whole_long_output_folded_the_latest_open(hosted):
    """Walk bug 3 (reading): newlines, indentation and long output kept; only the latest unfolded."""
    from textual.widgets import Collapsible

    repo, alice, bob = hosted
    log = "\n".join(f"tests/test_{i}.py::test_case PASSED" for i in range(30))
    code = "def f():\n    return 42\n"
    async with console(repo) as (app, pilot):
        root = await cli(alice, "send", log, "--to", f"@{OPERATOR}")
        await cli(bob, "reply", root["message_id"], code)
        await cli(alice, "reply", root["message_id"], log)
        await select_agent(pilot, "alice")
        conversation = app.query_one(Conversation)
        await until(pilot, lambda: "in thread" in conversation.plain_text, "the folded thread")
        conversation.focus()
        conversation.highlighted = 0
        await pilot.press("enter")
        screen = await until(
            pilot,
            lambda: isinstance(app.screen, ThreadScreen) and len(app.screen.views) == 3 and app.screen,
            "the thread",
        )
        bodies = [str(v.query_one(".body").render()) for v in screen.views]
        assert [b.rstrip("\n") for b in bodies] == [log, code.rstrip("\n"), log]
        folds = [v.query(Collapsible) for v in screen.views]
        assert folds[0].first().collapsed and not folds[1] and not folds[2].first().collapsed
        assert screen.focused_message["message_id"] == root["message_id"]  # the one highlighted
        await pilot.press("j")  # on to bob's code, and reply to it
        await pilot.press("r")
        bar = app.query_one(ComposeBar)
        await until(pilot, lambda: bar.reply_to is not None, "reply mode")
        assert bar.reply_to["author"] == "bob"


async def test_help_lists_every_binding(hosted):
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(str(s.render()) for s in app.screen.query("Static"))
        for key in (
            "new agent",
            "teardown",
            "attach",
            "command queue",
            "monitor rules",
            "reply",
            "feed",
            "find",
        ):
            assert key in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_help_opened_and_closed_fast_never_crashes(hosted):
    """Walk, bug 3: `?` then escape, fast, crashed with NoScreen: the help's focus event reached the
    app after its dialog had been popped, and the app read that widget's `screen`."""
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        for _ in range(15):
            app.post_message(events.Key("question_mark", "?"))
            app.post_message(events.Key("escape", None))
        await pilot.pause(0.3)
        # The same late event, deterministic: a focus event for a widget no longer on any screen.
        gone = Static("gone")
        await app.main_screen.mount(gone)
        await gone.remove()
        app.post_message(events.DescendantFocus(gone))
        await pilot.pause(0.1)
        assert app.return_code is None and app.screen is app.main_screen
        assert app._focus_before_compose is not gone


async def test_palette_runs_thrum_commands(hosted):
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        await pilot.press("ctrl+p")
        await pilot.press(*"Monitors")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, MonitorsScreen), "the monitors screen")


async def test_theme_choice_is_remembered(hosted):
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        assert app.theme == "thrum-dark"
        assert {"thrum-dark", "thrum-light"} <= set(app.available_themes)
        app.theme = "thrum-light"
        await pilot.pause()
    config = json.loads((repo.path / ".thrum" / "config.json").read_text())
    assert config["console"]["theme"] == "thrum-light"
    async with console(repo) as (app, pilot):
        assert app.theme == "thrum-light"


# -- agents: new, teardown, pane, queue, kill --


async def test_new_agent_dialog_creates_worktree_session_and_sends_the_first_prompt(hosted):
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        await pilot.press("n")
        dialog = await until(pilot, lambda: isinstance(app.screen, NewAgentScreen) and app.screen)
        dialog.query_one("#f-name").value = "carol"
        dialog.query_one("#f-role").value = "tester"
        dialog.query_one("#f-runtime").value = "shell"
        dialog.query_one("#f-prompt").value = "echo first-prompt-arrived"
        dialog.query_one("#create").press()
        await until(pilot, lambda: any("first prompt sent" in s for s in dialog.steps), "all steps done", 40)
        assert all(s.startswith("✓") for s in dialog.steps), dialog.steps
        trees = repo.git("worktree", "list")
        assert "[feature/carol]" in trees
        await until(
            pilot,
            lambda: "first-prompt-arrived" in tmux(repo, "capture-pane", "-p", "-t", "=carol:"),
            "the prompt typed into carol's pane: "
            + tmux(repo, "capture-pane", "-p", "-t", "=carol:")
            + tmux(repo, "list-sessions"),
        )
        await pilot.press("escape")
        await until(pilot, lambda: "carol" in app.query_one(TeamTable).names, "carol in the team")
        # The dispatch is on record (walk, missing 12): the operator's message to carol, not nudged.
        sent = (await app.engine.call("message.sent", {"to": "carol"}))["messages"]
        assert [m["body"]["content"] for m in sent] == ["echo first-prompt-arrived"]
        # Typed into the pane is delivered, as a nudge is (walk bug 3: `stored (not yet delivered)`).
        assert [d["state"] for d in sent[0]["deliveries"]] == ["notified"]
        undelivered = await app.engine.call("message.sent", {"to": "carol", "undelivered": True})
        assert undelivered["messages"] == []
        feed = (await app.engine.call("message.feed", {"agent": "carol"}))["messages"]
        assert any(m["body"]["content"] == "echo first-prompt-arrived" for m in feed)
        await pilot.pause(1.0)
        assert "New message from" not in tmux(repo, "capture-pane", "-p", "-t", "=carol:")


async def test_fast_typing_in_a_dialog_lands_in_the_field_tab_moved_to(hosted):
    """Walk bug 10: keys queued behind a Tab were typed into the field Tab left. Posting the keys
    without waiting between them is the fast typist, deterministically."""
    from textual import events

    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        await pilot.press("n")
        dialog = await until(pilot, lambda: isinstance(app.screen, NewAgentScreen) and app.screen)
        await until(pilot, lambda: app.focused is dialog.query_one("#f-name"), "the name field focused")
        for key in ["a", "a", "a", "tab", "b", "b", "b", "enter", "c", "c", "c"]:
            app.post_message(events.Key(key, key if len(key) == 1 else None))
        await until(pilot, lambda: dialog.query_one("#f-module").value == "ccc", "the third field typed")
        assert [dialog.query_one(f"#f-{f}").value for f in ("name", "role", "module")] == [
            "aaa",
            "bbb",
            "ccc",
        ]
        assert not dialog.steps  # Enter in a field moved on; it did not create anything
        await pilot.press("ctrl+s")
        await until(pilot, lambda: dialog.steps, "ctrl+s creates")


def footer_keys(screen) -> str:
    """What the footer on top of `screen` shows: its keys and their labels."""
    from textual.widgets import Footer

    return " ".join(str(k.render()) for k in screen.query_one(Footer).query("FooterKey"))


async def test_enter_in_a_form_s_last_field_submits_and_its_footer_says_how(hosted):
    """Walk bug 6: Enter in "first prompt" went on to Cancel, a second Enter threw the form away;
    the dialog's footer showed the main screen's keys, not ctrl+s. The monitor form had the same."""
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        await pilot.press("n")
        dialog = await until(pilot, lambda: isinstance(app.screen, NewAgentScreen) and app.screen)
        await until(pilot, lambda: "submit" in footer_keys(dialog), "the dialog's own footer")
        keys = footer_keys(dialog)
        assert "cancel" in keys and "monitors" not in keys and "quit" not in keys, keys
        dialog.query_one("#f-runtime").value = "shell"
        dialog.query_one("#f-prompt").focus()
        await pilot.press("enter")  # no name yet: submitted, and refused inline
        await until(pilot, lambda: dialog.steps, "Enter in the last field submits")
        assert app.screen is dialog and app.focused is not dialog.query_one("#cancel")
        dialog.query_one("#f-name").value = "gwen"
        dialog.query_one("#f-role").value = "tester"
        await pilot.press("enter")
        await until(pilot, lambda: any(s.startswith("✓ shell") for s in dialog.steps), "created", 40)
        await pilot.press("escape")
        await until(pilot, lambda: "gwen" in app.query_one(TeamTable).names, "gwen in the team")
        screen, form = await new_monitor_form(
            app, pilot, name="sched", watch="true", match="x", to=f"@{OPERATOR}"
        )
        form.query_one("#m-schedule").focus()
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen, "Enter in the schedule field saves the rule")
        assert [r["name"] for r in screen.rules] == ["sched"]


async def test_new_agent_refuses_bad_input_inline(hosted):
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        await pilot.press("n")
        dialog = await until(pilot, lambda: isinstance(app.screen, NewAgentScreen) and app.screen)
        dialog.query_one("#create").press()
        await until(pilot, lambda: dialog.steps and "needs a name and a role" in dialog.steps[-1])
        dialog.query_one("#f-name").value = "bad name!"
        dialog.query_one("#f-role").value = "tester"
        dialog.query_one("#create").press()
        await until(pilot, lambda: dialog.steps[-1].startswith("✗ invalid"), "the engine's refusal shown")
        assert not dialog.query_one("#create").disabled  # fix it and try again
        assert "bad" not in repo.git("worktree", "list")


def managed_agent(repo, name: str) -> Path:
    """An agent in a worktree thrum created (the only kind teardown removes), with its session."""
    r = repo.json("worktree", "create", name, "--name", name, "--role", "implementer", "--runtime", "shell")
    return Path(r["path"])


async def open_teardown(app, pilot, name: str) -> TeardownScreen:
    await select_agent(pilot, name)
    app._worktrees_at = 0.0
    app.request_refresh()
    await until(pilot, lambda: any(name in w["agents"] for w in app.worktrees), "worktrees loaded")
    await pilot.press("t")
    dialog = await until(pilot, lambda: isinstance(app.screen, TeardownScreen) and app.screen)
    await until(pilot, lambda: dialog.audited, "the audit")
    return dialog


async def test_teardown_needs_the_typed_name_and_shows_the_audit(hosted):
    repo, _alice, _bob = hosted
    path = managed_agent(repo, "dave")
    (path / "notes.txt").write_text("unsaved work\n")
    async with console(repo) as (app, pilot):
        dialog = await open_teardown(app, pilot, "dave")
        audit = str(dialog.query_one("#audit").render())
        assert "notes.txt" in audit and "refs/thrum/archive/dave" in audit
        go = dialog.query_one("#go")
        outcome = dialog.query_one("#outcome")
        await pilot.press("enter")  # nothing typed: Enter says what is missing (walk, bug 19)
        assert "type dave to confirm" in str(outcome.render())
        dialog.query_one("#confirm").value = "dave"
        await pilot.pause()
        assert go.disabled  # problems: only an explicit force lets it through
        await pilot.press("enter")
        assert "tick force past the problems" in str(outcome.render())
        assert path.exists()
        dialog.query_one("#force").value = True
        await pilot.pause()
        assert not go.disabled
        go.press()
        await until(pilot, lambda: not isinstance(app.screen, TeardownScreen), "the dialog closes", 40)
        assert not path.exists()
        assert "refs/thrum/archive/dave" in repo.git("show-ref")
        await until(pilot, lambda: "dave" not in app.query_one(TeamTable).names, "dave gone from the team")


async def test_teardown_cancel_changes_nothing(hosted):
    repo, _alice, _bob = hosted
    path = managed_agent(repo, "erin")
    async with console(repo) as (app, pilot):
        dialog = await open_teardown(app, pilot, "erin")
        dialog.query_one("#confirm").value = "eri"
        await pilot.pause()
        assert dialog.query_one("#go").disabled
        await pilot.press("escape")
        assert path.exists() and "erin" in app.query_one(TeamTable).names


async def test_teardown_of_a_worktree_thrum_did_not_create_is_refused(hosted):
    repo, alice, _bob = hosted
    async with console(repo) as (app, pilot):
        await select_agent(pilot, "alice")
        await until(pilot, lambda: any("alice" in w["agents"] for w in app.worktrees), "worktrees loaded")
        await pilot.press("t")
        dialog = await until(pilot, lambda: isinstance(app.screen, TeardownScreen) and app.screen)
        await until(
            pilot,
            lambda: "is a git worktree Thrum did not create" in str(dialog.query_one("#audit").render()),
            "refusal",
        )
        assert dialog.query_one("#go").disabled
        await pilot.press("escape")
        assert alice.cwd.exists()


async def test_pane_preview_follows_the_selected_agent(hosted):
    repo, alice, _bob = hosted
    give_session(repo, alice)
    tmux(repo, "send-keys", "-t", "=alice:", "echo preview-marker-$((6*7))", "Enter")
    async with console(repo) as (app, pilot):
        await select_agent(pilot, "alice")
        preview = app.query_one(PanePreview)
        await until(pilot, lambda: "preview-marker-42" in preview.plain_text, "alice's pane in the preview")
        tmux(repo, "send-keys", "-t", "=alice:", "echo live-$((1+1))", "Enter")
        await until(pilot, lambda: "live-2" in preview.plain_text, "the preview stays live")
        await select_agent(pilot, "bob")
        await until(
            pilot,
            lambda: (
                preview.session is None and "no tmux session" in str(preview.query_one("#pane-body").render())
            ),
            "bob has no pane",
        )
        # The key that gives him one: L launches him in his worktree (walk A, bug 12).
        note = str(preview.query_one("#pane-body").render())
        assert "L launches it in its worktree" in note and "n creates" not in note


async def test_the_pane_preview_follows_the_tail_after_the_terminal_shrinks():
    """Walk A, bug 8: after a shrink the view sat above the new end, which the preview took for
    "the operator scrolled up": new output never came into view. Only the operator's scrolling
    stops the following (and scrolling back to the end resumes it)."""
    from textual.app import App

    class One(App):
        def compose(self):
            yield PanePreview(id="preview")

    def lines(n: int) -> list[str]:
        return [f"line {i}" for i in range(n)]

    app = One()
    async with app.run_test(size=(80, 40)) as pilot:
        preview = app.query_one(PanePreview)
        preview.show("alice", lines(100))
        await until(pilot, lambda: preview.is_vertical_scroll_end and preview.scroll_y > 0, "at the tail")
        await pilot.resize_terminal(80, 15)
        preview.show("alice", lines(101))  # new output after the shrink
        await until(
            pilot,
            lambda: preview.max_scroll_y > 70 and preview.is_vertical_scroll_end,
            "the tail in view after the shrink",
            last=lambda: (preview.scroll_y, preview.max_scroll_y),
        )
        preview.focus()
        await pilot.press("pageup")  # the operator scrolls up: it holds still
        await until(pilot, lambda: not preview.following, "following stopped")
        await pilot.wait_for_scheduled_animations()  # the scroll is animated: read where it ends
        held = preview.scroll_y
        preview.show("alice", lines(102))
        await pilot.pause()
        assert preview.scroll_y == held and not preview.is_vertical_scroll_end
        await pilot.press("end")  # back to the end: following again
        await until(pilot, lambda: preview.following, "following again")
        preview.show("alice", lines(103))
        await until(pilot, lambda: preview.is_vertical_scroll_end, "the new tail in view")


async def test_a_scrolled_back_pane_preview_stays_on_its_lines_under_new_output():
    """Walk bug 12: the capture is the pane's last lines, so new output moved every line up the text
    while the held view stayed put: its top line went "(3s…)", "(13s…)", "(23s…)" as you read."""
    from textual.app import App

    class One(App):
        def compose(self):
            yield PanePreview(id="preview")

    def window(start: int) -> list[str]:  # the last 200 lines of a pane that printed start+200
        return [f"line {i}" for i in range(start, start + 200)] + ["$ "]

    app = One()
    async with app.run_test(size=(80, 30)) as pilot:
        preview = app.query_one(PanePreview)
        preview.show("alice", window(0))
        await until(pilot, lambda: preview.is_vertical_scroll_end and preview.scroll_y > 0, "at the tail")
        preview.focus()
        await pilot.press("pageup", "pageup")
        await pilot.wait_for_scheduled_animations()
        assert not preview.following
        top = preview.lines[round(preview.scroll_y)]
        for start in (10, 20, 35):
            preview.show("alice", window(start))
            await pilot.pause()
            assert preview.lines[round(preview.scroll_y)] == top, (start, preview.scroll_y)
        await pilot.press("end")  # back at the bottom: it follows again
        await until(pilot, lambda: preview.following, "following again")
        preview.show("alice", window(50))
        await until(pilot, lambda: preview.is_vertical_scroll_end, "the new tail in view")


@pytest.mark.parametrize("size", [(60, 20), (80, 24)])
async def test_a_small_terminal_shows_the_team_s_rows_before_the_side_panels(hosted, size):
    """Walk bug 16: at 60x20 the TEAM panel of eight showed its border and no rows, while the
    side panels (a long review queue) kept theirs."""
    from thrum_tui.widgets.review_queue import ReviewQueue

    repo, _alice, _bob = hosted
    for i in range(5):
        repo.agent(f"extra{i}", "tester", worktree=False)
    async with console(repo, size=size) as (app, pilot):
        team = app.query_one(TeamTable)
        await until(pilot, lambda: len(team.names) == 8, "the team of eight")
        entry = {
            "needs_you": True,
            "uncommitted": 0,
            "untracked": 0,
            "ahead": 1,
            "added": 2,
            "removed": 0,
            "status": "requested",
            "request_age": 60,
            "changed_since_review": False,
            "tests": None,
        }

        async def eight_reviews() -> None:  # eight agents' work waiting, whatever the engine says
            app.query_one(ReviewQueue).show([{**entry, "agent": f"agent{i}"} for i in range(8)])

        app._refresh_reviews = eight_reviews
        await eight_reviews()
        queue = app.query_one(ReviewQueue)
        await until(pilot, lambda: queue.region.height >= 3, "the queue laid out", last=lambda: queue.region)
        await pilot.pause()
        # Inside the border: the header line, then every member's row.
        assert team.content_region.height >= 1 + len(team.names), (team.region, queue.region)


async def test_zoom_shows_the_pane_read_only_and_live(hosted):
    from thrum_tui.screens.zoom import ZoomScreen

    repo, alice, _bob = hosted
    async with console_on_session(repo, alice) as (app, pilot):
        tmux(repo, "send-keys", "-t", "=alice:", "echo zoom-marker-$((6*7))", "Enter")
        await pilot.press("z")
        screen = await until(pilot, lambda: isinstance(app.screen, ZoomScreen) and app.screen, "the zoom")
        zoom = screen.query_one(PanePreview)
        await until(pilot, lambda: "zoom-marker-42" in zoom.plain_text, "alice's pane zoomed")
        tmux(repo, "send-keys", "-t", "=alice:", "echo still-$((1+1))", "Enter")
        await until(pilot, lambda: "still-2" in zoom.plain_text, "the zoom stays live")
        await pilot.press("x", "y")  # read-only: keys never reach the pane
        await pilot.pause(0.3)
        assert "xy" not in tmux(repo, "capture-pane", "-p", "-t", "=alice:")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main_screen, "back on the main screen")


async def queue_from_dialog(app, pilot, command: str) -> QueueScreen:
    """c, then `command` queued with enter: the dialog, still open."""
    await pilot.press("c")
    dialog = await until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen)
    dialog.query_one("#command").value = command
    await pilot.press("enter")
    return dialog


async def test_queue_dialog_types_into_the_pane(hosted):
    repo, alice, _bob = hosted
    async with console_on_session(repo, alice) as (app, pilot):
        dialog = await queue_from_dialog(app, pilot, "echo queued-$((2*21))")
        await until(
            pilot,
            lambda: "queued-42" in tmux(repo, "capture-pane", "-p", "-t", "=alice:"),
            "the queued command ran in the pane",
        )
        await until(
            pilot,
            lambda: any(c["command"].startswith("echo queued") for c in dialog.commands),
            "the queue lists it",
        )
        dialog.query_one("#command").value = "echo sent-now-$((3*3))"
        dialog.query_one("#send").press()
        await until(pilot, lambda: "sent-now-9" in tmux(repo, "capture-pane", "-p", "-t", "=alice:"))


async def test_queue_dialog_takes_the_next_command_after_a_button_and_says_why_an_empty_one_is_not_sent(
    hosted,
):
    """Walk bug 7: after "Queue (when idle)" or "Send now" the focus stayed on the button, and the
    next command typed was lost; "Send now" with nothing typed did nothing and said nothing."""
    repo, alice, _bob = hosted
    async with console_on_session(repo, alice) as (app, pilot):
        await pilot.press("c")
        dialog = await until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen)
        field = dialog.query_one("#command")
        await pilot.press(*"echo first-$((1+1))")
        dialog.query_one("#queue-it").focus()
        await pilot.press("enter")
        await pilot.press(*"echo second")
        assert app.focused is field and field.value == "echo second"
        await until(
            pilot, lambda: "first-2" in tmux(repo, "capture-pane", "-p", "-t", "=alice:"), "queued ran"
        )
        field.value = ""
        dialog.query_one("#send").focus()
        await pilot.press("enter")
        await until(
            pilot, lambda: notified(app, "nothing to send: type a command first"), "the empty send told"
        )
        assert app.focused is field


async def test_kill_asks_first_and_interrupt_only_from_the_preview(hosted):
    repo, alice, _bob = hosted
    async with console_on_session(repo, alice) as (app, pilot):
        await pilot.press("K")
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")
        assert "alice" in tmux(repo, "list-sessions", "-F", "#{session_name}")
        tmux(repo, "send-keys", "-t", "=alice:", "sleep 300", "Enter")
        app.query_one(PanePreview).focus()
        await pilot.press("ctrl+c")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await until(pilot, lambda: "^C" in tmux(repo, "capture-pane", "-p", "-t", "=alice:"), "interrupted")
        await pilot.press("K")
        await pilot.press("y")
        await until(
            pilot,
            lambda: "alice" not in tmux(repo, "list-sessions", "-F", "#{session_name}"),
            "the session is gone",
        )


async def test_agent_actions_without_a_session_explain_themselves(hosted):
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        await select_agent(pilot, "bob")
        for key in ("a", "c", "K", "R"):
            await pilot.press(key)
            assert not isinstance(app.screen, (Confirm, QueueScreen))
        await until(pilot, lambda: notified(app, "@bob has no tmux session"))
        await select_agent(pilot, OPERATOR)
        await pilot.press("t")
        await until(pilot, lambda: notified(app, "highlight an agent in the team first"))


# -- monitors (the console's monitor pane) --


async def new_monitor_form(app, pilot, **fields: str):
    """m, then n: the monitors page and its create form, with `fields` typed in (by input id)."""
    await pilot.press("m")
    screen = await until(pilot, lambda: isinstance(app.screen, MonitorsScreen) and app.screen)
    await pilot.press("n")
    form = await until(pilot, lambda: isinstance(app.screen, MonitorForm) and app.screen)
    for key, value in fields.items():
        form.query_one(f"#m-{key}").value = value
    await pilot.pause()
    return screen, form


async def test_monitor_pane_create_match_edit_stop_restart(hosted):
    repo, _alice, _bob = hosted
    log = repo.path / "build.log"
    log.write_text("")
    async with console(repo) as (app, pilot):
        screen, form = await new_monitor_form(
            app,
            pilot,
            name="build-alert",
            source="file",
            watch="build.log",
            match="ALERT|FAILED",
            sample="step 3 FAILED",
        )
        assert "matches the sample" in str(form.query_one("#m-verdict").render())
        form.query_one("#m-to").value = f"@{OPERATOR}"
        form.query_one("#m-debounce").value = "0s"
        form.query_one("#save").press()
        await until(pilot, lambda: app.screen is screen, "the form closes")
        await until(pilot, lambda: [r["name"] for r in screen.rules] == ["build-alert"], "the rule listed")
        with log.open("a") as fh:
            fh.write("all good\nstep 7 FAILED: tests\n")
        await until(pilot, lambda: screen.rules[0]["matches"] == 1, "the match counted")
        await until(
            pilot, lambda: any("step 7 FAILED" in (e["line"] or "") for e in screen.events), "recent match"
        )
        inbox = await app.engine.call("message.inbox", {"peek": True})
        assert inbox["messages"][0]["author"] == "monitor:build-alert"
        # edit: the same rule (same id), a new pattern
        rule_id = screen.rules[0]["id"]
        await pilot.press("e")
        form = await until(pilot, lambda: isinstance(app.screen, MonitorForm) and app.screen)
        form.query_one("#m-match").value = "PANIC"
        form.query_one("#save").press()
        await until(
            pilot, lambda: app.screen is screen and screen.rules and screen.rules[0]["match"] == "PANIC"
        )
        assert screen.rules[0]["id"] == rule_id
        await pilot.press("s")
        await until(pilot, lambda: screen.rules[0]["status"] == "stopped", "stopped")
        await pilot.press("r")
        await until(pilot, lambda: screen.rules[0]["status"] == "running", "running again")
        await pilot.press("escape")
        await until(pilot, lambda: "build-alert" in str(app.query_one("#monitors").get_row_at(0)), "summary")


async def test_monitor_form_refuses_bad_input_and_creates_nothing(hosted):
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        screen, form = await new_monitor_form(
            app, pilot, name="bad", watch="tail -F x.log", match="(unclosed", to=f"@{OPERATOR}"
        )
        assert "invalid regex" in str(form.query_one("#m-verdict").render())
        form.query_one("#save").press()
        await until(pilot, lambda: "invalid pattern" in str(form.query_one("#m-error").render()))
        form.query_one("#m-match").value = "x"
        form.query_one("#m-to").value = "@nobody"
        form.query_one("#save").press()
        await until(pilot, lambda: "@nobody" in str(form.query_one("#m-error").render()))
        await pilot.press("escape")
        assert (await app.engine.call("monitor.list", {"all": True}))["monitors"] == []
        assert screen.rules == []


async def test_a_rule_stopped_by_its_pattern_budget_shows_why(hosted):
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        await app.engine.call(
            "monitor.start",
            {
                "name": "redos",
                "match": "^(a|a)+$",
                "to": f"@{OPERATOR}",
                "debounce": 0,
                "argv": ["sh", "-c", f"echo {'a' * 34}!; sleep 600"],
            },
        )
        for _ in range(100):
            rule = (await app.engine.call("monitor.show", {"id": "redos"}))["monitor"]
            if rule["status"] == "failed":
                break
            await pilot.pause(0.1)
        assert rule["status"] == "failed" and "took longer than" in rule["last_error"], rule
        await pilot.press("m")
        screen = await until(pilot, lambda: isinstance(app.screen, MonitorsScreen) and app.screen)
        await until(
            pilot, lambda: screen.rules and screen.rules[0]["status"] == "failed", "the rule listed failed"
        )
        await until(
            pilot, lambda: "took longer than" in str(screen.query_one("#matches").render()), "the reason"
        )


# -- attached to a headless daemon --


async def test_attached_console_is_pushed_mail_and_team_changes(team):
    repo, alice, bob = team
    assert repo.daemon_pid() is not None  # the agents' CLI calls started a daemon: the console attaches
    async with console(repo) as (app, pilot):
        assert app.engine.host == "attached"
        await select_agent(pilot, "bob")
        sent = await cli(bob, "send", "pushed, not polled", "--to", f"@{OPERATOR}")
        assert not sent.get("undelivered"), sent  # the open console is how the operator gets mail
        conversation = app.query_one(Conversation)
        await until(pilot, lambda: "pushed, not polled" in conversation.plain_text, "bob's message")
        await until(pilot, lambda: notified(app, "pushed, not polled"), "a toast")
        await cli(alice, "agent", "set-status", "blocked")
        await until(
            pilot,
            lambda: (app.query_one(TeamTable).member("alice") or {}).get("state") == "blocked",
            "alice blocked",
        )
        await until(pilot, lambda: app.query_one(HeaderLine).needs_you == 2, "needs you: blocked + unread")


async def test_an_attached_console_starts_a_killed_daemon_again_and_leaves_a_stopped_one(team):
    """Walk (session 18): after a kill -9 of the daemon, the attached console went on saying
    "engine: attached" and nothing started an engine again, so nudges stopped and compose failed.
    It starts one again now (as any `thrum` command would), and a `thrum daemon stop` is obeyed."""
    import os
    import signal

    repo, _alice, bob = team
    pid = repo.daemon_pid()
    assert pid is not None
    async with console(repo) as (app, pilot):
        assert app.engine.host == "attached"
        os.kill(pid, signal.SIGKILL)
        await until(pilot, lambda: repo.daemon_pid() not in (None, pid), "a new daemon", 40)
        await until(pilot, lambda: app.query_one(HeaderLine).host == "attached", "the header back", 40)
        await select_agent(pilot, "bob")
        await cli(bob, "send", "after the crash", "--to", f"@{OPERATOR}")
        conversation = app.query_one(Conversation)
        await until(pilot, lambda: "after the crash" in conversation.plain_text, "mail shown again", 40)
        await asyncio.to_thread(repo.run, "daemon", "stop")
        await until(pilot, lambda: "stopped" in app.query_one(HeaderLine).host, "the header says stopped", 40)
        assert repo.daemon_pid() is None


async def test_restart_respawns_the_agents_pane_after_asking(hosted):
    repo, alice, _bob = hosted
    async with console_on_session(repo, alice) as (app, pilot):
        tmux(repo, "send-keys", "-t", "=alice:", "echo before-restart-$((5*5))", "Enter")
        await until(pilot, lambda: "before-restart-25" in tmux(repo, "capture-pane", "-p", "-t", "=alice:"))
        pid = tmux(repo, "display-message", "-p", "-t", "=alice:", "#{pane_pid}").strip()
        # Busy (output every 0.2 s): the engine refuses a plain restart, so it must be insisted on.
        tmux(repo, "send-keys", "-t", "=alice:", "while true; do echo tick; sleep 0.2; done", "Enter")
        await until(
            pilot,
            lambda: (app.query_one(TeamTable).member("alice") or {}).get("state") == "working",
            "alice working",
        )
        await pilot.press("R")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await until(
            pilot,
            lambda: isinstance(app.screen, Confirm) and "anyway" in app.screen.title_text,
            "the engine refuses a busy pane; the console asks again",
        )
        await pilot.press("y")
        await until(
            pilot, lambda: notified(app, "restarted alice"), "restarted" + str(app.shown_notifications)
        )
        assert tmux(repo, "display-message", "-p", "-t", "=alice:", "#{pane_pid}").strip() != pid


# -- runtime health and permission dialogs (walk bugs 5, 6, 9) --

FAKE_AGENT = Path(__file__).resolve().with_name("fake_agent.py")


def fake_claude_session(repo, agent) -> Path:
    """A session for `agent` running tests/fake_agent.py with claude's screens (approve 1, deny 3 --
    the numbered "No" of Claude's write dialog -- each with Enter, as the fake reads lines); returns
    the log of what was typed into it."""
    import sys

    log = repo.path.parent / f"{agent.name}-fake.log"
    presets = {
        "fake_claude": {
            "extends": "claude",
            "approve": "1 Enter",
            "deny": "3 Enter",
            "command": [sys.executable, str(FAKE_AGENT), "--style", "claude", "--log", str(log)],
        }
    }
    (repo.path / ".thrum" / "runtimes.json").write_text(json.dumps({"presets": presets}))
    repo.ok(
        "tmux",
        "create",
        agent.name,
        "--cwd",
        str(agent.cwd),
        "--name",
        agent.name,
        "--role",
        agent.role,
        "--runtime",
        "fake_claude",
        cwd=agent.cwd,
    )
    assert repo.json("tmux", "launch", agent.name, cwd=agent.cwd)["primed"] is True
    return log


def typed(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


async def test_a_blocked_agent_reaches_the_operator_and_y_N_answer_it(hosted):
    repo, alice, _bob = hosted
    log = fake_claude_session(repo, alice)
    async with console(repo) as (app, pilot):
        told = []
        real_notify = app.notify
        app.notify = lambda msg, **kw: (told.append(msg), real_notify(msg, **kw))
        await select_agent(pilot, "alice")
        await pilot.press("y")  # not blocked: nothing is typed
        await until(pilot, lambda: notified(app, "@alice is not waiting on a permission dialog"))
        team = app.query_one(TeamTable)
        for round_, (key, answer) in enumerate((("y", "answer: 1"), ("N", "answer: 3"))):
            await asyncio.to_thread(repo.ok, "tmux", "send", "alice", "dialog")
            await until(
                pilot, lambda: (team.member("alice") or {}).get("state") == "blocked", "alice blocked"
            )
            # The operator is a supervisor by default: the notice is mail to you, told as a toast.
            await until(pilot, lambda: notified(app, "@alice is waiting on a permission dialog"), "the toast")
            await until(pilot, lambda: app.query_one(HeaderLine).needs_you >= 1, "counted in needs you")
            if key == "N":
                # Walk, bug 1: `g` highlights the blocked agent, and `n` then denied its dialog.
                await pilot.press("g", "n")
                await until(pilot, lambda: isinstance(app.screen, NewAgentScreen), "n opens New agent")
                await pilot.press("escape")
                await until(pilot, lambda: app.screen is app.main_screen, "back on the main screen")
                assert [ln for ln in typed(log) if ln.startswith("answer:")] == ["answer: 1"]
                assert (team.member("alice") or {}).get("state") == "blocked"
            await pilot.press(key)
            await until(
                pilot,
                lambda answer=answer: answer in typed(log),
                f"{answer} typed into the pane",
                last=lambda: (typed(log), told),
            )
            await until(
                pilot, lambda: (team.member("alice") or {}).get("state") != "blocked", "alice unblocked"
            )
            assert [ln for ln in typed(log) if ln.startswith("answer:")] == ["answer: 1", "answer: 3"][
                : round_ + 1
            ]
            app._notifications.clear()


async def test_an_exited_or_killed_agent_shows_it_and_L_relaunches_it_in_place(hosted):
    repo, alice, _bob = hosted
    log = fake_claude_session(repo, alice)
    async with console(repo) as (app, pilot):
        team = app.query_one(TeamTable)
        await select_agent(pilot, "alice")
        await pilot.press("L")  # running: L refuses, R is for that
        await until(pilot, lambda: notified(app, "R restarts it"))
        await asyncio.to_thread(repo.ok, "tmux", "send", "alice", "exit")
        await until(pilot, lambda: (team.member("alice") or {}).get("state") == "exited", "alice exited")
        assert "exited" in team.row_text("alice")
        await until(pilot, lambda: app.query_one(HeaderLine).needs_you >= 1, "an exited runtime needs you")
        await pilot.press("K")
        await pilot.press("y")
        await until(
            pilot, lambda: (team.member("alice") or {}).get("state") == "no session", "alice no session"
        )
        body = app.query_one(PanePreview).query_one("#pane-body")
        await until(pilot, lambda: "L launches it" in str(body.render()), "the killed agent's pane says L")
        await pilot.press("L")
        await until(pilot, lambda: notified(app, "relaunched @alice"), "relaunched", timeout=40)
        assert typed(log).count("/thrum-prime") == 2
        await until(
            pilot, lambda: (team.member("alice") or {}).get("state") in ("idle", "working"), "alice back"
        )
        assert "alice" in tmux(repo, "list-sessions", "-F", "#{session_name}")


async def test_new_agent_with_a_runtime_not_on_path_fails_at_once_and_creates_nothing(hosted):
    """And says so in one short line (walk bug 17): each failed Create added its error under the
    old ones, and the error printed the pane's whole PATH (five lines)."""
    repo, _alice, _bob = hosted
    (repo.path / ".thrum" / "runtimes.json").write_text(
        json.dumps({"presets": {"ghost": {"extends": "claude", "command": ["thrum-no-such-runtime"]}}})
    )
    async with console(repo) as (app, pilot):
        await until(pilot, lambda: "ghost" in app.runtimes, "the presets loaded")
        await pilot.press("n")
        dialog = await until(pilot, lambda: isinstance(app.screen, NewAgentScreen) and app.screen)
        dialog.query_one("#create").press()
        await until(pilot, lambda: dialog.steps and "needs a name and a role" in dialog.steps[-1])
        dialog.query_one("#f-name").value = "ghosty"
        dialog.query_one("#f-role").value = "impl"
        dialog.query_one("#f-runtime").value = "ghost"
        dialog.query_one("#create").press()
        await until(
            pilot,
            lambda: any("thrum-no-such-runtime: command not found" in s for s in dialog.steps),
            "the error",
        )
        assert len(dialog.steps) == 1 and dialog.steps[0].startswith("✗"), dialog.steps
        assert "directories)" in dialog.steps[0] and ":/" not in dialog.steps[0], dialog.steps[0]
    assert "ghosty" not in {a["name"] for a in repo.json("agent", "list")["agents"]}
    assert not (repo.path.parent / "ghosty").exists() and "ghosty" not in repo.git("worktree", "list")


async def test_queue_dialog_shows_exit_status_and_the_output(hosted):
    repo, alice, _bob = hosted
    async with console_on_session(repo, alice) as (app, pilot):
        dialog = await queue_from_dialog(app, pilot, "echo failing-$((6*7)); false")
        await until(
            pilot, lambda: any(c["status"] == "failed" for c in dialog.commands), "the failure recorded"
        )
        table = dialog.query_one("#queue")
        assert str(table.get_row_at(0)[1]).startswith("failed (exit 1) in ")
        output = str(dialog.query_one("#output").render())
        assert "failed (exit 1)" in output and "failing-42" in output, output


async def test_a_monitor_with_no_recipient_goes_to_you(hosted):
    """Walk bug 14: an empty "to" gave "unknown recipient: @"."""
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        screen, form = await new_monitor_form(app, pilot, name="to-me", watch="tail -F x.log", match="ERROR")
        form.query_one("#m-to").value = ""
        form.query_one("#save").press()
        await until(pilot, lambda: app.screen is screen, "the form closes")
        rules = (await app.engine.call("monitor.list", {"all": True}))["monitors"]
        assert [(r["name"], r["to"]) for r in rules] == [("to-me", f"@{OPERATOR}")]


async def test_state_filters_and_the_fuzzy_jump(hosted):
    """Walk, missing 9: `!` `@` `#` `$` narrow the team by state; `'` jumps to an agent by name."""
    repo, _alice, bob = hosted
    bob.ok("agent", "set-status", "blocked")
    async with console(repo) as (app, pilot):
        table = app.query_one(TeamTable)
        await until(pilot, lambda: (table.member("bob") or {}).get("state") == "blocked", "bob blocked")
        table.focus()
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: table.names == [OPERATOR, "bob"], "only the blocked (and you)")
        assert table.border_title == "TEAM · blocked only"
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: set(table.names) == {OPERATOR, "alice", "bob"}, "everyone again")
        await pilot.press("apostrophe")
        await pilot.pause(0.3)
        await pilot.press(*"alic")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: app.selected == "alice", "alice selected by the jump")


async def test_a_rebuilt_projection_is_reported_in_the_header(hosted):
    """Hardening item 2: a broken thrum.db is moved aside and rebuilt; the console says so."""
    repo, _alice, _bob = hosted
    db = repo.path / ".thrum" / "var" / "thrum.db"
    with db.open("r+b") as fh:
        fh.write(b"GARBAGEGARBAGEGARBAGE")
    async with console(repo) as (app, pilot):
        header = app.query_one(HeaderLine)
        await until(pilot, lambda: header.notice.startswith("projection rebuilt"), "the header's notice")
        assert "projection rebuilt" in header.render().plain
        assert notified(app, "The message store was repaired")


async def test_teardown_can_delete_the_branch_and_keep_the_agent(hosted):
    """Walk missing 11: the dialog offers what the CLI's --delete-branch and --keep-agent do."""
    repo, _alice, _bob = hosted
    path = managed_agent(repo, "gwen")
    async with console(repo) as (app, pilot):
        dialog = await open_teardown(app, pilot, "gwen")
        dialog.query_one("#delete-branch").value = True
        dialog.query_one("#keep-agent").value = True
        dialog.query_one("#force").value = True  # its live pane is a problem the audit lists
        dialog.query_one("#confirm").value = "gwen"
        await pilot.pause()
        dialog.query_one("#go").press()
        await until(pilot, lambda: not isinstance(app.screen, TeardownScreen), "the dialog closes", 40)
        assert not path.exists()
        assert not repo.git("branch", "--list", "feature/gwen")
        assert "gwen" in [a["name"] for a in (await app.engine.call("agent.list", {}))["agents"]]


async def test_the_operator_uses_the_cli_from_the_main_checkout_without_thrum_name(hosted):
    """Walk, missing 13: in the main checkout `thrum inbox`/`send`/`sent` said "no identity"."""
    repo, alice, _bob = hosted
    async with console(repo) as (app, pilot):
        sent = await cli(alice, "send", "for the boss", "--to", f"@{OPERATOR}")
        assert not sent.get("undelivered"), sent  # the console hosting the engine shows it
        inbox = await asyncio.to_thread(repo.json, "inbox")
        assert [m["body"]["content"] for m in inbox["messages"]] == ["for the boss"]
        sent = await asyncio.to_thread(repo.json, "send", "on it", "--to", "@alice")
        assert sent["message_id"]
        mine = (await asyncio.to_thread(repo.json, "sent"))["messages"]
        assert [m["body"]["content"] for m in mine] == ["on it"]
        got = (await cli(alice, "inbox"))["messages"]
        assert got[0]["author"] == OPERATOR


async def test_enter_in_the_monitor_form_moves_on_and_ctrl_s_saves(hosted):
    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        screen, form = await new_monitor_form(
            app, pilot, name="enter-test", watch="tail -F x.log", match="ERR"
        )
        form.query_one("#m-name").focus()
        await pilot.pause()
        await pilot.press("enter")
        assert app.screen is form and app.focused is not form.query_one("#m-name")
        assert (await app.engine.call("monitor.list", {"all": True}))["monitors"] == []
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is screen, "saved and closed")
        assert [r["name"] for r in (await app.engine.call("monitor.list", {"all": True}))["monitors"]] == [
            "enter-test"
        ]


async def test_a_refresh_repaints_neither_the_conversation_nor_the_pane_for_their_titles(hosted):
    """The main screen refreshes every half second under a busy team and its pane preview four
    times a second: setting their unchanged titles repainted both panels each time, the frames a
    keystroke waited behind (bench/console.py, real terminal)."""
    repo, alice, _bob = hosted
    async with console(repo) as (app, pilot):
        await cli(alice, "send", "hello", "--to", f"@{OPERATOR}")
        await select_agent(pilot, "alice")
        conversation = app.query_one(Conversation)
        preview = app.query_one(PanePreview)
        await until(pilot, lambda: "hello" in " ".join(conversation._plain), "alice's mail shown")
        await until(pilot, lambda: app.refresher.idle and not app._preview_busy, "the console settled")
        await pilot.pause()
        conversation._dirty_regions.clear()
        preview._dirty_regions.clear()
        await app._refresh_once(frozenset({"team", "mail"}))
        app.refresh_preview()
        await until(pilot, lambda: not app._preview_busy, "the preview refreshed")
        # An agent's state may move meanwhile (the subtitle says where it came from): then that
        # border line alone is repainted, never the panel.
        for panel in (conversation, preview):
            assert all(r.height == 1 for r in panel._dirty_regions), (panel, panel._dirty_regions)


async def test_refreshes_are_spaced_further_while_the_operator_types(hosted):
    from thrum_tui.app import REFRESH_MIN_SECONDS, TYPING_REFRESH_SECONDS, TYPING_SECONDS

    repo, _alice, _bob = hosted
    async with console(repo) as (app, pilot):
        assert app._refresh_pace() == REFRESH_MIN_SECONDS
        bar = app.query_one(ComposeBar)
        bar.focus()
        await pilot.press("h", "i")
        assert bar.value == "hi"
        assert app._refresh_pace() == TYPING_REFRESH_SECONDS
        now = bar.typed_at + TYPING_SECONDS + 0.01
        app.clock_mono = lambda: now  # the pause after the last key
        assert app._refresh_pace() == REFRESH_MIN_SECONDS

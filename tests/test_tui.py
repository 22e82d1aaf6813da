"""The console, driven like a user drives it: a real repo, real agents on the real CLI, and the
app in a Pilot hosting (or attached to) the engine those agents talk to."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from thrum_tui.engine_handle import operator_name
from thrum_tui.widgets.compose_bar import ComposeBar, parse_compose
from thrum_tui.widgets.conversation import Conversation
from thrum_tui.widgets.header_line import HeaderLine
from thrum_tui.widgets.team_table import TeamTable
from tui_helpers import OPERATOR, cli, console, notified, select_agent, type_and_send, until


def test_operator_name_from_git():
    assert operator_name("Ada Lovelace") == "ada_lovelace"
    assert operator_name("  J.-P. O'Neil ") == "j_p_o_neil"
    assert operator_name(None) == "operator_x"  # the fallback must differ from the role
    assert operator_name("Operator") == "operator_x"
    assert operator_name("王") == "operator_x"


def test_compose_parses_recipients_then_body():
    assert parse_compose("@bob @alice hello there") == (["@bob", "@alice"], "hello there")
    assert parse_compose("hello @bob") == ([], "hello @bob")
    # A body that starts with a mention: `\@` ends the recipients (walk bug 19).
    assert parse_compose("@bob \\@impl_div @decorators are done") == (
        ["@bob"],
        "@impl_div @decorators are done",
    )


async def test_team_table_shows_registered_agents(team):
    repo, _alice, _bob = team
    repo.run("daemon", "stop")
    async with console(repo) as (app, pilot):
        table = app.query_one(TeamTable)
        await until(pilot, lambda: {"alice", "bob"} <= set(table.names), "agents in the team table")
        assert table.names[0] == OPERATOR
        assert "in-process" in str(app.query_one(HeaderLine).render())
        assert table.row_text("alice").split()[1] == "alice" and "implementer" in table.row_text("alice")
        assert table.row_text("bob").split()[1] == "bob" and "reviewer" in table.row_text("bob")
        assert table.row_text(OPERATOR).split()[1:4] == ["you", f"(@{OPERATOR})", "here"]


async def test_compose_sends_to_an_agent(team):
    repo, _alice, bob = team
    repo.run("daemon", "stop")
    async with console(repo) as (app, pilot):
        await type_and_send(pilot, "@bob hello from the console")
        await until(pilot, lambda: app.query_one(ComposeBar).value == "", "compose bar cleared")
        inbox = await cli(bob, "inbox")
        assert [(m["author"], m["body"]["content"]) for m in inbox["messages"]] == [
            (OPERATOR, "hello from the console")
        ]


async def test_agent_message_appears_without_a_keypress(team):
    repo, _alice, bob = team
    repo.run("daemon", "stop")
    async with console(repo) as (app, pilot):
        table = app.query_one(TeamTable)
        await until(pilot, lambda: "bob" in table.names)
        table.move_cursor(row=table.names.index("bob"))
        conversation = app.query_one(Conversation)
        await until(pilot, lambda: conversation.agent == "bob", "bob's conversation")
        await cli(bob, "send", "hi boss", "--to", f"@{OPERATOR}")
        await until(
            pilot, lambda: "@bob → you  hi boss" in conversation.plain_text, "bob's message on screen"
        )
        # The operator's unread count rises in the header and in the operator's own row.
        await until(pilot, lambda: app.query_one(HeaderLine).needs_you == 1, "needs you: 1")


async def test_escape_sequences_in_an_agents_message_never_reach_the_terminal(team):
    """Textual writes a widget's text to the terminal as it is: an ESC in a body from an agent
    would clear the screen or write the clipboard (OSC 52). Every engine answer and every change
    the console shows passes through one filter; the whole screen is checked, not one widget."""
    from textual.geometry import Region

    repo, _alice, bob = team
    repo.run("daemon", "stop")
    async with console(repo) as (app, pilot):
        await select_agent(pilot, "bob")
        conversation = app.query_one(Conversation)
        await cli(bob, "send", "hi \x1b]52;c;ZXZpbA==\x07 \x1b[2J\rboss \x9b1m", "--to", f"@{OPERATOR}")
        shown = "hi ␛]52;c;ZXZpbA==␇ ␛[2J␍boss \\x9b1m"
        await until(
            pilot,
            lambda: shown in conversation.plain_text,
            "bob's message, its escapes visible",
            last=lambda: conversation.plain_text,
        )
        await until(pilot, lambda: notified(app, "␛[2J"), "the toast, its escapes visible")
        await pilot.pause()
        screen = ""
        for widget in app.screen.query("*"):
            if widget.size.area:
                strips = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
                screen += "".join(seg.text for strip in strips for seg in strip)
        assert "boss" in screen and not any(c in screen for c in "\x1b\x07\r\x9b")


async def test_unknown_recipient_is_refused_and_nothing_is_stored(team):
    repo, _alice, bob = team
    repo.run("daemon", "stop")
    async with console(repo) as (app, pilot):
        await type_and_send(pilot, "@nobody are you there")
        await until(pilot, lambda: notified(app, "unknown recipient: @nobody"), "an error notification")
        assert app.query_one(ComposeBar).value == "@nobody are you there"  # kept for fixing
        sent = await app.engine.call("message.sent", {})
        assert sent["messages"] == []
        assert (await cli(bob, "inbox", "--all"))["messages"] == []


async def test_attaches_to_a_running_daemon(team):
    repo, _alice, bob = team
    started = repo.run("daemon", "start")
    assert started.code == 0, started.err
    assert repo.daemon_pid() is not None
    async with console(repo) as (app, pilot):
        assert "attached" in str(app.query_one(HeaderLine).render())
        await until(pilot, lambda: "bob" in app.query_one(TeamTable).names)
        await type_and_send(pilot, "@bob via the daemon")
        await until(pilot, lambda: app.query_one(ComposeBar).value == "", "compose bar cleared")
        inbox = await cli(bob, "inbox")
        assert [m["body"]["content"] for m in inbox["messages"]] == ["via the daemon"]


def run_console(cwd, env: dict) -> subprocess.CompletedProcess:
    """`python -m thrum_tui` without a terminal (Textual then draws on stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "thrum_tui"],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")},
    )


def test_module_entry_point_outside_a_repo(tmp_path):
    proc = run_console(tmp_path, {**os.environ, "HOME": str(tmp_path)})
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: not inside a git repository")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_module_entry_point_before_init(make_repo):
    repo = make_repo()
    proc = run_console(repo.path, repo.env)
    assert proc.returncode == 1
    assert "run `thrum init`" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


async def test_the_first_frame_comes_before_the_engine_and_a_failed_start_is_one_error(team):
    """The console paints, then starts the engine it hosts (its start-up held the first paint
    back); an engine that cannot start ends the console with its reason, as before."""
    from thrum_engine.layout import Layout
    from thrum_engine.settings import load_settings
    from thrum_tui.app import ThrumApp
    from thrum_tui.engine_handle import InProcess, open_engine

    repo, _alice, _bob = team
    repo.run("daemon", "stop")
    layout = Layout.discover(str(repo.path))
    settings = load_settings(layout.config_file)
    os.makedirs(layout.socket_path)  # where the engine's socket belongs: it cannot start
    async with open_engine(layout, settings, OPERATOR) as engine:
        assert isinstance(engine, InProcess) and engine.engine is None  # not started by opening
        app = ThrumApp(engine, settings=settings)
        async with app.run_test() as pilot:
            await until(pilot, lambda: app.return_code is not None, "the console to give up")
        assert app.return_code == 1
        assert app.start_failure == f"the engine did not start: Is a directory: {layout.socket_path}"
    os.rmdir(layout.socket_path)

    os.makedirs(layout.socket_path)
    proc = await asyncio.to_thread(run_console, repo.path, repo.env)
    os.rmdir(layout.socket_path)
    assert proc.returncode == 1
    # (Textual draws on stderr when it is not a terminal: the error is the last line.)
    assert proc.stderr.endswith(f"Error: the engine did not start: Is a directory: {layout.socket_path}\n")


async def test_bindings_move_focus_and_q_quits(team):
    repo, _alice, _bob = team
    repo.run("daemon", "stop")
    async with console(repo) as (app, pilot):
        await pilot.press("i")
        assert isinstance(app.focused, ComposeBar)
        await pilot.press("escape")
        assert isinstance(app.focused, TeamTable)
        await pilot.press("q")
        await until(pilot, lambda: app.return_code is not None, "the app to exit")


def test_thrum_tui_outside_a_repo_says_what_to_do(tmp_path):
    """`thrum tui` hands over to the console, which refuses cleanly outside a git repository."""
    import subprocess
    import sys
    from pathlib import Path

    thrum = Path(sys.executable).parent / "thrum"
    cmd = [str(thrum)] if thrum.exists() else [sys.executable, "-m", "thrum_engine"]
    r = subprocess.run([*cmd, "tui"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1
    assert (
        r.stderr.startswith("Error: not inside a git repository") and len(r.stderr.strip().splitlines()) == 1
    )


async def test_an_agents_daemon_stop_stops_the_console_engine_and_never_kills_the_console(team):
    """The console held the engine lock for its whole life: an agent's `thrum daemon stop` stopped
    the engine, waited 10 s for the lock and SIGKILLed its holder, the console (walk A, 1). The lock
    goes with the engine now: the stop returns, the console lives and says so, and the next command
    starts a daemon."""
    from thrum_engine.daemon import control
    from thrum_engine.layout import Layout

    repo, alice, bob = team
    repo.run("daemon", "stop")
    async with console(repo) as (app, pilot):
        r = await asyncio.to_thread(alice.run, "daemon", "stop")
        assert r.code == 0 and r.out.startswith("✓ Engine stopped (pid "), r
        assert not control.lock_held(Layout.discover(str(repo.path)))
        alice.ok("send", "after the stop", "--to", "@bob")  # a daemon serves the agents now
        assert bob.json("inbox")["messages"][0]["body"]["content"] == "after the stop"
        await pilot.press("i")  # the console is still there and takes keys
        assert isinstance(app.focused, ComposeBar)

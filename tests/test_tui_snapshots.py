"""Snapshots of every console screen and dialog, stored as SVG under `snapshots/`.

Deterministic by construction: a frozen clock (the engine's `time.time`), a fixed repo name and
terminal size, agents and messages made through the engine the console hosts (so no daemon with a
real clock wrote anything), no cursor blink, and a plain `sh` in the one tmux pane shown. Update
after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update` and review
the SVGs in the diff."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from pytest_textual_snapshot import SVGImageExtension
from syrupy.location import PyTestLocation
from textual.widgets import DataTable

from conftest import enter
from thrum_engine.engine.core import Caller
from thrum_engine.layout import Layout
from thrum_engine.settings import load_settings
from thrum_tui.app import ThrumApp
from thrum_tui.engine_handle import open_engine
from thrum_tui.screens.confirm import Confirm
from thrum_tui.screens.feed import FeedScreen
from thrum_tui.screens.help import HelpScreen
from thrum_tui.screens.monitors import MonitorForm, MonitorsScreen
from thrum_tui.screens.new_agent import NewAgentScreen
from thrum_tui.screens.queue import QueueScreen
from thrum_tui.screens.teardown import TeardownScreen
from thrum_tui.screens.thread import ThreadScreen
from thrum_tui.widgets.conversation import Conversation
from thrum_tui.widgets.header_line import HeaderLine
from thrum_tui.widgets.pane_preview import PanePreview
from thrum_tui.widgets.side_lists import MonitorSummary, WorktreeSummary
from thrum_tui.widgets.team_table import TeamTable
from tui_helpers import OPERATOR, until

SNAPSHOTS = Path(__file__).resolve().parent.parent / "snapshots"
T0 = 1767348000.0  # 2026-01-02 10:00:00 UTC
pytestmark = pytest.mark.timeout(180)


class ThrumSVG(SVGImageExtension):
    """The plugin's SVG comparison, stored in the top-level `snapshots/<test module>/`."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(SNAPSHOTS / Path(test_location.filepath).stem)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


async def engine_call(handle, method: str, params: dict, caller: Caller) -> dict:
    """A call as someone other than the operator, on the engine's own loop (seeding only)."""
    future = asyncio.run_coroutine_threadsafe(handle.engine.call(method, params, caller), handle._loop)
    return await asyncio.wrap_future(future)


@pytest.fixture
def scene(make_repo, monkeypatch):
    """A repo with two agents in their worktrees and a conversation, all at fixed times."""
    repo = make_repo("repo")
    repo.ok("init")
    repo.run("daemon", "stop")
    repo.git("config", "user.name", "Ada Lovelace")
    trees = {name: repo.worktree(name) for name in ("alice", "bob")}
    enter(repo, monkeypatch)
    monkeypatch.setenv("THRUM_TMUX__SHELL", "sh")
    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    return repo, trees, clock


async def seed(handle, trees: dict, clock: Clock) -> None:
    await handle.call("agent.register", {"name": OPERATOR, "role": "operator", "kind": "user"})
    for name, role, module, intent in (
        ("alice", "implementer", "auth", "JWT middleware"),
        ("bob", "reviewer", "", "review queue"),
    ):
        await engine_call(
            handle,
            "agent.register",
            {
                "name": name,
                "role": role,
                "module": module,
                "runtime": "claude",
                "intent": intent,
                "start_session": True,
            },
            Caller(worktree=str(trees[name])),
        )
    script = [
        ("alice", [f"@{OPERATOR}"], "Claimed bd-12. Starting on the JWT middleware."),
        (OPERATOR, ["@alice"], "Keep the token TTL configurable, default 15m."),
        ("bob", ["@everyone"], "Schema changed on main, please rebase."),
        ("alice", ["@bob"], "Rebased; PR #41 is ready for review."),
        ("alice", [f"@{OPERATOR}"], "Tests green, 42 passed. Merge?"),
    ]
    for author, to, body in script:
        clock.now += 60
        await engine_call(handle, "message.send", {"to": to, "body": body}, Caller.trusted(author))
    clock.now += 90


@contextlib.asynccontextmanager
async def scene_app(scene, *, size=(160, 45), select: str | None = "alice", extra=None):
    repo, trees, clock = scene
    layout = Layout.discover(str(repo.path))
    settings = load_settings(layout.config_file)
    async with open_engine(layout, settings, OPERATOR) as handle:
        await seed(handle, trees, clock)
        if extra is not None:
            await extra(handle)
        app = ThrumApp(handle, settings=settings, clock=clock)
        async with app.run_test(size=size) as pilot:
            table = app.query_one(TeamTable)
            await until(pilot, lambda: {"alice", "bob"} <= set(table.names), "the team")
            if select:
                table.move_cursor(row=table.names.index(select))
                await until(pilot, lambda: app.query_one(Conversation).agent == select, "the conversation")
            await until(pilot, lambda: app.query_one(WorktreeSummary).row_count >= 2, "worktrees")
            if select == "dave":  # its shell pane has gone quiet at the prompt: idle, not working
                await until(pilot, lambda: (table.member("dave") or {}).get("state") == "idle", "dave idle")
            await settle(app, pilot)
            yield app, pilot


def measured(table: DataTable) -> bool:
    """A DataTable finishes a fill when its queue empties (its Idle handler: dimensions, scroll
    extent). The console's tables get their column widths before that (`widgets/tables.refill`;
    "featur" for "feature/alice" was a frame drawn before it, cached), so this only waits for the
    rest. Textual's own pending-work fields, read directly so that a Textual that renames them
    fails here (test_textual_compat pins the version)."""
    return not table._require_update_dimensions and not table._updated_cells and not table._new_rows


def settled(app) -> bool:
    """No refresh or worker pending, the preview showing the selected pane, every table measured."""
    return (
        app.refresher.idle
        and not app._preview_busy
        and app.query_one(PanePreview).shown_for == app.selected
        and not any(w.is_running for w in app.workers)
        and all(measured(t) for t in app.screen.query(DataTable))
    )


async def settle(app, pilot) -> None:
    """Every pending refresh and worker done, no cursor blinking."""
    for _ in range(3):
        await until(pilot, lambda: settled(app), "the app to settle")
        await pilot.pause()
    for widget in app.screen.query("Input"):
        widget.cursor_blink = False
    await pilot.pause()


async def shows(app, pilot, snapshot, screen_type=None) -> None:
    if screen_type is not None:
        await until(pilot, lambda: isinstance(app.screen, screen_type), screen_type.__name__)
    import os

    # A page may reload during settle's last pause (an engine event) and be filled but not yet
    # measured ("featur" for "feature/alice"): the screen is taken only in the same turn of the loop
    # as a check that it is settled.
    for _ in range(20):
        await settle(app, pilot)
        if settled(app):
            shot = app.export_screenshot()
            break
    else:
        raise AssertionError("the app never stayed settled long enough for its snapshot")
    if os.environ.get("SNAPDBG"):
        Path(
            os.environ["SNAPDBG"], f"{os.environ['PYTEST_CURRENT_TEST'].split('::')[1].split(' ')[0]}.svg"
        ).write_text(shot)
    stored = snapshot.use_extension(ThrumSVG)
    # syrupy records (and with --snapshot-update writes) on `==`; a mismatch (a rare flake's) is
    # reported as the rows that differ, as text
    if not stored == shot:  # noqa: SIM201
        want = ThrumSVG.dirname(test_location=snapshot.test_location)
        name = os.environ["PYTEST_CURRENT_TEST"].split("::")[1].split(" ")[0]
        path = Path(want, f"{name}.svg")
        old = svg_rows(path.read_text()) if path.exists() else []
        new = svg_rows(shot)
        diff = [
            f"row {i}: stored {a!r}\n        shown  {b!r}" for i, (a, b) in enumerate(zip(old, new)) if a != b
        ]
        raise AssertionError("the screen differs from its snapshot:\n" + "\n".join(diff[:12]))


def svg_rows(svg: str) -> list[str]:
    """The text of each screen row of an exported screenshot."""
    import html
    import re

    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), html.unescape(m.group(3))))
    return [
        "".join(t for _, t in sorted(parts)).replace("\xa0", " ").rstrip()
        for _, parts in sorted(rows.items())
    ]


async def test_main_screen(scene, snapshot):
    async with scene_app(scene) as (app, pilot):
        assert "Tests green" in app.query_one(Conversation).plain_text
        await shows(app, pilot, snapshot)


async def test_main_screen_operator_inbox_light_theme(scene, snapshot):
    async with scene_app(scene, select=None) as (app, pilot):
        app.theme = "thrum-light"
        await shows(app, pilot, snapshot)


async def test_main_screen_narrow(scene, snapshot):
    async with scene_app(scene, size=(100, 30)) as (app, pilot):
        assert not app.query_one(MonitorSummary).display or app.query_one(MonitorSummary).region.width == 0
        await shows(app, pilot, snapshot)


@pytest.mark.parametrize("size", [(80, 24), (60, 20)], ids=["80x24", "60x20"])
async def test_main_screen_small_terminals(scene, snapshot, size):
    """The left column gives way, the conversation keeps the width, the header keeps "needs you"."""
    async with scene_app(scene, size=size) as (app, pilot):
        assert app.query_one("#left").region.width <= 26
        assert "needs you" in app.query_one(HeaderLine).render().plain
        await shows(app, pilot, snapshot)


async def test_help(scene, snapshot):
    async with scene_app(scene) as (app, pilot):
        await pilot.press("question_mark")
        await shows(app, pilot, snapshot, HelpScreen)


async def test_feed(scene, snapshot):
    async with scene_app(scene) as (app, pilot):
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FeedScreen) and len(app.screen.messages) == 5)
        await shows(app, pilot, snapshot, FeedScreen)


async def test_find(scene, snapshot):
    async with scene_app(scene) as (app, pilot):
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, FeedScreen))
        await pilot.press(*"rebase")
        await until(pilot, lambda: len(app.screen.messages) == 2)
        await shows(app, pilot, snapshot, FeedScreen)


@pytest.mark.parametrize("size", [(160, 45), (80, 24), (60, 20)], ids=["160x45", "80x24", "60x20"])
async def test_thread(scene, snapshot, size):
    """The message detail view: each message of the thread whole."""
    async with scene_app(scene, size=size) as (app, pilot):
        conversation = app.query_one(Conversation)
        first = conversation.messages[0]
        await app.engine.call(
            "message.reply", {"message_id": first["message_id"], "body": "Great, ping me at review."}
        )
        await until(pilot, lambda: "[+1 in thread]" in conversation.plain_text, "the folded thread")
        conversation.focus()
        conversation.highlighted = 0
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ThreadScreen) and len(app.screen.views) == 2)
        await shows(app, pilot, snapshot, ThreadScreen)


async def test_new_agent_dialog(scene, snapshot):
    async with scene_app(scene) as (app, pilot):
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewAgentScreen))
        await pilot.press(*"carol")
        await shows(app, pilot, snapshot, NewAgentScreen)


async def with_managed_agent(handle) -> None:
    """dave: a worktree thrum made, with a tmux session running `sh` (deterministic prompt)."""
    await handle.call(
        "worktree.create", {"name": "dave", "agent": "dave", "role": "implementer", "runtime": "shell"}
    )


async def test_teardown_dialog(scene, snapshot):
    async with scene_app(scene, select="dave", extra=with_managed_agent) as (app, pilot):
        await until(pilot, lambda: any("dave" in w["agents"] for w in app.worktrees))
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, TeardownScreen) and app.screen.audited)
        await shows(app, pilot, snapshot, TeardownScreen)


async def test_queue_dialog(scene, snapshot):
    async with scene_app(scene, select="dave", extra=with_managed_agent) as (app, pilot):
        await until(pilot, lambda: app.selected_session() == "dave")
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        await shows(app, pilot, snapshot, QueueScreen)


async def test_kill_confirmation(scene, snapshot):
    async with scene_app(scene, select="dave", extra=with_managed_agent) as (app, pilot):
        await until(pilot, lambda: app.selected_session() == "dave")
        await pilot.press("K")
        await shows(app, pilot, snapshot, Confirm)


async def with_monitor(handle) -> None:
    await handle.call(
        "monitor.start",
        {
            "name": "ci-alert",
            "match": "ALERT|FAILED",
            "to": f"@{OPERATOR}",
            "argv": ["tail", "-F", "build.log"],
            "debounce": 30,
        },
    )


async def test_monitors_screen(scene, snapshot):
    async with scene_app(scene, extra=with_monitor) as (app, pilot):
        await pilot.press("m")
        await until(
            pilot, lambda: isinstance(app.screen, MonitorsScreen) and app.screen.rules and app.screen.events
        )
        await shows(app, pilot, snapshot, MonitorsScreen)


async def test_monitor_form_new(scene, snapshot):
    async with scene_app(scene) as (app, pilot):
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MonitorsScreen))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, MonitorForm))
        form = app.screen
        form.query_one("#m-match").value = "(unclosed"
        await shows(app, pilot, snapshot, MonitorForm)


async def test_monitor_form_edit(scene, snapshot):
    async with scene_app(scene, extra=with_monitor) as (app, pilot):
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MonitorsScreen) and app.screen.rules)
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, MonitorForm))
        app.screen.query_one("#m-sample").value = "step 3 FAILED"
        await shows(app, pilot, snapshot, MonitorForm)


async def test_command_palette(scene, snapshot):
    from textual.command import CommandPalette

    async with scene_app(scene) as (app, pilot):
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"agent")
        await until(pilot, lambda: app.screen.query_one("CommandList").option_count >= 5, "matches listed")
        await pilot.pause(0.5)  # the palette adds matches as its search yields them
        await shows(app, pilot, snapshot, CommandPalette)

"""The console's main screen: the team (with worktree and monitor summaries) on the left, the
conversation with the highlighted agent and its live pane on the right, compose at the bottom.

Engine calls run as workers; engine changes arrive as one coalesced `EngineChanged` per burst, so
a hundred messages a second cost one refresh at a time (`coalesce.py`), never a frozen keystroke."""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass, replace
from typing import ClassVar

from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer

from thrum_engine.durations import human_age
from thrum_tui.agent_actions import AgentActions
from thrum_tui.coalesce import Coalescer, Throttle
from thrum_tui.commands import ThrumCommands
from thrum_tui.engine_handle import OPERATOR_ROLE, Change, EngineCallFailed, EngineHandle
from thrum_tui.messages import EngineChanged
from thrum_tui.screens.base import FormDialog, LiveView
from thrum_tui.snippet import one_line
from thrum_tui.theme_files import DEFAULT_THEME, load_themes
from thrum_tui.widgets.compose_bar import ComposeBar, parse_compose
from thrum_tui.widgets.conversation import Conversation, merge_conversation
from thrum_tui.widgets.header_line import HeaderLine
from thrum_tui.widgets.pane_preview import PanePreview
from thrum_tui.widgets.review_queue import ReviewQueue
from thrum_tui.widgets.side_lists import MonitorSummary, WorktreeSummary
from thrum_tui.widgets.team_table import NEEDS_HUMAN, TeamTable, attention_order

CONVERSATION_PAGE = 100
ALL_PARTS = frozenset({"team", "mail", "side"})
MAIL = frozenset({"mail"})
PREVIEW_SECONDS = 0.25
# Refreshes (and page reloads) start at most this often, however fast events arrive.
REFRESH_MIN_SECONDS = 0.5
# More mail than this in one burst becomes one summary toast; bursts are told at most this often.
TOASTS_PER_BURST = 2
TOAST_SECONDS = 3.0
TYPING_SECONDS = 1.5  # a key in the compose bar this recently: hold toasts until the pause
# ... and space the main screen's refreshes this far apart: a refresh redraws the team rows and the
# conversation (tens of ms under a busy team), and a key that lands meanwhile waits for that frame
# (bench/console.py: the real-terminal keystroke p95).
TYPING_REFRESH_SECONDS = 2.0
# Ages ("idle 4m") and what produces no engine event (monitor rules, worktrees) refresh this often.
TICK_SECONDS = 5.0
# Actions on the main screen's selection (agent, message, pane): on any other screen they would act
# on what the user cannot see, so there they are off and out of the footer.
MAIN_SCREEN_ACTIONS = frozenset(
    {
        "new_agent",
        "teardown",
        "attach",
        "zoom",
        "queue",
        "reply",
        "compose",
        "needs_you",
        "restart_agent",
        "kill_session",
        "interrupt",
        "focus_team",
        "focus_panel",
        "filter_team",
        "jump",
        "approve",
        "deny",
        "relaunch",
        "review",
    }
)
# The app's pages, opened from anywhere but a form (where their letters are typed into a field).
PAGE_ACTIONS = frozenset(
    {"monitors", "feed", "sync_page", "find", "help", "worktrees", "schedules", "asks", "quit"}
)
# Number keys focus the main screen's panels, as lazygit's do (walk, missing 9).
PANELS = ("team", "conversation", "preview", "compose")
# Team filters by state, as Agent Deck's: the key again shows everyone.
STATE_FILTERS = {
    "exclamation_mark": ("blocked", frozenset({"blocked", "stuck"})),
    "at": ("working", frozenset({"working"})),
    "number_sign": ("idle", frozenset({"idle", "online"})),
    "dollar_sign": ("offline", frozenset({"offline", "exited", "no session"})),
}


@dataclass(frozen=True)
class NeedsYou:
    """What needs the operator: the header counts it and `g` jumps to it, from this one value (`g`
    once looked only at team rows, and said "nothing needs you" under `needs you: 3` when the mail
    came from a monitor or @system: walk A, bug 6)."""

    blocked: tuple[str, ...] = ()  # agents a human must act on (NEEDS_HUMAN), in attention order
    writers: tuple[str, ...] = ()  # agents with unread mail to you, in attention order
    unread: int = 0  # every unread message to you: agents', monitors', @system's, schedules'
    reviews: int = 0  # reviews waiting for you

    @property
    def count(self) -> int:
        return len(self.blocked) + self.unread + self.reviews


def needs_you(operator: str, members: list[dict], unread_from: dict[str, int], unread: int) -> NeedsYou:
    agents = [m for m in attention_order(operator, members) if m["name"] != operator]
    return NeedsYou(
        blocked=tuple(m["name"] for m in agents if m["state"] in NEEDS_HUMAN),
        writers=tuple(m["name"] for m in agents if unread_from.get(m["name"])),
        unread=unread,
    )


def on_screen(widget: Widget, screen: Screen) -> bool:
    """`widget` is (still) on `screen`. An event about a widget arrives after the fact: `?` then
    escape, fast, closed the help dialog before its focus event bubbled up here, and the widget's
    `screen` raised NoScreen (walk, bug 3). Its ancestors never raise: detached, it has none."""
    return screen in widget.ancestors


def stream_mark(path: str) -> tuple[int, int] | None:
    """(size, mtime) of a pane's stream file: it changes exactly when the pane printed something."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class ThrumApp(AgentActions):
    TITLE = "thrum"
    CSS_PATH = "thrum.tcss"
    COMMANDS = App.COMMANDS | {ThrumCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_agent", "new agent"),
        Binding("t", "teardown", "teardown"),
        Binding("a", "attach", "attach"),
        Binding("z", "zoom", "zoom", show=False),
        Binding("c", "queue", "queue"),
        Binding("m", "monitors", "monitors"),
        Binding("f", "feed", "feed"),
        Binding("S", "sync_page", "sync", show=False),
        Binding("r", "reply", "reply"),
        Binding("slash", "find", "find"),
        Binding("question_mark", "help", "help"),
        Binding("i", "compose", "compose", show=False),
        Binding("g", "needs_you", "needs you", show=False),
        Binding("R", "restart_agent", "restart", show=False),
        Binding("K", "kill_session", "kill", show=False),
        Binding("y", "approve", "approve", show=False),
        Binding("N", "deny", "deny", show=False),
        Binding("L", "relaunch", "relaunch", show=False),
        Binding("v", "review", "review", show=False),
        Binding("w", "worktrees", "worktrees", show=False),
        Binding("D", "schedules", "schedules", show=False),
        Binding("H", "asks", "asks & held", show=False),
        Binding("ctrl+c", "interrupt", "interrupt", show=False, priority=True),
        Binding("escape", "focus_team", "team", show=False),
        *(Binding(str(i), f"focus_panel('{panel}')", panel, show=False) for i, panel in enumerate(PANELS, 1)),
        *(
            Binding(key, f"filter_team('{key}')", label, show=False)
            for key, (label, _) in STATE_FILTERS.items()
        ),
        Binding("apostrophe", "jump", "jump to agent", show=False),
        Binding("q", "quit", "quit"),
    ]

    def __init__(
        self,
        engine: EngineHandle,
        *,
        settings=None,
        theme: str | None = None,
        clock=time.time,
        freeze_heap: bool = False,
    ) -> None:
        """`settings` None: the engine handle's, once it is ready (loaded after the first frame);
        `theme` is what the first frame is drawn in meanwhile (the settings' when given)."""
        super().__init__()
        self.engine = engine
        self.freeze_heap = freeze_heap
        self.start_failure: str | None = None  # why the hosted engine could not start
        self._heap_holders: set[int] = set()  # screens shown with their data frozen (hold_heap)
        self.operator = engine.operator
        self.settings = settings if settings is not None else getattr(engine, "settings", None)
        self.clock = clock
        self._selected: str | None = None
        self.worktrees: list[dict] = []
        self.runtimes: list[str] = []
        self.default_runtime = "claude"
        self._worktrees_at = 0.0
        self._members: list[dict] = []
        self._unread_from: dict[str, int] = {}
        self._preview_busy = False
        self._preview_mark: tuple | None = None
        self._preview_settled = False
        self._unannounced: list[Change] = []
        self._toast_timer = None
        self.clock_mono = time.monotonic
        self.refresher = Coalescer(
            self._refresh_reporting,
            start=lambda loop: self.run_worker(loop, group="refresh", exit_on_error=False),
            min_seconds=self._refresh_pace,
            clock=self.clock_mono,
        )
        self._page_refresh = Throttle(
            self._refresh_page,
            set_timer=self.set_timer,
            min_seconds=REFRESH_MIN_SECONDS,
            clock=self.clock_mono,
        )
        self._theme_ready = False
        for theme_file in load_themes():
            self.register_theme(theme_file)
        wanted = getattr(getattr(self.settings, "console", None), "theme", None) or theme
        self.theme = wanted if wanted in self.available_themes else DEFAULT_THEME
        self._theme_ready = True
        self.main_screen: Screen = Screen()
        self.needs = NeedsYou()  # what the header's "needs you" counts and `g` jumps to
        self._focus_before_compose: Widget | None = None  # where a successful send returns focus
        self._review_history: dict[str, list[dict]] = {}  # agent -> its review events (conversation)

    @property
    def selected(self) -> str | None:
        """The highlighted agent: the conversation and the pane show it, and a compose line
        without `@name` goes to it (the bar says so)."""
        return self._selected

    @selected.setter
    def selected(self, name: str | None) -> None:
        self._selected = name
        if self.main_screen.is_mounted:
            for bar in self.main_screen.query(ComposeBar):
                bar.address_to(name if name != self.operator else None)

    # -- layout --
    def compose(self) -> ComposeResult:
        yield HeaderLine(
            os.path.basename(self.engine.layout.repo), self.engine.host, self.operator, id="header"
        )
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield TeamTable(self.operator, id="team")
                yield WorktreeSummary("WORKTREES", id="worktrees")
                yield ReviewQueue("REVIEW", id="reviews")
                yield MonitorSummary("MONITORS", id="monitors")
            with Vertical(id="right"):
                yield Conversation(self.operator, id="conversation")
                yield PanePreview(id="preview")
        yield ComposeBar(id="compose")
        yield Footer()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast is plain text, whoever asks (a screen's `notify` passes markup=True): its words
        are the engine's, git's or an agent's ("[/]" in a message's snippet raised in the toast's
        render, "! [rejected]" lost its word), and the console styles no toast with markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def on_mount(self) -> None:
        # The main screen's widgets are reached through it, not `self.query_one`, which searches
        # whichever screen is on top (a dialog has no team table).
        self.main_screen = self.screen
        self.engine.listen(self._on_engine_changes)
        self.main_screen.query_one(TeamTable).focus()
        self.set_interval(PREVIEW_SECONDS, self.refresh_preview)
        self.set_interval(TICK_SECONDS, lambda: self.request_refresh(at_once=False))
        # The first frame goes out before the hosted engine starts: its start-up (imports, the
        # store, the socket) would otherwise hold the console's first paint back.
        self.call_after_refresh(self.start_up)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        top = self.screen_stack[-1] if self.screen_stack else None
        if isinstance(top, FormDialog):
            # A form's footer is its own keys (ctrl+s, escape); a letter there is typed, not a page.
            return action not in MAIN_SCREEN_ACTIONS and action not in PAGE_ACTIONS
        return not (action in MAIN_SCREEN_ACTIONS and top is not None and top is not self.main_screen)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Remember the main screen's last focus outside the compose bar: a send returns there."""
        widget = event.widget
        if not isinstance(widget, ComposeBar) and on_screen(widget, self.main_screen):
            self._focus_before_compose = widget

    def _composing_done(self) -> None:
        """After a successful send, focus goes back where it was before composing, so the keys
        that follow are panel keys again (walk A, bug 10: `2` then enter sent "2" to the agent).
        Unless the operator has moved on meanwhile."""
        screen = self.main_screen
        if screen.focused is not None and not isinstance(screen.focused, ComposeBar):
            return
        back = self._focus_before_compose
        if back is None or not back.is_mounted or not back.display or not back.focusable:
            back = screen.query_one(TeamTable)
        screen.set_focus(back)

    def on_resize(self, event: events.Resize) -> None:
        # The event's size: this handler runs before App's own, which is what updates `self.size`,
        # so reading that applied each resize one resize late (walk A, bug 7).
        self.set_class(event.size.width < 120, "-narrow")
        self.set_class(event.size.width < 90, "-tiny")

    def watch_theme(self, theme: str) -> None:
        """A theme picked in the palette is remembered in `.thrum/config.json`."""
        if not self._theme_ready or self.settings is None or self.settings.console.theme == theme:
            return
        from thrum_engine.settings import update_config_file

        self.settings.console.theme = theme
        try:
            update_config_file(self.engine.layout.config_file, {"console": {"theme": theme}})
        except OSError as exc:
            self.notify(f"theme not remembered: {exc}", severity="warning")

    # -- engine -> screen --
    def _on_engine_changes(self, changes: list[Change]) -> None:
        """Called on the engine's thread: only thread-safe work here (post a message).

        Traffic that touches neither the operator, the selected agent nor the team's make-up
        changes nothing on the main screen: it only wakes an open page (the feed), so a busy team
        does not cost the operator a redraw per message."""
        me, selected = self.operator, self.selected
        mail: list[Change] = []
        parts: set[str] = set()
        for c in changes:
            if c.kind == "message.create":
                if c.author != me and me in c.recipients:
                    mail.append(c)
                    parts.add("mail")
                elif c.author in (me, selected) or selected in c.recipients:
                    parts.add("mail")
            elif c.kind in ("message.seen", "message.read"):
                if c.author != me and c.author == selected:
                    parts.add("mail")  # delivery marks on what you sent
            elif c.is_message:
                parts.add("mail")  # edits, deletes, purges
            elif c.kind.startswith("review."):
                parts.add("review")  # a request, a verdict, a merge: the review queue
            else:
                parts.update(("team", "mail"))  # agents, sessions, resets: the team changed
        self.post_message(EngineChanged(mail, parts=frozenset(parts)))

    def on_engine_changed(self, message: EngineChanged) -> None:
        # While the app closes, Textual empties the screen stack and then still dispatches what
        # was queued: a change arriving then has nothing to refresh (and `self.screen` raises).
        if not self.main_screen.is_mounted or not self.screen_stack:
            return
        if message.mail:
            self.announce(message.mail)
        if message.parts:
            self.request_refresh(message.parts, at_once=False)
        if self._live_page() is not None:
            self._page_refresh()

    def _live_page(self) -> LiveView | None:
        """The page on top if it follows the engine (feed, thread, monitors, queue); None while
        the app is closing (no screen left)."""
        top = self.screen_stack[-1] if self.screen_stack else None
        return top if isinstance(top, LiveView) else None

    def _refresh_page(self) -> None:
        """The page on top (feed, thread, monitors, queue) reloads: at most every REFRESH_MIN_SECONDS."""
        if (page := self._live_page()) is not None:
            page.refresh_from_engine()

    def announce(self, mail: list[Change]) -> None:
        """Tell the operator about new mail: the first piece at once (toast + bell); whatever
        follows within TOAST_SECONDS waits and is told as one summary, so a flood of mail costs
        one toast every few seconds, not a redraw of the whole screen per message."""
        self._unannounced += mail
        if self._toast_timer is None:
            self._flush_announcements()

    def _flush_announcements(self) -> None:
        if self._unannounced and self._typing():
            # Mid-sentence: a toast now would cost the next keystrokes a redraw; tell it at the pause.
            self._toast_timer = self.set_timer(TYPING_SECONDS, self._flush_announcements)
            return
        mail, self._unannounced = self._unannounced, []
        if not mail:
            self._toast_timer = None
            return
        if len(mail) <= TOASTS_PER_BURST:
            for c in mail:
                self.notify(one_line(c.snippet, 120) or "(no text)", title=f"@{c.author} → you")
        else:
            authors = list(dict.fromkeys("@" + c.author for c in mail))
            self.notify(
                ", ".join(authors[:5]) + (" …" if len(authors) > 5 else ""),
                title=f"{len(mail)} new messages for you",
            )
        if self.settings is not None and self.settings.console.bell:
            self.bell()
        self._toast_timer = self.set_timer(TOAST_SECONDS, self._flush_announcements)

    @work(group="engine", exit_on_error=False)
    async def start_up(self) -> None:
        try:
            await self.engine.ready()
        except EngineCallFailed as exc:  # nothing to show without an engine: say why, on exit
            self.start_failure = exc.message
            self.exit(return_code=1)
            return
        if self.settings is None:  # loaded as the engine started
            self.settings = getattr(self.engine, "settings", None)
        try:
            role = self.settings.console.operator_role if self.settings is not None else OPERATOR_ROLE
            await self.engine.call("agent.register", {"name": self.operator, "role": role, "kind": "user"})
            r = await self.engine.call("runtime.list", {})
            self.runtimes = [rt["name"] for rt in r["runtimes"]]
            self.default_runtime = r["default"]
            info = await self.engine.call("engine.info", {})
            self.show_branch(info)
            self.show_repairs(info.get("projection_recovered"))
        except EngineCallFailed as exc:
            self.notify(f"could not register you as @{self.operator}: {exc.message}", severity="error")
        if self.freeze_heap:
            # Everything alive after start-up (imports, widgets, the hosted engine's caches) lives as
            # long as the console: frozen, a full collection no longer walks it. Unfrozen, that walk
            # was an ~80 ms stall every few keystrokes on a big screen (bench/review.py).
            gc.collect()
            gc.freeze()
        self.request_refresh()

    def hold_heap(self, owner: object) -> None:
        """A screen's big data (a 5,000-line review: its rows, highlights and strips) just loaded:
        frozen out of the collector while it is shown. Collected, it was a ~15 ms full collection
        every ~15 keystrokes on that screen, the keys' p95 (bench/review.py)."""
        if self.freeze_heap:
            self._heap_holders.add(id(owner))
            gc.freeze()

    def release_heap(self, owner: object) -> None:
        """That screen closed: everything back into the collector, what became garbage collected
        once, and what lives on frozen again (as after start-up), a second after the last such
        screen went (one full collection then, none over that heap after; a screen opened again
        meanwhile puts it off until that one closes)."""
        if self.freeze_heap:
            self._heap_holders.discard(id(owner))
            self.set_timer(1.0, self._refreeze)

    def _refreeze(self) -> None:
        if self._heap_holders:
            return
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def show_branch(self, info: dict) -> None:
        """The header's `repo@branch` (walk A, bug 11: it showed the repo alone). An engine that
        does not say (an older daemon) leaves the repo alone; None from it is a detached HEAD."""
        if "branch" in info:
            self.main_screen.query_one(HeaderLine).branch = info["branch"] or ""

    def show_repairs(self, recovered: dict | None) -> None:
        """The engine found its projection unreadable and rebuilt it from the journal: say so, once
        as a toast and in the header until `thrum doctor rebuild` clears the record."""
        if not recovered:
            return
        when = str(recovered.get("at", ""))[5:16].replace("T", " ")
        self.main_screen.query_one(HeaderLine).notice = f"projection rebuilt {when}".rstrip()
        self.notify(
            f"{recovered.get('reason', 'unreadable')}; moved to {recovered.get('moved_to', '?')} and rebuilt "
            "from the journal (`thrum doctor` for details)",
            title="The message store was repaired",
            severity="warning",
            timeout=10,
        )

    def _typing(self) -> bool:
        """A key went into the compose bar within TYPING_SECONDS."""
        bars = self.main_screen.query(ComposeBar) if self.main_screen.is_mounted else ()
        return any(self.clock_mono() - bar.typed_at < TYPING_SECONDS for bar in bars)

    def _refresh_pace(self) -> float:
        """Seconds between the main screen's refreshes: longer while the operator is typing."""
        return TYPING_REFRESH_SECONDS if self._typing() else REFRESH_MIN_SECONDS

    def request_refresh(self, parts: frozenset[str] = ALL_PARTS, *, at_once: bool = True) -> None:
        """Refresh the main screen's `parts` ("team", "mail", "side"), coalesced by `refresher`:
        under a flood of events the screen stays current without the redraws starving keystrokes
        (or the engine's thread). `at_once` False (engine events, the tick): no sooner than the
        refresh interval after the last; what the operator did shows at once."""
        self.refresher.request(parts, at_once=at_once)

    async def _refresh_reporting(self, parts: frozenset[str]) -> None:
        header = self.main_screen.query_one(HeaderLine) if self.main_screen.is_mounted else None
        try:
            await self._refresh_once(parts)
        except EngineCallFailed as exc:
            if exc.kind == "unavailable" and header is not None:
                # The header says it (attached: whether the daemon is being started again); a toast
                # per refresh would bury the screen while the engine is away.
                down = getattr(self.engine, "down", "") or "not answering"
                header.host = f"{self.engine.host}, {down}"
            else:
                self.notify(exc.message, severity="error")
            return
        if header is not None:
            header.host = self.engine.host

    async def _refresh_once(self, parts: frozenset[str] = ALL_PARTS) -> None:
        """Only what changed: mail needs the inbox (and patches the team's unread counts in
        place), the team's make-up needs `team.list`, the side panels refresh on the tick."""
        if "team" in parts or not self._members:
            self._members = (await self.engine.call("team.list", {"all": True}))["members"]
        if "review" in parts:
            self._review_history.clear()
        # peek: showing a message marks it seen, not read -- reading stays an explicit act.
        inbox = await self.engine.call("message.inbox", {"peek": True, "page_size": CONVERSATION_PAGE})
        unread_from = self._unread_from = (await self.engine.call("team.unread_from", {}))["unread_from"]
        members = self._members
        for m in members:
            if m["name"] == self.operator:
                m["unread"] = inbox["unread"]
        table = self.main_screen.query_one(TeamTable)
        table.show(members, unread_from)
        self.needs = replace(
            needs_you(self.operator, members, unread_from, inbox["unread"]), reviews=self.needs.reviews
        )
        self.main_screen.query_one(HeaderLine).needs_you = self.needs.count
        if "team" in parts:
            self.main_screen.query_one(ComposeBar).set_addresses(
                [m["name"] for m in members], [m["role"] for m in members]
            )
        if self.selected is None:
            self.selected = table.selected
        await self._show_conversation(inbox["messages"])
        if "review" in parts:
            await self._refresh_reviews()
        if "side" in parts or "mail" in parts:
            # An ask is mail, and so is the reply that answers it: the header's `asks:` follows the
            # same events as "needs you" (it waited for the side panels' 5 s tick: walk, bug 11).
            await self._refresh_asks()
        if "side" in parts:
            sync = await self.engine.call("sync.status", {})
            self.main_screen.query_one(HeaderLine).sync = sync["label"]
            monitors = await self.engine.call("monitor.list", {"all": True})
            self.main_screen.query_one(MonitorSummary).show(monitors["monitors"])
            if (
                self.clock() - self._worktrees_at >= TICK_SECONDS or not self._worktrees_at
            ):  # git status per tree
                self._worktrees_at = self.clock()
                self.worktrees = (await self.engine.call("worktree.list", {}))["worktrees"]
                self.show_branch(await self.engine.call("engine.info", {}))  # a checkout since
                self.main_screen.query_one(WorktreeSummary).show(self.worktrees)
                await self._refresh_reviews()

    async def _show_conversation(self, inbox: list[dict] | None = None) -> None:
        agent = self.selected
        messages: list[dict] = (
            inbox
            if inbox is not None
            else (await self.engine.call("message.inbox", {"peek": True, "page_size": CONVERSATION_PAGE}))[
                "messages"
            ]
        )
        sent, reviews = [], []
        if agent and agent != self.operator:
            sent = (await self.engine.call("message.sent", {"to": agent, "limit": CONVERSATION_PAGE}))[
                "messages"
            ]
            if agent not in self._review_history:  # cached until a review event comes
                self._review_history[agent] = (
                    await self.engine.call("review.history", {"agent": agent, "limit": CONVERSATION_PAGE})
                )["events"]
            reviews = self._review_history[agent]
        if agent != self.selected:
            return  # the selection moved while we fetched; its own refresh follows
        self.main_screen.query_one(Conversation).show(
            agent,
            merge_conversation(self.operator, agent, messages, sent, reviews),
            self.main_screen.query_one(TeamTable).member(agent),
        )

    def on_team_table_agent_selected(self, message: TeamTable.AgentSelected) -> None:
        if message.name != self.selected:
            self.selected = message.name
            for bar in self.main_screen.query(ComposeBar):  # none while the app shuts down
                bar.reply(None)
            self.request_refresh(MAIL)
            self.refresh_preview()

    def on_team_table_agent_opened(self, message: TeamTable.AgentOpened) -> None:
        """Enter: this agent's mail to you counts as read, and the conversation takes focus."""
        self.selected = message.name
        self.main_screen.query_one(Conversation).focus()
        self.mark_read(message.name)

    @work(group="read", exit_on_error=False)
    async def mark_read(self, agent: str) -> None:
        inbox = await self.engine.call("message.inbox", {"peek": True, "unread": True, "page_size": 1000})
        ids = [
            m["message_id"]
            for m in inbox["messages"]
            if agent == self.operator or m["author"] == agent or m.get("broadcast")
        ]
        if ids:
            await self.engine.call("message.read", {"message_ids": ids})
            self.request_refresh(MAIL)

    # -- the pane preview --
    def selected_member(self) -> dict | None:
        return self.main_screen.query_one(TeamTable).member(self.selected)

    def selected_session(self) -> str | None:
        m = self.selected_member()
        return m.get("session") if m else None

    def refresh_preview(self) -> None:
        if self._preview_busy or not self.screen_stack or self.screen_stack[-1] is not self.main_screen:
            return  # hidden behind a dialog, or shutting down
        self._preview_busy = True
        self._preview_worker()

    @work(group="preview", exit_on_error=False)
    async def _preview_worker(self) -> None:
        try:
            preview = self.main_screen.query_one(PanePreview)
            session, who = self.selected_session(), self.selected
            if who is None:
                return  # nothing selected yet: the first refresh selects
            preview.shown_for = who
            if session is None:
                preview.show(None, None, self._no_session_note(who))
                return
            # Driven by the engine's stream of that pane (pipe-pane output): capture only when it
            # grew, plus once more on the next tick so the last output drawn is never missed.
            mark = stream_mark(os.path.join(self.engine.layout.var, "panes", f"{session}.log"))
            if mark is not None and preview.session == session and mark == self._preview_mark:
                if self._preview_settled:
                    return
                self._preview_settled = True
            else:
                self._preview_mark, self._preview_settled = mark, False
            lines = self.settings.console.preview_lines if self.settings is not None else 200
            try:
                r = await self.engine.call("tmux.capture", {"session": session, "lines": lines})
            except EngineCallFailed as exc:
                preview.show(None, None, exc.message)
                return
            if self.selected_session() == session:
                preview.show(session, r["lines"])
        finally:
            self._preview_busy = False

    def _no_session_note(self, who: str) -> str:
        """What the preview says where there is no pane, with the key that gives it one: L
        launches an agent in its worktree (a killed one said "n creates an agent", a new agent
        under the same name: walk A, bug 12)."""
        if who == self.operator:
            return "you have no pane: this is your inbox"
        m = self.selected_member() or {}
        if m.get("worktree"):
            return "no tmux session for this agent: L launches it in its worktree"
        return "no tmux session for this agent, and no worktree to launch it in"

    # -- screen -> engine --
    def on_compose_bar_expand(self, message: ComposeBar.Expand) -> None:
        from thrum_tui.screens.compose import ComposeDialog

        bar = self.main_screen.query_one(ComposeBar)
        reply = bar.reply_to
        heading = f"Reply to @{reply['author']}" if reply else "Compose"

        def done(text: str | None) -> None:
            bar.keep_draft(message.text if text is None else text)  # until it is sent
            if text is None or not text.strip():
                return
            if reply is not None:
                self.on_compose_bar_send(ComposeBar.Send([], text.strip(), reply["message_id"]))
            else:
                self.on_compose_bar_send(ComposeBar.Send(*parse_compose(text), None))

        self.push_screen(ComposeDialog(message.text, heading=heading), done)

    def on_compose_bar_send(self, message: ComposeBar.Send) -> None:
        if message.reply_to:
            self.send_reply(message.reply_to, message.body)
            return
        to = message.to
        if not to and self.selected and self.selected != self.operator:
            to = [f"@{self.selected}"]
        if not to:
            self.notify("start with @name (or highlight an agent) to say who gets it", severity="error")
            return
        if not message.body:
            self.notify("nothing to send: write a message after the recipients", severity="error")
            return
        self.send_message(to, message.body)

    @work(group="send", exit_on_error=False)
    async def send_message(self, to: list[str], body: str) -> None:
        try:
            result = await self.engine.call("message.send", {"body": body, "to": to})
        except EngineCallFailed as exc:
            self.notify(exc.message, title="not sent", severity="error")
            return
        bar = self.main_screen.query_one(ComposeBar)
        bar.value, bar.draft = "", None
        self._composing_done()
        self.notify(f"sent to {', '.join('@' + r for r in result['recipients']) or 'nobody'}", timeout=2)

    @work(group="send", exit_on_error=False)
    async def send_reply(self, message_id: str, body: str) -> None:
        try:
            await self.engine.call("message.reply", {"message_id": message_id, "body": body})
        except EngineCallFailed as exc:
            self.notify(exc.message, title="not sent", severity="error")
            return
        bar = self.main_screen.query_one(ComposeBar)
        bar.value, bar.draft = "", None
        bar.reply(None)
        self._composing_done()
        self.notify("reply sent", timeout=2)

    def on_option_list_option_selected(self, event) -> None:
        if event.option_list is self.main_screen.query_one(Conversation):
            m = self.main_screen.query_one(Conversation).highlighted_message
            if m is not None:
                self.open_thread(m)

    def open_thread(self, m: dict) -> None:
        """The message's thread, every message whole, the focus on `m`; a review event of its own
        (a request, a merge) opens the agent's review instead."""
        e = m.get("review_event")
        if e is not None and m["message_id"] == e["event_id"]:
            if e["kind"] != "merged":
                self.open_review(e["agent"])
            return
        from thrum_tui.screens.thread import ThreadScreen

        self.push_screen(
            ThreadScreen(
                m.get("thread_id") or m["message_id"],
                title=f"THREAD — from @{m['author']}",
                focus_id=m["message_id"],
            )
        )

    # -- actions --
    def action_compose(self) -> None:
        bar = self.main_screen.query_one(ComposeBar)
        if not bar.value and bar.reply_to is None and self.selected and self.selected != self.operator:
            bar.value = f"@{self.selected} "
        # set_focus now, not focus() (which waits a turn): keys typed right behind `i` must land
        # in the bar, not in the team table where `f` would open the feed.
        self.main_screen.set_focus(bar)
        bar.cursor_position = len(bar.value)

    def action_reply(self) -> None:
        self.reply_to(self.main_screen.query_one(Conversation).highlighted_message)

    def reply_to(self, m: dict | None) -> None:
        """Compose a reply to `m` in the main screen's bar (pages call this with their own highlight)."""
        if m is None or m["message_id"].startswith("evt_"):  # nothing, or a review event
            self.notify("no message to reply to: highlight one first", severity="warning")
            return
        while len(self.screen_stack) > 1 and self.screen is not self.main_screen:
            self.pop_screen()
        bar = self.main_screen.query_one(ComposeBar)
        bar.reply(m)
        bar.value = ""
        self.main_screen.set_focus(bar)

    def action_focus_team(self) -> None:
        bar = self.main_screen.query_one(ComposeBar)
        if bar.has_focus and bar.reply_to is not None:
            bar.reply(None)
        self.main_screen.query_one(TeamTable).focus()

    def action_focus_panel(self, panel: str) -> None:
        # set_focus, not focus(): the next key must reach the panel just chosen.
        self.main_screen.set_focus(self.main_screen.query_one(f"#{panel}"))

    def action_filter_team(self, key: str) -> None:
        table = self.main_screen.query_one(TeamTable)
        label, states = STATE_FILTERS[key]
        same = table.state_filter is not None and table.state_filter[0] == label
        table.filter_states(None if same else label, states)
        table.show(self._members, self._unread_from)

    def action_jump(self) -> None:
        """Fuzzy jump to an agent by name, role or intent (Textual's own palette, our list)."""
        from textual.command import SimpleCommand

        def going(name: str):
            return lambda: self.select_agent(name)

        self.search_commands(
            [
                SimpleCommand(
                    f"@{m['name']} · {m['role']} · {m['state']}",
                    going(m["name"]),
                    " ".join((m.get("intent") or "").split()) or None,
                )
                for m in self._members
            ],
            placeholder="Jump to an agent…",
        )

    def select_agent(self, name: str) -> None:
        table = self.main_screen.query_one(TeamTable)
        if name not in table.names:  # filtered out: show everyone again
            table.filter_states(None)
            table.show(self._members, self._unread_from)
        if name in table.names:
            table.move_cursor(row=table.names.index(name))
            self.main_screen.set_focus(table)

    def action_needs_you(self) -> None:
        """Jump to what the header counts, first what needs a human most: a blocked agent, an agent
        who wrote to you, your own inbox (mail from a monitor, @system, a schedule: the `you`
        row), a review waiting for you."""
        needs = self.needs
        inbox = (self.operator,) if needs.unread else ()
        target = next(iter((*needs.blocked, *needs.writers, *inbox)), None)
        if target is not None:
            self.select_agent(target)
            return
        if needs.reviews:
            queue = self.main_screen.query_one(ReviewQueue)
            waiting = [i for i, e in enumerate(queue.entries) if e["needs_you"]]
            if waiting:
                queue.move_cursor(row=waiting[0])
            self.main_screen.set_focus(queue)
            return
        self.notify("nothing needs you right now", timeout=2)

    def action_help(self) -> None:
        from thrum_tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_feed(self) -> None:
        from thrum_tui.screens.feed import FeedScreen

        self.push_screen(FeedScreen())

    def action_sync_page(self) -> None:
        from thrum_tui.screens.sync import SyncScreen

        self.push_screen(SyncScreen())

    def action_find(self) -> None:
        from thrum_tui.screens.feed import FeedScreen

        self.push_screen(FeedScreen(title="FIND — search messages", find=True))

    def action_schedules(self) -> None:
        from thrum_tui.screens.schedules import SchedulesScreen

        self.push_screen(SchedulesScreen())

    def action_monitors(self) -> None:
        from thrum_tui.screens.monitors import MonitorsScreen

        self.push_screen(MonitorsScreen())

    # -- review (issue 14) --
    async def _refresh_asks(self) -> None:
        """The header's open asks (with the oldest one's age) and held messages (issue 16)."""
        asks = (await self.engine.call("ask.list", {"everyone": True}))["asks"]
        held = (await self.engine.call("message.held", {}))["total"]
        header = self.main_screen.query_one(HeaderLine)
        oldest = max((a["age_seconds"] for a in asks), default=0)
        header.asks = f"asks: {len(asks)} (oldest {human_age(oldest)})" if asks else ""
        header.held = held

    async def _refresh_reviews(self) -> None:
        r = await self.engine.call("review.list", {})
        self.main_screen.query_one(ReviewQueue).show(r["reviews"])
        if r["needs_you"] != self.needs.reviews:
            self.needs = replace(self.needs, reviews=r["needs_you"])
            self.main_screen.query_one(HeaderLine).needs_you = self.needs.count

    def action_review(self) -> None:
        if self.selected and self.selected != self.operator:
            self.open_review(self.selected)
        else:
            self.notify("highlight an agent to review its work", severity="warning")

    def on_review_queue_open(self, message: ReviewQueue.Open) -> None:
        self.open_review(message.agent)

    def action_asks(self) -> None:
        from thrum_tui.screens.asks import AsksScreen

        self.push_screen(AsksScreen())

    def action_worktrees(self) -> None:
        from thrum_tui.screens.worktrees import WorktreesScreen

        self.push_screen(WorktreesScreen())

    def open_review(self, agent: str) -> None:
        self._open_review(agent)

    @work(group="open-review", exclusive=True, exit_on_error=False)
    async def _open_review(self, agent: str) -> None:
        """The diff is asked for first and the screen pushed when it is here (or after
        PREFETCH_SECONDS, showing "loading…" until it is): its first frame is then the review."""
        import asyncio

        from thrum_tui.screens.review import PREFETCH_SECONDS, ReviewScreen, fetch_review

        fetched = asyncio.ensure_future(fetch_review(self.engine, agent))
        await asyncio.wait({fetched}, timeout=PREFETCH_SECONDS)
        self.push_screen(ReviewScreen(agent, fetched))

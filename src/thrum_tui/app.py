"""The console: one screen with the team, the conversation with the highlighted agent, and a
compose bar. Engine calls run as workers on the app's loop; engine events arrive as one coalesced
`EngineChanged` message per burst."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer

from thrum_tui.engine_handle import OPERATOR_ROLE, EngineCallFailed, EngineHandle
from thrum_tui.messages import EngineChanged
from thrum_tui.widgets.compose_bar import ComposeBar
from thrum_tui.widgets.conversation import Conversation, merge_conversation
from thrum_tui.widgets.header_line import HeaderLine
from thrum_tui.widgets.team_table import TeamTable

CONVERSATION_PAGE = 200


class ThrumApp(App):
    TITLE = "thrum"
    CSS_PATH = "thrum.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("i", "compose", "compose"),
        Binding("escape", "focus_team", "team"),
    ]

    def __init__(self, engine: EngineHandle) -> None:
        super().__init__()
        self.engine = engine
        self.operator = engine.operator
        self.selected: str | None = None
        self._refresh_pending = False
        self._refreshing = False

    def compose(self) -> ComposeResult:
        yield HeaderLine(self.engine.layout.repo, self.engine.host, self.operator, id="header")
        with Horizontal(id="main"):
            yield TeamTable(self.operator, id="team")
            yield Conversation(self.operator, id="conversation")
        yield ComposeBar(id="compose")
        yield Footer()

    def on_mount(self) -> None:
        self.engine.listen(self._on_engine_events)
        self.query_one(TeamTable).focus()
        self.start_up()

    # -- engine -> screen --
    def _on_engine_events(self, events: list[dict]) -> None:
        # Our own reads and peeks change nothing on screen; refreshing on them would loop.
        if all(e["type"] in ("message.seen", "message.read") and e["author"] == self.operator for e in events):
            return
        self.post_message(EngineChanged())

    def on_engine_changed(self, message: EngineChanged) -> None:
        self.request_refresh()

    @work(group="engine", exit_on_error=False)
    async def start_up(self) -> None:
        try:
            await self.engine.call("agent.register", {"name": self.operator, "role": OPERATOR_ROLE, "kind": "user"})
        except EngineCallFailed as exc:
            self.notify(f"could not register you as @{self.operator}: {exc.message}", severity="error")
        self.request_refresh()

    def request_refresh(self) -> None:
        """Coalesce: while one refresh runs, any number of requests cause exactly one more."""
        self._refresh_pending = True
        if not self._refreshing:
            self._refreshing = True
            self._refresh_loop()

    @work(group="refresh", exit_on_error=False)
    async def _refresh_loop(self) -> None:
        try:
            while self._refresh_pending:
                self._refresh_pending = False
                try:
                    await self._refresh_once()
                except EngineCallFailed as exc:
                    self.notify(exc.message, severity="error")
        finally:
            self._refreshing = False

    async def _refresh_once(self) -> None:
        team = await self.engine.call("team.list", {"all": True})
        members = team["members"]
        table = self.query_one(TeamTable)
        table.show(members)
        me = next((m for m in members if m["name"] == self.operator), None)
        self.query_one(HeaderLine).needs_you = (me or {}).get("unread", 0) + sum(
            1 for m in members if m["state"] in ("blocked", "stuck"))
        if self.selected is None:
            self.selected = table.selected
        await self._show_conversation()

    async def _show_conversation(self) -> None:
        agent = self.selected
        # peek: showing a message marks it seen, not read -- reading stays an explicit act.
        inbox = await self.engine.call("message.inbox", {"peek": True, "page_size": CONVERSATION_PAGE})
        sent = []
        if agent and agent != self.operator:
            sent = (await self.engine.call("message.sent", {"to": agent, "limit": CONVERSATION_PAGE}))["messages"]
        if agent != self.selected:
            return  # the selection moved while we fetched; its own refresh follows
        self.query_one(Conversation).show(agent, merge_conversation(self.operator, agent, inbox["messages"], sent))

    def on_team_table_agent_selected(self, message: TeamTable.AgentSelected) -> None:
        if message.name != self.selected:
            self.selected = message.name
            self.request_refresh()

    # -- screen -> engine --
    def on_compose_bar_send(self, message: ComposeBar.Send) -> None:
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
        self.query_one(ComposeBar).value = ""
        self.notify(f"sent to {', '.join('@' + r for r in result['recipients']) or 'nobody'}", timeout=2)

    def action_compose(self) -> None:
        bar = self.query_one(ComposeBar)
        if not bar.value and self.selected and self.selected != self.operator:
            bar.value = f"@{self.selected} "
        bar.focus()
        bar.cursor_position = len(bar.value)

    def action_focus_team(self) -> None:
        self.query_one(TeamTable).focus()

"""`c`: the selected agent's command queue. Queued text is typed into the pane when the agent is
idle (never over its own work); "send now" types it immediately; a pending command can be
cancelled. Results show as the engine records them: a shell command's exit status and duration
("failed (exit 1) in 2.3s"), or "prompt typed to claude"; the highlighted command's output shows
under the list."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Button, DataTable, Input, Label, Static

from thrum_tui.screens.base import Dialog, LiveView
from thrum_tui.widgets.tables import RowTable, refill


class QueueScreen(LiveView, Dialog):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_dialog", "close"),
        Binding("x", "cancel_command", "cancel selected"),
    ]
    DEFAULT_CSS = """
    QueueScreen DataTable { height: auto; max-height: 10; margin-bottom: 1; }
    QueueScreen #output-box { height: auto; max-height: 12; margin-bottom: 1; }
    """

    def __init__(self, agent: str, session: str) -> None:
        super().__init__()
        self.agent = agent
        self.session = session
        self.commands: list[dict] = []

    def compose(self):
        with Vertical(id="dialog"):
            yield Label(f"Command queue — @{self.agent} (tmux {self.session})", classes="title", markup=False)
            yield RowTable(id="queue", cursor_type="row")
            with VerticalScroll(id="output-box"):
                yield Static("", id="output", markup=False)
            with Horizontal(classes="row"):
                yield Label("command", markup=False)
                yield Input(placeholder="text to type into the pane", id="command")
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close")
                yield Button("Send now", id="send")
                yield Button("Queue (when idle)", id="queue-it", variant="primary")

    def on_mount(self) -> None:
        table = self.query_one("#queue", DataTable)
        for c in ("id", "result", "command", "note"):
            table.add_column(c, key=c)
        self.query_one("#command", Input).focus()
        self.reload()

    @work(group="queue-load", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        r = await self.call("tmux.queue_status", {"session": self.session})
        if r is None:
            return
        self.commands = r["commands"]
        table = self.query_one("#queue", DataTable)
        refill(
            table,
            [
                (
                    c["command_id"][-6:],
                    c.get("result") or c["status"],
                    c["command"][:40],
                    (c.get("note") or "")[:30],
                )
                for c in self.commands
            ],
            [c["command_id"] for c in self.commands],
        )
        self.show_output()

    @on(DataTable.RowHighlighted, "#queue")
    def show_output(self) -> None:
        """The highlighted command's output, whole (the list has room for one line of each)."""
        table = self.query_one("#queue", DataTable)
        row = table.cursor_row
        if not self.commands or not 0 <= row < len(self.commands):
            self.query_one("#output", Static).update("")
            return
        c = self.commands[row]
        head = Content.styled(f"{c.get('result') or c['status']}: {c['command']}", "b")
        self.query_one("#output", Static).update(
            Content.assemble(head, "\n", c.get("output") or "(no output)")
        )

    def refresh_from_engine(self) -> None:
        self.reload()

    def command_text(self) -> str:
        return self.query_one("#command", Input).value

    @on(Button.Pressed, "#close")
    def close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#queue-it")
    @on(Input.Submitted, "#command")
    def queue_it(self) -> None:
        if text := self.take_command("queue"):
            self.submit("tmux.queue", {"session": self.session, "command": text}, text)

    @on(Button.Pressed, "#send")
    def send_now(self) -> None:
        if text := self.take_command("send"):
            self.submit("tmux.send", {"session": self.session, "text": text}, text)

    def take_command(self, what: str) -> str:
        """The command typed, the field cleared and focused at once, so the next command typed
        lands there (the focus stayed on the button, and the next command typed was lost: walk,
        bug 7); an empty one is refused aloud (it did nothing, silently)."""
        field = self.query_one("#command", Input)
        self.set_focus(field)
        text = field.value
        if not text.strip():
            self.app.notify(f"nothing to {what}: type a command first", severity="warning", timeout=3)
            return ""
        field.value = ""
        return text

    @work(group="queue-submit", exit_on_error=False)
    async def submit(self, method: str, params: dict, text: str = "") -> None:
        if await self.call(method, params) is None:
            field = self.query_one("#command", Input)
            if text and not field.value:  # refused: the command back to fix, unless one is typed since
                field.value = text
            return
        self.app.notify(
            {"tmux.queue": "queued", "tmux.send": "typed into the pane"}.get(method, "cancelled"), timeout=2
        )
        self.reload()

    def action_cancel_command(self) -> None:
        table = self.query_one("#queue", DataTable)
        if not self.commands or table.cursor_row < 0:
            return
        self.submit("tmux.cancel", {"command_id": self.commands[table.cursor_row]["command_id"]})

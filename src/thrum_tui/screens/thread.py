"""A thread, each message whole: newlines, code blocks and indentation as written, long output
folded (enter unfolds), the latest message always unfolded. Opened by enter on a message in the
conversation, the feed or find; `r` replies to the message with the focus (walk bug 3 and 19)."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Collapsible, Footer, Label, Static

from thrum_tui.screens.base import LiveView, Page
from thrum_tui.snippet import viewable

FOLD_LINES = 12  # a body longer than this starts folded (unless it is the latest)
THREAD_LIMIT = 500


def header_of(m: dict, operator: str) -> str:
    who = "you" if m["author"] == operator else f"@{m['author']}"
    to = "all" if m.get("broadcast") else ", ".join(m.get("to") or []) or "?"
    return f"{m['created_at'][5:16].replace('T', ' ')}  {who} → {to}"


class MessageView(Vertical, can_focus=True):
    """One message: its header, then its body exactly as written."""

    DEFAULT_CSS = """
    MessageView { height: auto; margin: 0 0 1 0; padding: 0 1; border-left: wide $panel; }
    MessageView:focus { border-left: wide $accent; }
    MessageView > .header { color: $accent; text-style: bold; }
    MessageView Static { width: 1fr; }
    """

    def __init__(self, message: dict, operator: str, *, folded: bool) -> None:
        super().__init__()
        self.message = message
        self.operator = operator
        self.folded = folded

    def compose(self):
        yield Label(header_of(self.message, self.operator), classes="header", markup=False)
        text = viewable(self.message["body"]["content"], self.message["message_id"])
        body = Static(Content(text), classes="body", markup=False)
        lines = self.message["body"]["content"].count("\n") + 1
        if lines > FOLD_LINES:
            with Collapsible(title=f"{lines} lines", collapsed=self.folded):
                yield body
        else:
            yield body

    def on_key(self, event) -> None:
        if event.key == "enter":
            for fold in self.query(Collapsible):
                fold.collapsed = not fold.collapsed
                event.stop()


class ThreadScreen(LiveView, Page):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("r", "reply", "reply"),
        Binding("d", "ledger", "delivery ledger"),
        Binding("j,down", "move(1)", "next", show=False),
        Binding("k,up", "move(-1)", "previous", show=False),
    ]
    DEFAULT_CSS = """
    ThreadScreen > #thread-title { padding: 0 2; color: $accent; text-style: bold; }
    ThreadScreen > VerticalScroll { height: 1fr; border: round $primary; }
    """

    def __init__(self, thread_id: str, *, title: str, focus_id: str | None = None) -> None:
        super().__init__()
        self.thread_id = thread_id
        self.heading = title
        self.focus_id = focus_id
        self.messages: list[dict] = []

    def compose(self):
        yield Label(self.heading, id="thread-title", markup=False)
        yield VerticalScroll(id="thread")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def refresh_from_engine(self) -> None:
        self.reload()

    @property
    def views(self) -> list[MessageView]:
        return list(self.query(MessageView))

    def _focused_index(self, views: list[MessageView]) -> int | None:
        return next((i for i, v in enumerate(views) if v.has_focus or v.has_focus_within), None)

    @property
    def focused_message(self) -> dict | None:
        """The message with the focus, else the latest."""
        views = self.views
        i = self._focused_index(views)
        if i is not None:
            return views[i].message
        return self.messages[-1] if self.messages else None

    @work(group="thread", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        r = await self.call("message.feed", {"thread_id": self.thread_id, "limit": THREAD_LIMIT})
        if r is None:
            return
        messages = list(reversed(r["messages"]))  # oldest first, as a conversation reads
        if [m["message_id"] for m in messages] == [m["message_id"] for m in self.messages]:
            return
        kept = self.focused_message if self.messages else None
        keep = kept["message_id"] if kept else self.focus_id
        self.messages = messages
        box = self.query_one("#thread", VerticalScroll)
        await box.remove_children()
        operator = self.app.operator  # type: ignore[attr-defined]
        last = len(messages) - 1
        views = [MessageView(m, operator, folded=i != last) for i, m in enumerate(messages)]
        await box.mount_all(views)
        target = next((v for v in views if v.message["message_id"] == keep), views[-1] if views else None)
        if target is not None:
            target.focus()
            box.scroll_to_widget(target, animate=False)

    def action_move(self, step: int) -> None:
        views = self.views
        if not views:
            return
        current = self._focused_index(views)
        current = len(views) - 1 if current is None else current
        target = views[max(0, min(len(views) - 1, current + step))]
        target.focus()
        self.query_one("#thread", VerticalScroll).scroll_to_widget(target, animate=False)

    def action_reply(self) -> None:
        self.app.reply_to(self.focused_message)  # type: ignore[attr-defined]

    def action_ledger(self) -> None:
        """The focused message's delivery ledger, step by step per recipient (issue 16)."""
        from thrum_tui.screens.asks import LedgerScreen

        m = self.focused_message
        if m is not None:
            self.app.push_screen(LedgerScreen(m["message_id"]))

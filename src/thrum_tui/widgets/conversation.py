"""The conversation with one agent: messages both ways plus broadcasts, newest at the bottom."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static


def merge_conversation(operator: str, agent: str | None, inbox: list[dict], sent: list[dict]) -> list[dict]:
    """Messages between the operator and `agent` (or all mail to the operator when agent is the
    operator or None), plus broadcasts; oldest first, each once."""
    mine = agent is None or agent == operator
    picked: dict[str, dict] = {}
    for m in inbox:
        if mine or m["author"] == agent or m.get("broadcast"):
            picked[m["message_id"]] = m
    if not mine:
        for m in sent:
            picked[m["message_id"]] = m
    return sorted(picked.values(), key=lambda m: (m["created_at"], m["message_id"]))


class Conversation(VerticalScroll):
    DEFAULT_CSS = """
    Conversation {
        height: 1fr;
        border: round $primary;
        padding: 0 1;
    }
    Conversation > Static {
        width: 1fr;
    }
    Conversation .empty {
        color: $text-muted;
    }
    """

    def __init__(self, operator: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.operator = operator
        self.agent: str | None = None
        self._lines: list[str] = []
        self.border_title = "CONVERSATION"

    def compose(self):
        yield Static("no messages yet", classes="empty", id="conversation-body")

    @property
    def plain_text(self) -> str:
        """What the operator reads, without styling (tests and copy use it)."""
        return "\n".join(self._lines)

    def _who(self, name: str) -> str:
        return "you" if name == self.operator else f"@{name}"

    def show(self, agent: str | None, messages: list[dict]) -> None:
        self.agent = agent
        self.border_title = "you (inbox)" if agent in (None, self.operator) else f"@{agent}"
        body = self.query_one("#conversation-body", Static)
        if not messages:
            self._lines = []
            body.set_class(True, "empty")
            body.update("no messages yet")
            return
        lines, rows = [], []
        for m in messages:
            when = m["created_at"][11:16]
            to = "all" if m.get("broadcast") else ", ".join(self._who(t.lstrip("@")) for t in m.get("to", [])) or "?"
            text = m["body"]["content"]
            lines.append(f"{when} {self._who(m['author'])} → {to}  {text}")
            rows.append(Content.from_markup(
                "[$text-muted]$when[/] [b $accent]$who[/] → $to  $text",
                when=when, who=self._who(m["author"]), to=to, text=text,
            ))
        self._lines = lines
        body.set_class(False, "empty")
        body.update(Content("\n").join(rows))
        self.scroll_end(animate=False)

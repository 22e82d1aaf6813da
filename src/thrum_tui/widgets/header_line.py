"""One line on top: which repo, who hosts the engine, who you are, what needs you."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget


class HeaderLine(Widget):
    DEFAULT_CSS = """
    HeaderLine {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $foreground;
    }
    """

    repo: reactive[str] = reactive("")
    host: reactive[str] = reactive("")
    operator: reactive[str] = reactive("")
    needs_you: reactive[int] = reactive(0)

    def __init__(self, repo: str, host: str, operator: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.set_reactive(HeaderLine.repo, repo)
        self.set_reactive(HeaderLine.host, host)
        self.set_reactive(HeaderLine.operator, operator)

    def render(self) -> Content:
        return Content.from_markup(
            "[b]thrum[/b] · $repo · engine: [$accent]$host[/] · you: @$operator · needs you: $needs",
            repo=self.repo, host=self.host, operator=self.operator, needs=str(self.needs_you),
        )

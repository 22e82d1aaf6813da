"""One line on top: which repo and branch, who hosts the engine, sync state, who you are, and how
many things need you (blocked agents + unread mail to you)."""

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
    branch: reactive[str | None] = reactive(None)  # the main checkout's branch (None: not known yet)
    host: reactive[str] = reactive("")
    operator: reactive[str] = reactive("")
    sync: reactive[str] = reactive("local-only")
    needs_you: reactive[int] = reactive(0)
    asks: reactive[str] = reactive("")  # "asks: 2 (oldest 12m)" (issue 16)
    held: reactive[int] = reactive(0)  # messages the loop guard holds for the operator
    notice: reactive[str] = reactive("")  # something the engine had to repair, e.g. the projection

    def __init__(self, repo: str, host: str, operator: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.set_reactive(HeaderLine.repo, repo)
        self.set_reactive(HeaderLine.host, host)
        self.set_reactive(HeaderLine.operator, operator)

    async def on_click(self) -> None:
        """Selecting the header jumps to what needs you (as `g` does)."""
        await self.app.run_action("needs_you")

    @property
    def repo_and_branch(self) -> str:
        """`myrepo@main` (CONSOLE.md's header); `myrepo (detached)` off any branch."""
        if self.branch is None:
            return self.repo
        return f"{self.repo}@{self.branch}" if self.branch else f"{self.repo} (detached)"

    def render(self) -> Content:
        """What does not fit goes, least useful first; "needs you" always stays (walk bug 20)."""
        needs = "b $error" if self.needs_you else "$text-muted"
        parts = [
            ("repo", "$repo"),
            ("engine", "engine: [$accent]$host[/]"),
            ("sync", "sync: $sync"),
            ("you", "you: @$operator"),
        ]
        if self.asks:
            parts.append(("asks", "$asks"))
        if self.held:
            parts.append(("held", "[b $warning]held: $held (H)[/]"))
        if self.notice:
            parts.append(("notice", "[b $warning]$notice[/]"))
        values = {
            "repo": self.repo_and_branch,
            "host": self.host,
            "sync": self.sync,
            "operator": self.operator,
            "needs": str(self.needs_you),
            "notice": self.notice,
            "asks": self.asks,
            "held": str(self.held),
        }
        room = self.size.width - 2 if self.size.width else 10_000
        for drop in (None, "asks", "you", "sync", "engine", "repo", "notice", "held"):
            parts = [p for p in parts if p[0] != drop]
            markup = " · ".join(["[b]thrum[/b]", *(m for _, m in parts), f"[{needs}]needs you: $needs[/]"])
            content = Content.from_markup(markup, **values)
            if content.cell_length <= room:
                break
        return content

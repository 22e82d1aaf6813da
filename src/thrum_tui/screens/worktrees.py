"""`w`: every worktree of the repo, as git sees it now: branch and how far it is from the target,
the last commit, uncommitted and untracked counts (never "clean" when `git status` is not), merged
or not, and the agent there with its state. Enter reviews that agent's work."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from thrum_tui.screens.base import TablePage

COLUMNS = ("worktree", "branch", "vs target", "last commit", "changes", "merged", "agent")


def changes(w: dict) -> str:
    if w["error"]:
        return w["error"]
    parts = []
    if w["uncommitted"]:
        parts.append(f"{len(w['uncommitted'])} uncommitted")
    if w["untracked"]:
        parts.append(f"{len(w['untracked'])} untracked")
    return ", ".join(parts) or "clean"


def tree_row(w: dict) -> tuple[str, ...]:
    last = w["last_commit"]
    agent = ", ".join(f"@{a['name']} {a['state']}" for a in w["agents"]) or "-"
    left = changes(w) if w["uncommitted"] or w["untracked"] else ""
    if w["merged"] is None and not w.get("branch_merged"):
        merged = "-"
    elif w.get("no_commits"):  # never committed: not "merged" (console walk, session 22)
        merged = f"no commits, {left}" if left else "no commits yet"
    elif w["merged"]:
        merged = "merged"
    elif w.get("branch_merged"):  # its commits are in; what is not committed is in no branch
        merged = f"merged, {left} not"
    else:
        merged = "not merged"
    ahead = "" if w["ahead"] is None else f"↑{w['ahead']} ↓{w['behind']}"
    return (
        w["name"],
        w["branch"] or "detached",
        ahead,
        f"{last['sha'][:8]} {last['subject']}"[:48] if last else "",
        changes(w),
        merged,
        agent,
    )


class WorktreesScreen(TablePage):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("u", "reload", "reload"),
    ]
    HEADING = "WORKTREES"
    COLUMNS = COLUMNS

    def __init__(self) -> None:
        super().__init__()
        self.trees: list[dict] = []

    @work(group="worktrees", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        r = await self.call("worktree.overview", {})
        if r is None:
            return
        self.trees = r["worktrees"]
        self.fill(
            f"WORKTREES · {len(self.trees)} · against {r['target']} · enter reviews the agent's work",
            [tree_row(w) for w in self.trees],
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if 0 <= event.cursor_row < len(self.trees):
            agent = self.trees[event.cursor_row]["agent"]
            if agent:
                self.app.open_review(agent)  # type: ignore[attr-defined]
            else:
                self.app.notify("no agent works in this worktree", severity="warning")

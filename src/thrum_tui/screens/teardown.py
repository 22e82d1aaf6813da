"""`t`: tear an agent's worktree down, only after the operator has seen the audit and typed the
agent's name. Forcing past problems is a separate, explicit checkbox that only appears when the
audit found any -- never a default and never one keypress away."""

from __future__ import annotations

from textual import on, work
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Checkbox, Input, Label, Static

from thrum_tui.screens.base import Dialog

SHOWN = 8  # files or commits listed per problem; the rest are counted


def _listed(names: list[str]) -> list[tuple[str, bool]]:
    out = [(f"    {n}", True) for n in names[:SHOWN]]
    if len(names) > SHOWN:
        out.append((f"    … and {len(names) - SHOWN} more", True))
    return out


def audit_lines(audit: dict, problems: list[str]) -> list[tuple[str, bool]]:
    """(line, is_problem): each problem with the files or commits behind it, so the operator sees
    exactly what a forced teardown would archive."""
    out = [(f"worktree {audit['name']} on {audit.get('branch') or 'detached HEAD'}", False)]
    details = {
        "uncommitted": list(audit.get("uncommitted") or []),
        "untracked": list(audit.get("untracked") or []),
        "not merged": list(audit.get("unmerged") or []),
        "past the": list(audit.get("ignored_over_cap") or []),
    }  # keyed by the words in each problem
    for p in problems:
        out.append((p, True))
        for key, names in details.items():
            if key in p and names:
                out += _listed(names)
                names.clear()  # listed once even if two problems mention it
    if not problems:
        out.append(("clean: nothing uncommitted, nothing unmerged, no live pane", False))
    # What else is at stake: ignored files archived, ignored folders removed (the engine's notes).
    for key, words in (
        ("ignored", "ignored file(s) archived"),
        ("ignored_dirs", "ignored folder(s) removed"),
    ):
        if audit.get(key):
            out.append((f"{words}:", False))
            out += [(text, False) for text, _ in _listed(list(audit[key]))]
    out.append((f"the worktree's state is archived as {audit['archive_ref']} before removal", False))
    return out


class TeardownScreen(Dialog):
    def __init__(self, agent: str, worktree: str) -> None:
        super().__init__()
        self.agent = agent
        self.worktree = worktree
        self.problems: list[str] = []
        self.audited = False

    def compose(self):
        with Vertical(id="dialog"):
            yield Label(f"Teardown @{self.agent} — worktree {self.worktree}", classes="title", markup=False)
            yield Static("auditing…", id="audit", markup=False)
            yield Checkbox("force past the problems above (work is archived, then removed)", id="force")
            with Horizontal(classes="row"):
                yield Checkbox("delete the branch too", id="delete-branch")
                yield Checkbox(Content(f"keep @{self.agent} in the team"), id="keep-agent")
            with Horizontal(classes="row"):
                yield Label("type name", markup=False)
                yield Input(placeholder=f"type {self.agent} to confirm", id="confirm")
            yield Static("", id="outcome", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Tear down", id="go", variant="error", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#force", Checkbox).display = False
        self.query_one("#confirm", Input).focus()
        self.run_audit()

    @work(group="teardown", exclusive=True, exit_on_error=False)
    async def run_audit(self) -> None:
        r, error = await self.attempt("worktree.audit", {"name": self.worktree})
        box = self.query_one("#audit", Static)
        if r is None:
            box.update(f"✗ {error}")
            return
        self.problems = r["problems"]
        self.audited = True
        box.update(
            "\n".join(("✗ " if bad else "  ") + text for text, bad in audit_lines(r["audit"], self.problems))
        )
        self.query_one("#force", Checkbox).display = bool(self.problems)
        self.update_go()

    @on(Input.Changed, "#confirm")
    @on(Checkbox.Changed, "#force")
    def update_go(self) -> None:
        typed = self.query_one("#confirm", Input).value.strip() == self.agent
        forced = self.query_one("#force", Checkbox).value
        self.query_one("#go", Button).disabled = not (
            self.audited and typed and (forced or not self.problems)
        )

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#go")
    @on(Input.Submitted, "#confirm")
    def go(self) -> None:
        if self.query_one("#go", Button).disabled:
            # Enter on a disabled Tear down did nothing and said nothing (walk, bug 19).
            self.query_one("#outcome", Static).update(self.why_not())
            return
        self.query_one("#go", Button).disabled = True
        self.tear_down()

    def why_not(self) -> str:
        if not self.audited:
            return "the audit is still running"
        if self.query_one("#confirm", Input).value.strip() != self.agent:
            return f"type {self.agent} to confirm"
        return "tick force past the problems marked ✗ to tear it down anyway (its work is archived first)"

    @work(group="teardown", exclusive=True, exit_on_error=False)
    async def tear_down(self) -> None:
        params = {
            "name": self.worktree,
            "force": self.query_one("#force", Checkbox).value,
            "delete_branch": self.query_one("#delete-branch", Checkbox).value,
            "keep_agent": self.query_one("#keep-agent", Checkbox).value,
        }
        self.query_one("#outcome", Static).update("… tearing down")
        r, error = await self.attempt("worktree.teardown", params)
        if r is None:
            self.query_one("#outcome", Static).update(f"✗ {error}")
            self.update_go()
            return
        self.dismiss(r)

"""The review screen's dialogs: a comment, the verdict, the merge with its preflight, a conflict,
and what to do with the worktree once the work has landed."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Static

from thrum_tui.screens.base import Dialog

SHOWN_FILES = 10


def _files(files: list[str]) -> list[str]:
    out = [f"    {f}" for f in files[:SHOWN_FILES]]
    if len(files) > SHOWN_FILES:
        out.append(f"    … and {len(files) - SHOWN_FILES} more")
    return out


class CommentDialog(Dialog):
    """The comment's text for `where`, with the code it is about quoted above the field."""

    DEFAULT_CSS = """
    CommentDialog #quote { color: $text-muted; margin-bottom: 1; max-height: 8; }
    """

    def __init__(self, where: str, quote: str) -> None:
        super().__init__()
        self.where = where
        self.quote = quote

    def compose(self):
        with Vertical(id="dialog"):
            yield Label(f"Comment on {self.where}", classes="title", markup=False)
            if self.quote:
                yield Static(
                    Content("\n".join("> " + q for q in self.quote.split("\n")[:6])), id="quote", markup=False
                )
            yield Input(placeholder="what should change, and why (enter saves it as pending)", id="body")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Add comment", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#body", Input).focus()

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    @on(Input.Submitted, "#body")
    def save(self) -> None:
        text = self.query_one("#body", Input).value.strip()
        if text:
            self.dismiss(text)


class SubmitDialog(Dialog):
    """Approve or request changes, with a summary (prefilled when the console knows what to ask,
    as after a conflict); the pending comments go with it. It submits itself and stays open with
    the engine's refusal, so the summary is not lost (walk, bug 10: it closed, then a toast said
    why nothing was sent). Dismisses with review.submit's result."""

    def __init__(self, agent: str, verdict: str, pending: int, summary: str = "") -> None:
        super().__init__()
        self.agent = agent
        self.verdict = verdict
        self.pending = pending
        self.summary = summary

    def compose(self):
        title = (
            f"Approve @{self.agent}" if self.verdict == "approve" else f"Request changes from @{self.agent}"
        )
        with Vertical(id="dialog"):
            yield Label(title, classes="title", markup=False)
            yield Static(
                f"{self.pending} pending comment(s) go with it, as one message to @{self.agent}"
                " (readable text plus the comments as data).",
                markup=False,
            )
            with Horizontal(classes="row"):
                yield Label("summary", markup=False)
                yield Input(self.summary, placeholder="optional: the gist, for the agent", id="summary")
            yield Static("", id="error", classes="problem", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(
                    "Approve" if self.verdict == "approve" else "Request changes",
                    id="go",
                    variant="success" if self.verdict == "approve" else "warning",
                )

    def on_mount(self) -> None:
        self.query_one("#summary", Input).focus()

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#go")
    @on(Input.Submitted, "#summary")
    def go(self) -> None:
        go = self.query_one("#go", Button)
        if not go.disabled:
            go.disabled = True
            self.submit(self.query_one("#summary", Input).value.strip())

    @work(group="review-submit", exclusive=True, exit_on_error=False)
    async def submit(self, summary: str) -> None:
        params = {"agent": self.agent, "verdict": self.verdict, "summary": summary}
        r, error = await self.attempt("review.submit", params)
        if r is None:
            self.query_one("#error", Static).update(f"✗ {error}")
            self.query_one("#go", Button).disabled = False
            return
        self.dismiss(r)


def conflict_summary(files: list[str], target: str) -> str:
    """What to ask of an agent whose branch conflicts with the target."""
    where = (
        f" in {', '.join(files[:SHOWN_FILES])}" + (" …" if len(files) > SHOWN_FILES else "") if files else ""
    )
    return f"Your branch conflicts with {target}{where}: rebase onto {target}, resolve the conflicts, and ask again."


def preflight_lines(pre: dict) -> list[tuple[str, str]]:
    """(text, css class) per line of the preflight: what would be merged, then each problem."""
    head = (
        f"{pre['strategy']}: {pre['branch']} → {pre['target']}  ↑{pre['ahead']} ↓{pre['behind']}"
        f"  {pre['files']} files +{pre['added']} −{pre['removed']}"
    )
    out = [(head, "")]
    for p in pre["problems"]:
        out.append((("! " if p["forceable"] else "✗ ") + p["text"], "problem"))
        out += [(f, "problem") for f in _files(p["files"])]
    if pre["ok"]:
        out.append(("✓ no conflicts, the target is clean, the review is approved", "ok"))
    elif pre["mergeable"]:
        out.append(("the problems marked ! can be forced past", ""))
    return out


class MergeDialog(Dialog):
    """The preflight for the chosen strategy, run again when it changes, when the agent's state
    turns to or from working (a preflight said "still working" long after the agent went idle:
    walk, bug 9), and on `u`; Merge only when nothing blocks (or the operator ticked force for
    what may be forced), and ctrl+s says why not. Dismisses with the merge result, or
    {"conflicts": [...]} when the dry merge found conflicts."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *Dialog.BINDINGS,
        Binding("ctrl+s", "merge", "merge"),
        Binding("u", "recheck", "re-check"),
    ]
    DEFAULT_CSS = """
    MergeDialog RadioSet { layout: horizontal; height: auto; margin-bottom: 1; }
    MergeDialog #preflight { height: auto; max-height: 20; margin-bottom: 1; }
    """
    STATE_SECONDS = 2.0  # how often the agent's state is looked at while the dialog is open

    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent
        self.strategy = "merge"
        self.pre: dict | None = None
        self.merging = False

    def compose(self):
        with Vertical(id="dialog"):
            yield Label(f"Merge @{self.agent}'s work", classes="title", markup=False)
            with RadioSet(id="strategy"):
                yield RadioButton("merge commit", value=True, id="merge")
                yield RadioButton("squash", id="squash")
                yield RadioButton("rebase + fast-forward", id="rebase")
            yield Static("running the preflight…", id="preflight", markup=False)
            yield Checkbox("force past the problems marked !", id="force")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Merge", id="go", variant="primary", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#force", Checkbox).display = False
        self.query_one("#strategy", RadioSet).focus()
        self.run_preflight()
        self.set_interval(self.STATE_SECONDS, self.watch_agent)

    @on(RadioSet.Changed, "#strategy")
    def strategy_changed(self, event: RadioSet.Changed) -> None:
        self.strategy = str(event.pressed.id)
        self.run_preflight()

    def action_recheck(self) -> None:
        if not self.merging:
            self.run_preflight()

    @work(group="agent-state", exclusive=True, exit_on_error=False)
    async def watch_agent(self) -> None:
        """The preflight again when what it said of the agent (working or not) no longer holds."""
        pre = self.pre
        if pre is None or self.merging:
            return
        team, _ = await self.attempt("team.list", {"all": True})
        state = next((m["state"] for m in (team or {}).get("members", []) if m["name"] == self.agent), None)
        said_working = any(p["code"] == "agent_working" for p in pre["problems"])
        if (
            state is not None
            and (state == "working") != said_working
            and self.pre is pre
            and not self.merging
        ):
            self.run_preflight()

    @work(group="preflight", exclusive=True, exit_on_error=False)
    async def run_preflight(self) -> None:
        self.query_one("#go", Button).disabled = True
        self.pre = None
        pre, error = await self.attempt("review.preflight", {"agent": self.agent, "strategy": self.strategy})
        box = self.query_one("#preflight", Static)
        if pre is None:
            box.update(f"✗ {error}")
            return
        self.pre = pre
        if pre["conflicts"]:
            self.dismiss({"conflicts": pre["conflicts"], "preflight": pre})
            return
        box.update(
            Content("\n").join(
                Content.styled(text, "$error" if cls == "problem" else "$success" if cls == "ok" else "")
                for text, cls in preflight_lines(pre)
            )
        )
        forceable = any(p["forceable"] for p in pre["problems"])
        self.query_one("#force", Checkbox).display = forceable and pre["mergeable"]
        self.update_go()

    @on(Checkbox.Changed, "#force")
    def update_go(self) -> None:
        pre = self.pre
        forced = self.query_one("#force", Checkbox).value
        self.query_one("#go", Button).disabled = not (
            pre is not None and (pre["ok"] or (pre["mergeable"] and forced))
        )

    def why_not(self) -> str:
        """Why Merge is disabled, for a ctrl+s that did nothing and said nothing (walk, bug 9)."""
        if self.merging:
            return "already merging"
        if self.pre is None:
            return "the preflight is still running"
        if not self.pre["mergeable"]:
            return "the problems marked ✗ block the merge"
        return "tick force past the problems marked ! to merge anyway"

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#go")
    def action_merge(self) -> None:
        go = self.query_one("#go", Button)
        if go.disabled:
            self.app.notify(self.why_not(), title="not merged", severity="warning", timeout=4)
            return
        go.disabled = True
        self.merging = True
        self.merge()

    @work(group="merge", exclusive=True, exit_on_error=False)
    async def merge(self) -> None:
        params = {
            "agent": self.agent,
            "strategy": self.strategy,
            "force": self.query_one("#force", Checkbox).value,
        }
        self.query_one("#preflight", Static).update("… merging")
        r, error = await self.attempt("review.merge", params)
        self.merging = False
        if r is None:
            if error and "conflict" in error:
                self.dismiss({"conflicts": [], "error": error})
                return
            self.query_one("#preflight", Static).update(f"✗ {error}")
            self.update_go()
            return
        self.dismiss(r)


class ConflictDialog(Dialog):
    """A dry merge found conflicts: which files, and that nothing was changed."""

    def __init__(self, agent: str, files: list[str], error: str | None = None) -> None:
        super().__init__()
        self.agent = agent
        self.files = files
        self.error = error

    def compose(self):
        with Vertical(id="dialog"):
            yield Label(f"@{self.agent}'s branch conflicts with the target", classes="title", markup=False)
            lines = [f"✗ {len(self.files)} file(s) conflict:"] + _files(self.files) if self.files else []
            if self.error:
                lines.append(f"✗ {self.error}")
            lines += [
                "",
                "Nothing was changed: no merge was started, the target and the worktree are as they were.",
                "Request changes to ask the agent to merge or rebase onto the target and resolve them.",
            ]
            yield Static("\n".join(lines), id="conflicts", classes="problem", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close")
                yield Button("Request changes", id="ask", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "ask")


class AfterMergeDialog(Dialog):
    """The work landed: tear the worktree down (archived first), delete the branch, keep or end
    the agent, or keep everything as it is."""

    def __init__(self, agent: str, worktree: str, result: dict) -> None:
        super().__init__()
        self.agent = agent
        self.worktree = worktree
        self.result = result

    def compose(self):
        r = self.result
        with Vertical(id="dialog"):
            yield Label(
                f"Merged @{self.agent}'s {r['branch']} into {r['target']}", classes="title", markup=False
            )
            yield Static(
                f"✓ {r['strategy']}: {r['target']} is now {r['merged_commit'][:12]}",
                classes="ok",
                markup=False,
            )
            yield Checkbox(
                Content(f"tear down the worktree {self.worktree} (archived first)"), value=True, id="teardown"
            )
            yield Checkbox(Content(f"delete the branch {r['branch']}"), value=True, id="delete-branch")
            yield Checkbox(Content(f"keep @{self.agent} in the team (else the agent ends)"), id="keep-agent")
            yield Static("", id="outcome", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Keep everything", id="keep")
                yield Button("Done", id="go", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#go", Button).focus()

    @on(Checkbox.Changed, "#teardown")
    def teardown_changed(self, event: Checkbox.Changed) -> None:
        self.query_one("#delete-branch", Checkbox).disabled = not event.value

    @on(Button.Pressed, "#keep")
    def keep(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#go")
    def go(self) -> None:
        if not self.query_one("#teardown", Checkbox).value:
            self.dismiss(None)
            return
        self.query_one("#go", Button).disabled = True
        self.tear_down()

    @work(group="after-merge", exclusive=True, exit_on_error=False)
    async def tear_down(self) -> None:
        self.query_one("#outcome", Static).update("… tearing down")
        r, error = await self.attempt(
            "worktree.teardown",
            {
                "name": self.worktree,
                "force": True,  # merged: what is left is archived before anything is removed
                "delete_branch": self.query_one("#delete-branch", Checkbox).value,
                "keep_agent": self.query_one("#keep-agent", Checkbox).value,
            },
        )
        if r is None:
            self.query_one("#outcome", Static).update(f"✗ {error}")
            self.query_one("#go", Button).disabled = False
            return
        self.dismiss(r)

"""`n`: one dialog from nothing to a working agent -- worktree, identity, tmux session, runtime,
first prompt -- with each step shown as it completes, and stopping at the first failure."""

from __future__ import annotations

from textual import on, work
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from thrum_tui.screens.base import FormDialog
from thrum_tui.snippet import short_path_lists

FIELDS = (
    ("name", "agent name", "impl_auth"),
    ("role", "role", "implementer"),
    ("module", "module", "auth"),
    ("branch", "branch", "feature/<name>"),
    ("base", "base", "HEAD"),
    ("intent", "intent", "what it works on"),
    ("prompt", "first prompt", "the first thing to tell it"),
)


class NewAgentScreen(FormDialog):
    DEFAULT_CSS = """
    NewAgentScreen #progress { height: auto; margin-top: 1; }
    """

    def __init__(self, runtimes: list[str], default_runtime: str) -> None:
        super().__init__()
        self.runtimes = runtimes
        self.default_runtime = default_runtime
        self.steps: list[str] = []
        self.result: dict | None = None

    def compose(self):
        with Vertical(id="dialog"):
            yield Label("New agent — worktree, tmux session, runtime", classes="title", markup=False)
            with VerticalScroll():
                for key, label, hint in FIELDS[:3]:
                    with Horizontal(classes="row"):
                        yield Label(label, markup=False)
                        yield Input(placeholder=hint, id=f"f-{key}")
                with Horizontal(classes="row"):
                    yield Label("runtime", markup=False)
                    yield Select(
                        [(r, r) for r in self.runtimes],
                        value=self.default_runtime,
                        allow_blank=False,
                        id="f-runtime",
                    )
                for key, label, hint in FIELDS[3:]:
                    with Horizontal(classes="row"):
                        yield Label(label, markup=False)
                        yield Input(placeholder=hint, id=f"f-{key}")
                yield Static("", id="progress", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Create", id="create", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#f-name", Input).focus()

    def value(self, key: str) -> str:
        return self.query_one(f"#f-{key}", Input).value.strip()

    @on(Input.Changed, "#f-name")
    def name_changed(self, event: Input.Changed) -> None:
        self.query_one("#f-branch", Input).placeholder = f"feature/{event.value.strip() or '<name>'}"

    def step(self, text: str, ok: bool | None = None) -> None:
        mark = {True: "✓ ", False: "✗ ", None: "… "}[ok]
        if self.steps and self.steps[-1].startswith("… "):
            self.steps.pop()
        self.steps.append(mark + text)
        self.query_one("#progress", Static).update("\n".join(self.steps))

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(self.result)

    def action_submit(self) -> None:
        self.create_pressed()

    @on(Button.Pressed, "#create")
    def create_pressed(self) -> None:
        if self.query_one("#create", Button).disabled:
            return
        self.steps.clear()  # only this attempt's steps: failed ones piled up (walk, bug 17)
        if not self.value("name") or not self.value("role"):
            self.step("an agent needs a name and a role", False)
            return
        self.query_one("#create", Button).disabled = True
        self.create()

    @work(group="new-agent", exclusive=True, exit_on_error=False)
    async def create(self) -> None:
        name, role = self.value("name"), self.value("role")
        runtime = str(self.query_one("#f-runtime", Select).value)
        params = {
            "name": name,
            "agent": name,
            "role": role,
            "module": self.value("module"),
            "intent": self.value("intent"),
            "runtime": runtime,
        }
        for key in ("branch", "base"):
            if self.value(key):
                params[key] = self.value(key)
        # A runtime the pane cannot start is refused before anything exists (walk bug 6).
        checked, error = await self.attempt("runtime.check", {"name": runtime, "agent": name, "role": role})
        if checked is None:
            return self.failed(error)
        self.step(f"creating worktree {name} and registering @{name}")
        made, error = await self.attempt("worktree.create", params)
        if made is None:
            return self.failed(error)
        self.result = made
        self.step(f"worktree {made['path']} on {made['branch']}; @{name} registered", True)
        if not made.get("session"):
            self.step("no tmux session (tmux is not available to the engine)", False)
            return
        self.step(f"launching {runtime} in tmux session {made['session']['name']}")
        launch = {"session": made["session"]["name"], "runtime": runtime}
        if self.value("prompt"):
            launch["prompt"] = self.value("prompt")
        r, error = await self.attempt("tmux.launch", launch)
        if r is None:
            return self.failed(error)
        if r.get("note"):
            return self.failed(r["note"])
        done = [f"{runtime} launched" if r.get("launched") else f"{runtime}: nothing to launch"]
        done += ["primed"] if r.get("primed") else []
        done += ["first prompt sent"] if r.get("prompted") else []
        self.step(", ".join(done), True)
        self.query_one("#cancel", Button).label = "Close"

    def failed(self, error: str | None) -> None:
        """Show why; allow another try unless the worktree already exists (then only Close)."""
        self.step(short_path_lists(error or "failed"), False)
        self.query_one("#create", Button).disabled = self.result is not None
        if self.result is not None:
            self.query_one("#cancel", Button).label = "Close"

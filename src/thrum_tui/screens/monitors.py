"""`m`: monitor rules -- the table with state and last match, the recent matches of the highlighted
rule, and a form to create or edit one (with a live test field for the regex)."""

from __future__ import annotations

import shlex
from typing import ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Footer, Input, Label, Select, Static

from thrum_engine.durations import parse_duration
from thrum_engine.patterns import PatternError, PatternTimeout, compile_pattern, search
from thrum_tui.screens.base import FormDialog, LiveView, Page
from thrum_tui.textual_compat import set_border_title
from thrum_tui.widgets.tables import RowTable, refill

SOURCES = [
    ("command (a child process)", "command"),
    ("pane (an agent's tmux pane)", "pane"),
    ("file (lines appended)", "file"),
]
SAMPLE_BUDGET_SECONDS = 0.05  # the live test runs on the console's loop at each key press

SOURCE_HINT = {
    "command": "argv, e.g. tail -F build.log",
    "pane": "tmux session name",
    "file": "path in the repo",
}


def rule_row(m: dict) -> tuple[str, ...]:
    return (
        m["name"],
        source_text(m)[:30],
        f"/{m['match']}/"[:24],
        m["to"],
        m["status"],
        str(m["matches"]),
        (m["last_match_at"] or "-")[5:19].replace("T", " "),
        (m["last_error"] or "")[:30],
    )


def source_text(m: dict) -> str:
    spec = m["spec"]
    if m["source"] == "command":
        return "$ " + shlex.join(spec["argv"])
    return f"pane {spec['session']}" if m["source"] == "pane" else f"file {spec['path']}"


def regex_verdict(pattern: str, sample: str) -> tuple[bool, str]:
    """(usable, what to show) for the live test field."""
    if not pattern:
        return False, "a pattern is required"
    try:
        rx = compile_pattern(pattern)
    except PatternError as exc:
        return False, f"✗ invalid regex: {exc}"
    if not sample:
        return True, "✓ valid regex — type a sample line to test it"
    try:
        hit = search(rx, sample, SAMPLE_BUDGET_SECONDS)
    except PatternTimeout:
        return False, "✗ too slow on the sample (catastrophic backtracking?): the engine would stop this rule"
    return True, "✓ matches the sample" if hit else "○ does not match the sample"


class MonitorsScreen(LiveView, Page):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("n", "new", "new rule"),
        Binding("e", "edit", "edit"),
        Binding("s", "stop", "stop"),
        Binding("r", "restart", "restart"),
    ]
    DEFAULT_CSS = """
    MonitorsScreen > #rules { height: 1fr; border: round $primary; }
    MonitorsScreen > #rules:focus { border: round $accent; }
    MonitorsScreen > #matches { height: 1fr; border: round $primary; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.rules: list[dict] = []
        self.events: list[dict] = []

    def compose(self):
        yield RowTable(id="rules", cursor_type="row")
        yield Static("", id="matches", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#rules", DataTable)
        table.border_title = "MONITOR RULES"
        for c in ("name", "source", "match", "to", "state", "hits", "last match", "error"):
            table.add_column(c, key=c)
        self.query_one("#matches", Static).border_title = "RECENT MATCHES"
        table.focus()
        self.reload()

    @property
    def selected(self) -> dict | None:
        table = self.query_one("#rules", DataTable)
        if not self.rules or not 0 <= table.cursor_row < len(self.rules):
            return None
        return self.rules[table.cursor_row]

    def refresh_from_engine(self) -> None:
        self.reload()

    @work(group="monitors", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        r = await self.call("monitor.list", {"all": True})
        if r is None:
            return
        keep = (self.selected or {}).get("id")
        self.rules = r["monitors"]
        table = self.query_one("#rules", DataTable)
        ids = [m["id"] for m in self.rules]
        refill(table, [rule_row(m) for m in self.rules], ids)
        if keep in ids:
            table.move_cursor(row=ids.index(keep), animate=False)
        await self.show_matches()

    async def show_matches(self) -> None:
        box = self.query_one("#matches", Static)
        rule = self.selected
        if rule is None:
            box.update("no rules yet: n creates one")
            return
        r = await self.call("monitor.logs", {"id": rule["id"], "limit": 30})
        if r is None:
            return
        self.events = r["events"]
        set_border_title(box, f"RECENT — {rule['name']}")
        recent = "\n".join(f"{e['at'][11:19]} {e['kind']:<8} {e['line'] or e['detail']}" for e in self.events)
        # A stopped rule says why first, whole (the table's error column is cut to fit).
        why = (
            f"✗ {rule['status']}: {rule['last_error']}\n"
            if rule["status"] != "running" and rule["last_error"]
            else ""
        )
        box.update((why + recent) or "no matches yet")

    @on(DataTable.RowHighlighted, "#rules")
    def rule_highlighted(self) -> None:
        self.matches_worker()

    @work(group="monitor-matches", exclusive=True, exit_on_error=False)
    async def matches_worker(self) -> None:
        await self.show_matches()

    def _reload_after(self, _result: object) -> None:
        self.reload()

    def action_new(self) -> None:
        self.app.push_screen(MonitorForm(None), self._reload_after)

    def action_edit(self) -> None:
        if self.selected is not None:
            self.app.push_screen(MonitorForm(self.selected), self._reload_after)

    def action_stop(self) -> None:
        if self.selected is not None:
            self.act("monitor.stop", self.selected["id"])

    def action_restart(self) -> None:
        if self.selected is not None:
            self.act("monitor.restart", self.selected["id"])

    @work(group="monitor-act", exit_on_error=False)
    async def act(self, method: str, mid: str) -> None:
        r = await self.call(method, {"id": mid})
        if r is not None:
            self.app.notify(f"{r['monitor']['name']}: {r['monitor']['status']}", timeout=2)
        self.reload()


class MonitorForm(FormDialog):
    """Create (rule None) or edit (pattern, target, debounce, schedule; the source stays)."""

    def action_submit(self) -> None:
        self.save()

    def __init__(self, rule: dict | None) -> None:
        super().__init__()
        self.rule = rule

    def compose(self):
        rule = self.rule or {}
        with Vertical(id="dialog"):
            yield Label(
                f"Edit monitor {rule['name']}" if rule else "New monitor rule", classes="title", markup=False
            )
            with Horizontal(classes="row"):
                yield Label("name", markup=False)
                yield Input(rule.get("name", ""), placeholder="ci-alert", id="m-name", disabled=bool(rule))
            with Horizontal(classes="row"):
                yield Label("source", markup=False)
                yield Select(
                    SOURCES,
                    value=rule.get("source", "command"),
                    allow_blank=False,
                    id="m-source",
                    disabled=bool(rule),
                )
            with Horizontal(classes="row"):
                yield Label("watch", markup=False)
                yield Input(
                    source_text(rule) if rule else "",
                    placeholder=SOURCE_HINT["command"],
                    id="m-watch",
                    disabled=bool(rule),
                )
            with Horizontal(classes="row"):
                yield Label("match", markup=False)
                yield Input(
                    rule.get("match", ""), placeholder="regular expression, e.g. ALERT|FAILED", id="m-match"
                )
            with Horizontal(classes="row"):
                yield Label("test line", markup=False)
                yield Input(placeholder="paste a line to test the pattern", id="m-sample")
            yield Static("", id="m-verdict", markup=False)
            with Horizontal(classes="row"):
                yield Label("to", markup=False)
                yield Input(
                    rule.get("to", ""), placeholder="@agent, @role or @everyone (empty: you)", id="m-to"
                )
            with Horizontal(classes="row"):
                yield Label("debounce", markup=False)
                yield Input(f"{rule['debounce']:g}s" if rule else "", placeholder="60s", id="m-debounce")
            with Horizontal(classes="row"):
                yield Label("schedule", markup=False)
                yield Input(
                    rule.get("schedule") or "",
                    placeholder="cron, command rules only: */5 * * * *",
                    id="m-schedule",
                )
            yield Static("", id="m-error", classes="problem", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save" if rule else "Start", id="save", variant="primary")

    def on_mount(self) -> None:
        (self.query_one("#m-match", Input) if self.rule else self.query_one("#m-name", Input)).focus()
        self.verdict()

    def val(self, key: str) -> str:
        return self.query_one(f"#m-{key}", Input).value.strip()

    @on(Input.Changed, "#m-match")
    @on(Input.Changed, "#m-sample")
    def verdict(self) -> None:
        ok, text = regex_verdict(
            self.query_one("#m-match", Input).value, self.query_one("#m-sample", Input).value
        )
        box = self.query_one("#m-verdict", Static)
        box.update(text)
        box.set_class(not ok, "problem")
        box.set_class(ok, "ok")

    @on(Select.Changed, "#m-source")
    def source_changed(self, event: Select.Changed) -> None:
        self.query_one("#m-watch", Input).placeholder = SOURCE_HINT.get(str(event.value), "")

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)

    def params(self) -> tuple[str, dict] | str:
        """(method, params) or the problem to show."""
        p: dict = {}
        if self.val("debounce"):
            try:
                p["debounce"] = parse_duration(self.val("debounce"))
            except ValueError as exc:
                return f"debounce: {exc}"
        # An empty "to" means you: "unknown recipient: @" said nothing useful (walk bug 14).
        to = self.val("to") or f"@{self.app.operator}"  # type: ignore[attr-defined]
        if self.rule is not None:
            p.update(id=self.rule["id"], match=self.query_one("#m-match", Input).value, to=to)
            if self.rule["source"] == "command":
                p["schedule"] = self.val("schedule")
            return "monitor.edit", p
        source = str(self.query_one("#m-source", Select).value)
        p.update(name=self.val("name"), match=self.query_one("#m-match", Input).value, to=to)
        watch = self.val("watch")
        if not watch:
            return f"what to watch: {SOURCE_HINT[source]}"
        if source == "command":
            try:
                p["argv"] = shlex.split(watch)
            except ValueError as exc:
                return f"command: {exc}"
            if self.val("schedule"):
                p["schedule"] = self.val("schedule")
            return "monitor.start", p
        if self.val("schedule"):
            return "only command rules take a schedule"
        if source == "pane":
            return "monitor.watch_pane", {**p, "session": watch}
        return "monitor.watch_file", {**p, "path": watch}

    @on(Button.Pressed, "#save")
    def save(self) -> None:
        got = self.params()
        if isinstance(got, str):
            self.query_one("#m-error", Static).update(got)
            return
        self.submit(*got)

    @work(group="monitor-form", exclusive=True, exit_on_error=False)
    async def submit(self, method: str, params: dict) -> None:
        r, error = await self.attempt(method, params)
        if r is None:
            self.query_one("#m-error", Static).update(f"✗ {error}")
            return
        self.app.notify(f"monitor {r['monitor']['name']}: {r['monitor']['status']}", timeout=2)
        self.dismiss(r["monitor"])

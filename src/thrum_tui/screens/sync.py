"""`S`: the journal's sync: its mode and why, the remote, the last sync and error, the recent cycles;
"sync now" runs a cycle and shows its result. Also what the header's `sync:` word summarises."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Label, Static

from thrum_tui.screens.base import Dialog, LiveView
from thrum_tui.widgets.tables import RowTable, refill


def cycle_row(c: dict) -> tuple[str, ...]:
    done = []
    if c.get("committed_shards"):
        done.append(f"committed {c['committed_shards']}")
    if c.get("applied_events"):
        done.append(f"+{c['applied_events']} events")
    if c.get("pushed"):
        done.append("pushed")
    return (
        c["started_at"][11:19],
        c["reason"],
        c["result"],
        f"{c['seconds']:.2f}s",
        ", ".join(done) or "-",
        (c.get("error") or "; ".join(c.get("notes") or []))[:60],
    )


def summary_lines(st: dict) -> str:
    lines = [f"{st['mode']}: {st['why']}"]
    if st.get("url"):
        lines.append(f"remote {st['remote']} {st['url']}  branch {st['branch']}")
    lines.append(f"last sync: {st.get('last_sync_at') or 'never'}")
    if st.get("last_error"):
        lines.append(f"last error: {st['last_error']} ({st['failures']} in a row)")
    for c in st.get("collisions") or []:
        lines.append(
            f"name collision: @{c['name']} is also registered on {c.get('their_host') or 'another clone'}"
        )
    return "\n".join(lines)


class SyncScreen(LiveView, Dialog):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_dialog", "close"),
        Binding("s", "sync_now", "sync now"),
    ]
    DEFAULT_CSS = """
    SyncScreen DataTable { height: auto; max-height: 14; margin: 1 0; }
    """

    def compose(self):
        with Vertical(id="dialog"):
            yield Label("Sync", classes="title", markup=False)
            yield Static("", id="summary", markup=False)
            yield RowTable(id="cycles", cursor_type="row")
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close")
                yield Button("Sync now", id="sync-now", variant="primary")

    def on_mount(self) -> None:
        table = self.query_one("#cycles", DataTable)
        for c in ("at", "why", "result", "took", "did", "error"):
            table.add_column(c, key=c)
        self.reload()

    @work(group="sync-load", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        st = await self.call("sync.status", {})
        if st is None:
            return
        self.query_one("#summary", Static).update(summary_lines(st))
        table = self.query_one("#cycles", DataTable)
        recent = st.get("recent") or []
        refill(table, [cycle_row(c) for c in recent], [str(i) for i in range(len(recent))])

    def refresh_from_engine(self) -> None:
        self.reload()

    @on(Button.Pressed, "#close")
    def close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#sync-now")
    def action_sync_now(self) -> None:
        self.run_cycle()

    @work(group="sync-run", exclusive=True, exit_on_error=False)
    async def run_cycle(self) -> None:
        self.app.notify("syncing…", timeout=2)
        r = await self.call("sync.force", {"wait": True})
        if r is not None:
            c = r["cycle"]
            self.app.notify(
                f"sync {c['result']}" + (f": {c['error']}" if c.get("error") else ""),
                severity="error" if c["result"] != "ok" else "information",
                timeout=4,
            )
        self.reload()

"""`H`: open asks (who waits on whom, how long, due or overdue) and the messages the loop guard holds
(issue 16); `r` releases the highlighted held message, `A` every one; enter (or `a`) answers the
highlighted ask in the compose bar, `o` ("ok") acks it (an ask that needs no reply: walk, bug 15). `d` on a message in a thread
opens its ledger (LedgerScreen): each recipient's steps, stored → notified (path) → seen → read →
acked / replied, with times, and why one is not delivered yet."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Label, Static

from thrum_engine.durations import human_age
from thrum_tui.screens.base import Dialog, LiveView
from thrum_tui.widgets.tables import RowTable, refill


def ask_row(a: dict) -> tuple[str, ...]:
    due = "OVERDUE" if a.get("overdue") else (a["due_at"][5:16].replace("T", " ") if a.get("due_at") else "-")
    return (
        a["message_id"][-6:],
        f"@{a['sender']} → @{a['recipient']}",
        human_age(a["age_seconds"]),
        due,
        str(a["reminders"]),
        a["preview"][:40],
    )


def held_row(h: dict) -> tuple[str, ...]:
    return (
        h["message_id"][-6:],
        f"@{h['author']} → " + ", ".join("@" + r for r in h["recipients"]),
        h["held_at"][11:19],
        h["reason"][:50],
        h["preview"][:30],
    )


class AsksScreen(LiveView, Dialog):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_dialog", "close"),
        Binding("r", "release_one", "release held"),
        Binding("A", "release_all", "release all"),
        Binding("a", "answer", "answer ask"),
        Binding("o", "ack", "ack ask (ok)"),
    ]
    DEFAULT_CSS = """
    AsksScreen > #dialog { width: 120; }
    AsksScreen DataTable { height: auto; max-height: 12; margin-bottom: 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.asks: list[dict] = []
        self.held: list[dict] = []

    def compose(self):
        with Vertical(id="dialog"):
            yield Label("Asks and held messages", classes="title", markup=False)
            yield Label("", id="asks-title", markup=False)
            yield RowTable(id="asks", cursor_type="row")
            yield Label("", id="held-title", markup=False)
            yield RowTable(id="held", cursor_type="row")
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close")
                yield Button("Ack ask", id="ack")
                yield Button("Answer ask", id="answer", variant="success")
                yield Button("Release all held", id="release-all", variant="warning")
                yield Button("Release", id="release", variant="primary")

    def on_mount(self) -> None:
        for c in ("id", "who", "age", "due", "reminded", "ask"):
            self.query_one("#asks", DataTable).add_column(c, key=c)
        for c in ("id", "who", "held at", "why", "text"):
            self.query_one("#held", DataTable).add_column(c, key=c)
        self.reload()

    @work(group="asks-load", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        asks = await self.call("ask.list", {"everyone": True})
        held = await self.call("message.held", {})
        if asks is None or held is None:
            return
        self.asks, self.held = asks["asks"], held["held"]
        self.query_one("#asks-title", Label).update(
            f"Open asks: {len(self.asks)}"
            + ("  (enter or a answers the highlighted one, o acks it)" if self.asks else "")
        )
        self.query_one("#held-title", Label).update(
            f"Held by the loop guard: {len(self.held)}"
            + ("  (r releases the highlighted one)" if self.held else "")
        )
        for table_id, rows, fmt in (("#asks", self.asks, ask_row), ("#held", self.held, held_row)):
            refill(
                self.query_one(table_id, DataTable),
                [fmt(item) for item in rows],
                [item["message_id"] + table_id for item in rows],
            )
        if self.held:
            self.query_one("#held", DataTable).focus()

    def refresh_from_engine(self) -> None:
        self.reload()

    @on(Button.Pressed, "#close")
    def close(self) -> None:
        self.dismiss(None)

    def highlighted_ask(self) -> dict | None:
        table = self.query_one("#asks", DataTable)
        if self.asks and 0 <= table.cursor_row < len(self.asks):
            return self.asks[table.cursor_row]
        self.app.notify("no open ask to answer", severity="warning", timeout=3)
        return None

    @on(DataTable.RowSelected, "#asks")
    @on(Button.Pressed, "#answer")
    def action_answer(self) -> None:
        """The reply is written in the main screen's compose bar, in reply mode, as `r` on a
        message is: the ask is answered by the reply (the engine closes it)."""
        a = self.highlighted_ask()
        me = self.app.operator  # type: ignore[attr-defined]
        if a is not None and a["recipient"] != me:
            # Your reply would not close it: only @recipient's answer does.
            self.app.notify(f"that ask waits on @{a['recipient']}, not you", severity="warning", timeout=3)
        elif a is not None:
            message = {
                "message_id": a["message_id"],
                "author": a["sender"],
                "body": {"content": a["preview"]},
            }
            self.app.reply_to(message)  # type: ignore[attr-defined]

    @on(Button.Pressed, "#ack")
    def action_ack(self) -> None:
        a = self.highlighted_ask()
        if a is not None:
            self.ack(a["message_id"])

    @work(group="asks-ack", exit_on_error=False)
    async def ack(self, message_id: str) -> None:
        r = await self.call("ask.ack", {"message_id": message_id})
        if r is not None:
            said = f"acked @{r['sender']}'s ask" if r["acked"] else f"already {r['already']}"
            self.app.notify(said, timeout=3)
        self.reload()

    @on(Button.Pressed, "#release")
    def action_release_one(self) -> None:
        table = self.query_one("#held", DataTable)
        if self.held and 0 <= table.cursor_row < len(self.held):
            self.release({"message_ids": [self.held[table.cursor_row]["message_id"]]})

    @on(Button.Pressed, "#release-all")
    def action_release_all(self) -> None:
        if self.held:
            self.release({"all": True})

    @work(group="asks-release", exit_on_error=False)
    async def release(self, params: dict) -> None:
        r = await self.call("message.release", params)
        if r is not None:
            n = r["total"]
            self.app.notify(f"released {n} held message{'' if n == 1 else 's'}: delivering", timeout=3)
        self.reload()


def ledger_lines(m: dict) -> str:
    out = []
    for d in m.get("deliveries", []):
        word = d["state"] if d.get("delivered", True) else "NOT YET DELIVERED"
        out.append(f"@{d['recipient']}: {word}" + (" (ask)" if d.get("ask") else ""))
        for st in d.get("steps", []):
            took = "" if st["state"] == "stored" else f"  +{st['after_seconds']:.1f}s"
            via = f" via {st['via']}" if st.get("via") else ""
            out.append(f"    {st['state']:<9} {st['at'][11:23]}{took}{via}")
        if not d.get("delivered", True):
            out.append(f"    why: {d.get('undelivered_reason', '')}")
        if d.get("ack_note"):
            out.append(f"    ack note: {d['ack_note']}")
    return "\n".join(out) or "no recipients"


class LedgerScreen(LiveView, Dialog):
    def __init__(self, message_id: str) -> None:
        super().__init__()
        self.message_id = message_id

    def compose(self):
        with Vertical(id="dialog"):
            yield Label(f"Delivery ledger — {self.message_id}", classes="title", markup=False)
            with VerticalScroll():
                yield Static("", id="ledger", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        self.reload()

    @work(group="ledger-load", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        r = await self.call("message.get", {"message_id": self.message_id})
        if r is not None:
            self.query_one("#ledger", Static).update(ledger_lines(r["message"]))

    def refresh_from_engine(self) -> None:
        self.reload()

    @on(Button.Pressed, "#close")
    def close(self) -> None:
        self.dismiss(None)

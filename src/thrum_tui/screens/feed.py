"""`f` feed and `/` find: all traffic newest first, narrowed by a filter line such as
`@bob role:reviewer scope:module:auth monitors flaky test` (words that are not filters are text)."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import Footer, Input, Label, OptionList
from textual.widgets.option_list import Option

from thrum_tui.screens.base import LiveView, Page
from thrum_tui.snippet import one_line
from thrum_tui.widgets.conversation import review_text, with_review_events
from thrum_tui.widgets.tables import RowList

FEED_LIMIT = 300


def parse_filter(text: str) -> dict:
    params: dict = {}
    words = []
    for w in text.split():
        if w.startswith("@") and len(w) > 1 and "agent" not in params:
            params["agent"] = w[1:]
        elif w.startswith("role:") and len(w) > 5:
            params["role"] = w[5:]
        elif w.startswith("scope:") and w.count(":") >= 2:
            params["scope"] = w[6:]
        elif w == "monitors":
            params["monitors"] = True
        else:
            words.append(w)
    if words:
        params["text"] = " ".join(words)
    return params


def feed_line(m: dict) -> str:
    when = m["created_at"][5:16].replace("T", " ")
    review = review_text(m, "")
    if review is not None and m["message_id"] == m["review_event"]["event_id"]:
        return f"{when} {review}"  # a review event of its own
    to = "all" if m.get("broadcast") else ", ".join(m.get("to") or []) or "?"
    text = review or one_line(m["body"]["content"])
    thread = " ↳" if m.get("reply_to") else ""
    tasks = "".join(f" [{t}]" for t in m.get("tasks") or ())  # beads task chips (issue 16)
    scheduled = " ⏰" if (m.get("meta") or {}).get("scheduled") else ""
    return f"{when} @{m['author']} → {to}{thread}{tasks}{scheduled}  {text}"


def review_params(params: dict) -> dict | None:
    """The review history a feed filter takes in: everyone's, or an agent's; none under a filter
    review events cannot match (a role, a scope, monitors, a thread)."""
    if {"role", "scope", "monitors", "thread_id"} & params.keys():
        return None
    return {"agent": params["agent"], "limit": FEED_LIMIT} if "agent" in params else {"limit": FEED_LIMIT}


class FeedScreen(LiveView, Page):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("slash", "focus_filter", "filter"),
        Binding("r", "reply", "reply"),
    ]
    DEFAULT_CSS = """
    FeedScreen > #feed-title { padding: 0 2; color: $accent; text-style: bold; }
    FeedScreen > #filter { margin: 0 1; }
    FeedScreen > OptionList { height: 1fr; border: round $primary; }
    """

    def __init__(self, *, title: str = "FEED — all traffic", query: str = "", find: bool = False) -> None:
        super().__init__()
        self.heading = title
        self.filter_text = query
        self.find = find
        self.messages: list[dict] = []

    def compose(self):
        yield Label(self.heading, id="feed-title", markup=False)
        yield Input(
            self.filter_text, placeholder="filter: @agent role:R scope:type:value monitors text…", id="filter"
        )
        yield RowList(id="feed")
        yield Footer()

    def on_mount(self) -> None:
        if self.find:
            self.query_one("#filter", Input).focus()
        else:
            self.query_one("#feed", OptionList).focus()
        self.reload()

    @property
    def lines(self) -> list[str]:
        return [feed_line(m) for m in self.messages]

    @property
    def highlighted_message(self) -> dict | None:
        feed = self.query_one("#feed", OptionList)
        if feed.highlighted is None or not self.messages:
            return None
        option_id = feed.get_option_at_index(feed.highlighted).id
        return next((m for m in self.messages if m["message_id"] == option_id), None)

    def action_reply(self) -> None:
        """Reply to the message highlighted here, not to the main screen's (walk bug 3)."""
        self.app.reply_to(self.highlighted_message)  # type: ignore[attr-defined]

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.reload()

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.query_one("#feed", OptionList).focus()

    def refresh_from_engine(self) -> None:
        self.reload()

    @work(group="feed", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        params = parse_filter(self.filter_text)
        r = await self.call("message.feed", {**params, "limit": FEED_LIMIT})
        if r is None:
            return
        messages = r["messages"]
        wanted = review_params(params)
        h = await self.call("review.history", wanted) if wanted is not None else None
        if h is not None and h["events"]:
            messages = with_review_events(messages, h["events"])
            if "text" in params:  # events of their own match the filter's text as they read
                text = params["text"].lower()
                messages = [
                    m
                    for m in messages
                    if m["message_id"] != m.get("review_event", {}).get("event_id")
                    or text in feed_line(m).lower()
                ]
            messages.sort(key=lambda m: (m["created_at"], m["message_id"]), reverse=True)
            messages = messages[:FEED_LIMIT]
        self.messages = messages
        feed = self.query_one("#feed", OptionList)
        feed.clear_options()
        if not self.messages:
            feed.add_option(Option(Content.styled("nothing matches", "$text-muted"), disabled=True))
            return
        feed.add_options(Option(Content(feed_line(m)), id=m["message_id"]) for m in self.messages)
        feed.highlighted = 0

    @on(OptionList.OptionSelected, "#feed")
    def open_thread(self, event: OptionList.OptionSelected) -> None:
        m = next((x for x in self.messages if x["message_id"] == event.option.id), None)
        if m is not None:
            self.app.open_thread(m)  # type: ignore[attr-defined]

"""The conversation with one agent: messages both ways plus broadcasts, newest at the bottom, each
with its delivery mark; a highlight to reply to, and a thread's replies folded under its root."""

from __future__ import annotations

from textual.content import Content
from textual.widgets.option_list import Option

from thrum_tui.snippet import one_line
from thrum_tui.textual_compat import no_layout_virtual_size, set_border_subtitle, set_border_title
from thrum_tui.widgets.tables import RowList


def merge_conversation(
    operator: str,
    agent: str | None,
    inbox: list[dict],
    sent: list[dict],
    reviews: list[dict] = (),  # type: ignore[assignment]
) -> list[dict]:
    """Messages between the operator and `agent` (or all mail to the operator when agent is the
    operator or None), plus broadcasts and the agent's review events; oldest first, each once."""
    mine = agent is None or agent == operator
    picked: dict[str, dict] = {}
    for m in inbox:
        if mine or m["author"] == agent or m.get("broadcast"):
            picked[m["message_id"]] = m
    if not mine:
        for m in sent:
            picked[m["message_id"]] = m
    return sorted(
        with_review_events(list(picked.values()), reviews), key=lambda m: (m["created_at"], m["message_id"])
    )


# -- review events (issue 14): requests, verdicts and merges among the messages --
REVIEW_MARK = "⟐"
REVIEW_TAG = {
    "requested": "review requested",
    "changes_requested": "changes requested",
    "approved": "approved",
    "merged": "merged",
}


def with_review_events(messages: list[dict], events: list[dict]) -> list[dict]:
    """`messages` with `review.history` events among them: an event made by a message (the verdict's
    message to the agent, a "done" tagged for review) marks that message; the others (a request
    from `thrum review request`, a merge) are entries of their own, keyed by their event id.
    Either kind carries the event as `review_event`."""
    if not events:
        return messages
    by_message = {e["message_id"]: e for e in events if e.get("message_id")}
    out, marked = [], set()
    for m in messages:
        e = by_message.get(m["message_id"])
        if e is not None:
            m = {**m, "review_event": e}
            marked.add(e["event_id"])
        out.append(m)
    out += [
        {
            "message_id": e["event_id"],
            "created_at": e["at"],
            "author": e["author"],
            "to": [],
            "body": {"content": ""},
            "review_event": e,
        }
        for e in events
        if e["event_id"] not in marked
    ]
    return out


def review_text(m: dict, me: str) -> str | None:
    """How a review entry reads (None: not one); a marked message reads as itself, tagged."""
    e = m.get("review_event")
    if e is None:
        return None
    if m["message_id"] == e["event_id"]:
        from thrum_engine.review.words import history_line

        return f"{REVIEW_MARK} {history_line(e, me)}"
    return f"{REVIEW_MARK} {REVIEW_TAG.get(e['kind'], e['kind'])} · " + one_line(m["body"]["content"])


def delivery_mark(m: dict) -> str:
    """✓ stored (or notified), ◎ seen by every recipient (shown to them, not yet read), ✓✓ read by
    every recipient, ↩ replied by one; nothing for mail to you. Seen and read differ: a peek is
    not a read (walk bug 7). Until it is seen, ✓ names the path that notified (channel, wait, hook,
    nudge)."""
    dels = m.get("deliveries")
    if not dels:
        return ""
    # Issue 16: "?" while an ask waits for someone's answer; "⚠" while someone was never shown it.
    ask = "?" if any(d.get("ask") and d["state"] not in ("acked", "replied") for d in dels) else ""
    states = [d["state"] for d in dels]
    if "replied" in states:
        return "↩" + ask
    if all(s in ("read", "acked", "replied") for s in states):
        return "✓✓" + ask
    if any(d.get("delivered") is False for d in dels):
        return "⚠ not yet delivered" + ask
    if all(s in ("seen", "read", "acked", "replied") for s in states):
        return "◎" + ask
    via = sorted({d["via"] for d in dels if d["state"] == "notified" and d.get("via")})
    return ("✓ " + "/".join(via) if via else "✓") + ask


def fold_threads(messages: list[dict]) -> list[tuple[dict, int]]:
    """Each thread shows once, at its root (or its first message here), with how many replies it
    folds; the thread screen shows them all."""
    out: list[tuple[dict, int]] = []
    index: dict[str, int] = {}
    for m in messages:
        thread = m.get("thread_id")
        if thread and thread in index:
            root, n = out[index[thread]]
            out[index[thread]] = (root, n + 1)
            continue
        if thread:
            index[thread] = len(out)
        out.append((m, 0))
    return out


def state_source(member: dict | None) -> str:
    """Where the agent's state comes from, e.g. "working · pane: output 40s ago" or
    "idle · session: no activity for 6m" -- so the operator knows how much to trust it."""
    if not member:
        return ""
    from thrum_engine.durations import human_age

    head = " · ".join(x for x in (member.get("role"), member.get("runtime")) if x)
    pane = member.get("pane_state")
    if pane and pane.get("state") == member.get("state"):
        why = f"{pane.get('source') or 'pane'}, {human_age(pane.get('age_seconds') or 0)} ago"
    else:
        why = f"session: last activity {human_age(member.get('idle_seconds') or 0)} ago"
    return f"{head} · {member.get('state')} · {why}" if head else f"{member.get('state')} · {why}"


MAX_SHOWN = 400  # lines kept while appending; past this the view is rebuilt from the latest page


class Conversation(RowList):
    # Each change of Widget's `virtual_size` asks for a layout of the whole screen, so every new
    # line re-rendered every widget. The list's own box never changes size, and OptionList
    # already updates its scrollbars when its lines change (`_update_lines` -> `_scroll_update`).
    virtual_size = no_layout_virtual_size()

    DEFAULT_CSS = """
    Conversation {
        height: 1fr;
        border: round $primary;
        padding: 0 1;
    }
    Conversation:focus {
        border: round $accent;
    }
    """

    def __init__(self, operator: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.operator = operator
        self.agent: str | None = None
        self.messages: list[dict] = []
        self._plain: list[str] = []
        self._ids: list[str] = []
        self._rendered: dict[tuple, tuple[str, Content]] = {}
        self.border_title = "CONVERSATION"

    @property
    def plain_text(self) -> str:
        """What the operator reads, without styling (tests and copy use it)."""
        return "\n".join(self._plain)

    @property
    def highlighted_message(self) -> dict | None:
        if self.highlighted is None or not 0 <= self.highlighted < len(self.messages):
            return None
        return self.messages[self.highlighted]

    def _who(self, name: str) -> str:
        return "you" if name == self.operator else f"@{name}"

    def line_of(self, m: dict, folded: int) -> tuple[str, Content]:
        """(plain, styled) for one message; cached, as most lines are unchanged between refreshes."""
        mark = (
            delivery_mark(m) if m["author"] == self.operator else ("●" if m.get("is_read") is False else "")
        )
        key = (m["message_id"], folded, mark, m.get("updated_at"), "review_event" in m)
        hit = self._rendered.get(key)
        if hit is None:
            hit = self._rendered[key] = self._render_line(m, folded, mark)
            if len(self._rendered) > 4 * 1024:
                self._rendered.clear()
        return hit

    def _render_line(self, m: dict, folded: int, mark: str) -> tuple[str, Content]:
        when = m["created_at"][11:16]
        review = review_text(m, self.operator)
        if review is not None and m["message_id"] == m["review_event"]["event_id"]:
            # A review event of its own: no recipients, no delivery state.
            plain = f"{when} {review}"
            return plain, Content.from_markup(
                "[$text-muted]$when[/] [b $warning]$review[/]", when=when, review=review
            )
        to = (
            "all"
            if m.get("broadcast")
            else ", ".join(self._who(t.lstrip("@")) for t in m.get("to", [])) or "?"
        )
        text = review or one_line(m["body"]["content"])
        more = f"  [+{folded} in thread]" if folded else ""
        plain = f"{when} {self._who(m['author'])} → {to}  {text}{more}" + (f"  {mark}" if mark else "")
        rich = Content.from_markup(
            "[$text-muted]$when[/] [b $accent]$who[/] → $to  $text[$text-muted]$more[/] [$success]$mark[/]",
            when=when,
            who=self._who(m["author"]),
            to=to,
            text=text,
            more=more,
            mark=mark,
        )
        return plain, rich

    def show(self, agent: str | None, messages: list[dict], member: dict | None = None) -> None:
        """Show `messages` (oldest first) for `agent`. While the same agent stays selected, lines
        only ever append (a changed mark or fold count is replaced in place): an OptionList
        re-measures every line when one is removed, so the view grows up to MAX_SHOWN lines and
        is rebuilt once past that, instead of sliding a window on every refresh."""
        keep = self.highlighted_message
        same_agent = agent == self.agent and self._ids
        self.agent = agent
        set_border_title(self, "you (inbox)" if agent in (None, self.operator) else f"@{agent}")
        set_border_subtitle(self, state_source(member) if agent not in (None, self.operator) else "")
        folded = fold_threads(messages)
        if not folded:
            if self._ids or not self.option_count:
                self._ids, self._plain, self.messages = [], [], []
                self.clear_options()
                self.add_option(Option(Content.styled("no messages yet", "$text-muted"), disabled=True))
            return
        at_end = self.highlighted is None or self.highlighted >= len(self._ids) - 1
        position = {i: n for n, i in enumerate(self._ids)}
        fresh = [(m, n) for m, n in folded if m["message_id"] not in position]
        newest = self.messages[-1]["created_at"] if self.messages else ""
        appendable = same_agent and all(
            (m["created_at"], m["message_id"]) >= (newest, self._ids[-1]) for m, _ in fresh
        )
        if appendable and len(self._ids) + len(fresh) <= MAX_SHOWN:
            for m, n in folded:
                at = position.get(m["message_id"])
                if at is None:
                    continue
                plain, rich = self.line_of(m, n)
                if plain != self._plain[at]:
                    self._plain[at] = plain
                    self.messages[at] = m
                    self.replace_option_prompt(m["message_id"], rich)
            if not fresh:
                return  # nothing new: no redraw
            lines = [self.line_of(m, n) for m, n in fresh]
            self.add_options(Option(rich, id=m["message_id"]) for (m, _), (_, rich) in zip(fresh, lines))
            self._ids += [m["message_id"] for m, _ in fresh]
            self._plain += [p for p, _ in lines]
            self.messages += [m for m, _ in fresh]
        else:
            lines = [self.line_of(m, n) for m, n in folded]
            self.clear_options()
            self.add_options(Option(rich, id=m["message_id"]) for (m, _), (_, rich) in zip(folded, lines))
            self._ids = [m["message_id"] for m, _ in folded]
            self._plain = [p for p, _ in lines]
            self.messages = [m for m, _ in folded]
        if keep is not None and keep["message_id"] in self._ids and self.has_focus and not at_end:
            self.highlighted = self._ids.index(keep["message_id"])
        else:
            self.highlighted = len(self._ids) - 1
            self.scroll_end(animate=False)

"""Always at the bottom: `@name text` + enter sends; `@` completes names, roles and `@everyone`;
in reply mode the bar says whom it answers. The app does the sending."""

from __future__ import annotations

import time
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input

from thrum_tui.snippet import one_line
from thrum_tui.textual_compat import no_layout_virtual_size, set_border_title


def parse_compose(text: str) -> tuple[list[str], str]:
    """Leading `@address` words are recipients, the rest is the body, its lines kept as written.
    `\\@word` ends the recipients and starts the body with `@word`, so a body may begin with a
    mention (walk bug 19)."""
    rest = text.strip()
    to = []
    while rest.startswith("@"):
        end = next((i for i, ch in enumerate(rest) if ch.isspace()), len(rest))
        if end < 2:
            break
        to.append(rest[:end])
        rest = rest[end:].lstrip()
    if rest.startswith("\\@"):
        rest = rest[1:]
    return to, rest.rstrip()


class AddressSuggester(Suggester):
    """Completes the `@word` being typed at the end of the bar from the team's names and roles."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.addresses: list[str] = ["everyone"]

    def suggest(self, value: str) -> str | None:
        head, _, last = value.rpartition(" ")
        if not last.startswith("@") or any(not w.startswith("@") for w in head.split()):
            return None  # only while typing the leading recipients
        partial = last[1:].lower()
        for name in self.addresses:
            if name.startswith(partial) and name != partial:
                return f"{head} @{name}".lstrip() if head else f"@{name}"
        return None

    async def get_suggestion(self, value: str) -> str | None:
        return self.suggest(value)


class ComposeBar(Input):
    DEFAULT_CSS = """
    ComposeBar {
        dock: bottom;
        border: tall $primary;
    }
    ComposeBar:focus {
        border: tall $accent;
    }
    """

    class Send(Message):
        def __init__(self, to: list[str], body: str, reply_to: str | None) -> None:
            super().__init__()
            self.to = to
            self.body = body
            self.reply_to = reply_to

    PLACEHOLDER = "@name message — enter sends, tab completes"
    # Every keystroke changes an Input's virtual width, and Widget's `virtual_size` asks for a
    # layout of the whole screen when it changes. The bar's box never changes size (one line,
    # full width), so a repaint of the bar is all a keystroke needs: without this each key
    # re-rendered every widget (the team table too) and typing lagged while messages flowed.
    virtual_size = no_layout_virtual_size()
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "complete", "complete", show=False),
        Binding("ctrl+e,shift+enter", "expand", "more lines", show=False),
    ]

    class Expand(Message):
        """The operator wants the big compose box, starting from `text`."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        self.suggester_ = AddressSuggester()
        super().__init__(placeholder=self.PLACEHOLDER, id=id, suggester=self.suggester_)
        self.reply_to: dict | None = None
        self.draft: str | None = None  # the big box's text while it is not sent
        self.typed_at = 0.0  # monotonic time of the last edit: the app holds toasts while you type
        self.implicit: str | None = None  # who a line without `@name` goes to: the highlighted agent

    def set_addresses(self, names: list[str], roles: list[str]) -> None:
        self.suggester_.addresses = sorted(set(names)) + sorted(set(roles) - set(names)) + ["everyone"]

    def reply(self, message: dict | None) -> None:
        """Reply mode for `message` (None leaves it)."""
        self.reply_to = message
        if message is None:
            self.show_recipient()
        else:
            snippet = one_line(message["body"]["content"], 40)
            set_border_title(self, f"↩ reply to @{message['author']}: {snippet}")
            self.placeholder = "your reply — enter sends, escape cancels"

    def address_to(self, agent: str | None) -> None:
        """`agent` gets a line written without `@name` (the highlighted one; None: nobody)."""
        self.implicit = agent
        self.show_recipient()

    def show_recipient(self) -> None:
        """Say who a line without `@name` goes to: in the placeholder, and while such a line is
        typed in the border's title. It went silently to the highlighted agent, and a stray "1"
        meant as "focus the team" reached alice (walk, bug 8)."""
        if self.reply_to is not None:
            return
        to = self.implicit
        self.placeholder = f"to @{to} (or @name …) — enter sends, tab completes" if to else self.PLACEHOLDER
        typed = self.value.lstrip()
        set_border_title(self, f"to @{to}" if to and typed and not typed.startswith("@") else None)

    def action_complete(self) -> None:
        """Tab takes the suggested address (and a space, ready for the next word); with nothing
        to complete it moves focus on as usual."""
        # The suggester answers the same question Input asked it (no reading of Input's private
        # copy of the suggestion).
        suggestion = self.suggester_.suggest(self.value) if self.cursor_at_end else None
        if suggestion:
            self.value = suggestion + " "
            self.cursor_position = len(self.value)
        elif self.is_attached:
            self.screen.focus_next()

    def keep_draft(self, text: str) -> None:
        """A multi-line draft not sent (escaped, or refused): the bar shows it on one line and
        the big box gets it back whole."""
        self.draft = text
        self.value = " ".join(text.split())

    def action_expand(self) -> None:
        whole = self.draft is not None and self.value == " ".join(self.draft.split())
        self.post_message(self.Expand(self.draft if whole and self.draft is not None else self.value))

    def on_paste(self, event: events.Paste) -> None:
        """More than one line goes to the big box whole; Input would keep only the first. Lines
        may end in CR (tmux's paste-buffer, some terminals) as well as LF."""
        lines = event.text.strip("\r\n").splitlines()
        if len(lines) > 1:
            event.prevent_default()
            event.stop()
            head = self.value[: self.cursor_position]
            tail = self.value[self.cursor_position :]
            self.post_message(self.Expand(head + "\n".join(lines) + tail))

    def on_input_changed(self, event: Input.Changed) -> None:
        self.typed_at = time.monotonic()
        self.show_recipient()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            return
        if self.reply_to is not None:
            self.post_message(self.Send([], event.value.strip(), self.reply_to["message_id"]))
            return
        to, body = parse_compose(event.value)
        self.post_message(self.Send(to, body, None))

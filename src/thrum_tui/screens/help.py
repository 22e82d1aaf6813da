"""`?`: every binding, grouped the way the operator thinks about them."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Label, Static

from thrum_tui.screens.base import Dialog

GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Move around",
        [
            ("↑ ↓  j k", "move in the focused list or table (every page)"),
            ("tab / shift+tab", "next / previous panel"),
            ("1 2 3 4", "focus the team, the conversation, the pane, compose"),
            ("'", "jump to an agent (fuzzy: name, role, intent)"),
            ("! @ # $", "team: only blocked, working, idle, offline (again: everyone)"),
            ("enter (team)", "open the agent: its conversation, its mail to you marked read"),
            ("escape", "back to the team / close a dialog"),
            ("g", "jump to what needs you: blocked, mail, a review"),
        ],
    ),
    (
        "Talk",
        [
            ("i", "compose (prefilled with the highlighted agent)"),
            ("@ … tab", "complete a name or role"),
            ("\\@word", "after the recipients: the text starts with @word"),
            ("enter (compose)", "send; the focus goes back where it was"),
            ("r", "reply to the highlighted message"),
            ("enter (conversation)", "open the message's thread"),
            ("f", "feed: all traffic"),
            ("H", "asks & held: a answers, o acks, r / A release"),
            ("D", "schedules: pending ones with their next fire time; x cancels (asks first)"),
            ("d (thread)", "the message's delivery ledger: each step per recipient, with times"),
            ("/", "find messages"),
            ("✓ ◎ ✓✓ ↩", "your message: stored, seen, read, replied"),
            ("⚠  ?", "your message: not yet delivered to someone; an ask still open"),
        ],
    ),
    (
        "Agents",
        [
            ("n", "new agent: worktree + tmux session + runtime + first prompt"),
            ("t", "teardown: audit, then confirm by typing the name"),
            ("a", "attach to the agent's pane (a popup inside tmux)"),
            ("z", "zoom: the pane on the whole screen, read-only"),
            ("c", "command queue: queue or send text to the pane"),
            ("R", "restart the runtime"),
            ("K", "kill the tmux session"),
            ("ctrl+c (pane)", "interrupt, after asking"),
            ("y / N (blocked agent)", "approve / deny (shift+n: No) its permission dialog"),
            ("L", "relaunch an exited or killed agent in place"),
        ],
    ),
    (
        "Review",
        [
            ("v / enter (queue)", "review the agent's work: files, diff, commits"),
            ("] [  j k  pgup pgdn", "next / previous hunk (on to the next file), line, page"),
            ("v (diff) … c", "comment on a range; c alone: the line; C: the whole file"),
            ("x  n p  u  s", "viewed; next / previous file; reload; side by side"),
            ("A / R / M", "approve / request changes (pending comments go too) / merge"),
            ("w", "worktrees: branch vs target, last commit, changes, merged, agent"),
        ],
    ),
    (
        "Console",
        [
            ("m", "monitor rules"),
            ("S", "sync: mode, remote, last sync, recent cycles; s syncs now"),
            ("ctrl+p", "command palette: every action by name, themes"),
            ("?", "this help"),
            ("q", "quit (live agents: the engine moves to a headless daemon)"),
        ],
    ),
]


class HelpScreen(Dialog):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("question_mark,q", "dismiss_dialog", "close")]

    def compose(self):
        with Vertical(id="dialog"):
            yield Label("Thrum console — keys", classes="title", markup=False)
            with VerticalScroll():
                for group, keys in GROUPS:
                    yield Static(Content.styled(group, "b $secondary"), markup=False)
                    for key, what in keys:
                        yield Static(Content.assemble((f"  {key:<22}", "b $accent"), what), markup=False)

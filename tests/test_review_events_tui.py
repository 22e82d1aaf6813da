"""Review events in the console: a request (asked with the CLI, or a "done" message tagged for
review), a verdict with its comments, an approval and a merge show in the agent's conversation and
in the feed, as they happen. Real repo, worktree, commits, tmux and the engine the console hosts."""

from __future__ import annotations

import pytest

import test_review_tui
from thrum_tui.screens.feed import FeedScreen
from thrum_tui.screens.review import ReviewScreen
from thrum_tui.widgets.conversation import Conversation
from thrum_tui.widgets.diff_view import DiffView
from tui_helpers import cli, select_agent, until

pytestmark = pytest.mark.timeout(240)
work = test_review_tui.work  # alice two commits ahead, her review asked with the note "ready"


async def test_review_events_show_in_the_conversation_and_the_feed(work):
    repo, alice, _path = work
    async with test_review_tui.console(repo) as (app, pilot):
        talk = app.query_one(Conversation)
        await select_agent(pilot, "alice")
        # `thrum review request --note ready` before the console started: an entry of its own.
        await until(pilot, lambda: "⟐ @alice asked for review of feature/alice: ready" in talk.plain_text)
        # A "done" message tagged for review: the message itself, marked as the request.
        await cli(alice, "send", "done, tests green", "--to", "@ada_lovelace", "--ref", "review:request")
        await until(
            pilot,
            lambda: "@alice → you  ⟐ review requested · done, tests green" in talk.plain_text,
            "the tagged message",
            last=lambda: talk.plain_text,
        )
        # A verdict with a comment, then an approval and a merge, as the review screen makes them.
        await app.engine.call(
            "review.draft", {"agent": "alice", "add": {"path": "app.txt", "line": 5, "body": "use a digit"}}
        )
        await app.engine.call("review.submit", {"agent": "alice", "verdict": "request_changes"})
        await until(
            pilot,
            lambda: "you → @alice  ⟐ changes requested · Review of feature/alice" in talk.plain_text,
            "the verdict",
            last=lambda: talk.plain_text,
        )
        await app.engine.call("review.submit", {"agent": "alice", "verdict": "approve", "summary": "ok"})
        await until(pilot, lambda: "⟐ approved · Review of feature/alice" in talk.plain_text, "the approval")
        merged = await app.engine.call("review.merge", {"agent": "alice", "force": True})
        line = f"⟐ you merged @alice's feature/alice into main (merge, {merged['merged_commit'][:8]})"
        await until(pilot, lambda: line in talk.plain_text, "the merge", last=lambda: talk.plain_text)
        lines = talk.plain_text.splitlines()
        order = [
            next(i for i, t in enumerate(lines) if what in t)
            for what in ("asked for review", "review requested", "changes requested", "approved", "merged")
        ]
        assert order == sorted(order)
        assert "1 comment" in lines[order[2]] or "1 comment(s)" in lines[order[2]]

        # The feed: every event, newest first, each once; a filter's text finds them too.
        await pilot.press("escape")
        app.query_one("#team").focus()
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FeedScreen) and app.screen.messages, "the feed")
        feed = app.screen
        assert isinstance(feed, FeedScreen)
        await until(pilot, lambda: any("merged @alice" in t for t in feed.lines), "the merge in the feed")
        shown = [t for t in feed.lines if "⟐" in t]
        assert [
            next(k for k in ("merged", "approved", "changes", "review requested", "asked") if k in t)
            for t in shown
        ] == [
            "merged",
            "approved",
            "changes",
            "review requested",
            "asked",
        ]
        # Filtered by text, a request whose message the text misses reads as a request of its own.
        feed.query_one("#filter").value = "asked for review"  # type: ignore[attr-defined]
        await until(
            pilot,
            lambda: (
                [t[12:] for t in feed.lines]
                == [
                    "⟐ @alice asked for review of feature/alice: done, tests green",
                    "⟐ @alice asked for review of feature/alice: ready",
                ]
            ),
            "the filter",
            last=lambda: feed.lines,
        )
        # Enter on a request of its own opens the agent's review.
        feed.query_one("#feed").focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review from the feed")


async def test_pending_comments_survive_an_engine_restart(work):
    repo, _alice, _path = work
    async with test_review_tui.console(repo) as (app, pilot):
        screen = await test_review_tui.open_review(app, pilot)
        await pilot.press("j")
        await test_review_tui.comment(pilot, "keep me")
        await until(pilot, lambda: len(screen.pending) == 1, "a pending comment")
    # The console (and the engine it hosted) stopped; a new one finds the comment still pending.
    async with test_review_tui.console(repo) as (app, pilot):
        screen = await test_review_tui.open_review(app, pilot)
        assert [(c["path"], c["line"], c["body"]) for c in screen.pending] == [("app.txt", 5, "keep me")]
        assert any(r.comment and r.comment.get("body") == "keep me" for r in screen.query_one(DiffView).rows)

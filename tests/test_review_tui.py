"""The review screen driven like a user: open an agent's work, move through files and hunks,
comment on a line and a range, request changes (the agent reads them with the CLI), see them
outdated when the agent commits again, approve, merge behind the preflight, tear down; and a
conflict refused cleanly. Real repo, worktrees, commits, tmux and the engine the console hosts."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from conftest import commit, enter, pane_state, wait_for, worktree_agent
from thrum_tui.screens.review import ReviewScreen
from thrum_tui.screens.review_dialogs import (
    AfterMergeDialog,
    CommentDialog,
    ConflictDialog,
    MergeDialog,
    SubmitDialog,
)
from thrum_tui.screens.worktrees import WorktreesScreen, tree_row
from thrum_tui.widgets.diff_view import DiffView
from thrum_tui.widgets.header_line import HeaderLine
from thrum_tui.widgets.review_queue import ReviewQueue
from tui_helpers import cli, console, notified, select_agent, until

pytestmark = pytest.mark.timeout(240)

APP_V1 = "".join(f"line {i}\n" for i in range(1, 31))
APP_V2 = APP_V1.replace("line 5\n", "line five\n").replace("line 25\n", "line twenty-five\n")


@pytest.fixture
def work(repo, monkeypatch):
    """alice in a worktree Thrum made: app.txt on main, changed in two places on her branch, and a
    new file; she asked for review. This process is the operator in the main checkout."""
    commit(repo, repo.path, {"app.txt": APP_V1}, "app")
    assert repo.run("init").code == 0
    alice = worktree_agent(repo, "alice", "implementer")
    path = alice.cwd
    commit(repo, path, {"app.txt": APP_V2}, "rename two lines")
    commit(repo, path, {"src/new.py": "def new():\n    return 1\n"}, "add new.py")
    alice.ok("review", "request", "--note", "ready")
    repo.run("daemon", "stop")
    repo.git("config", "user.name", "Ada Lovelace")
    repo.git("config", "user.email", "ada@example.com")  # the console's merge commits are hers
    enter(repo, monkeypatch)
    return repo, alice, path


async def idle(repo) -> None:
    await asyncio.to_thread(wait_for, lambda: pane_state(repo, "alice") == "idle", 20.0, "alice idle")


def preflight(app) -> str:
    """What the merge dialog's preflight line says ('' on another screen)."""
    return str(app.screen.query_one("#preflight").render()) if isinstance(app.screen, MergeDialog) else ""


async def open_review(app, pilot) -> ReviewScreen:
    queue = app.query_one(ReviewQueue)
    await until(pilot, lambda: queue.display and queue.row_count == 1, "the review queue")
    await select_agent(pilot, "alice")
    await pilot.press("v")
    await until(
        pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.loaded, "the review screen"
    )
    return app.screen  # type: ignore[return-value]


async def comment(pilot, text: str) -> None:
    await pilot.press("c")
    await until(pilot, lambda: isinstance(pilot.app.screen, CommentDialog), "the comment dialog")
    await pilot.press(*text, "enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, ReviewScreen), "back on the review")


async def test_review_comment_request_changes_outdated_approve_merge_teardown(work):
    repo, alice, path = work
    async with console(repo) as (app, pilot):
        await until(pilot, lambda: app.query_one(HeaderLine).needs_you >= 1, "needs you counts the request")
        screen = await open_review(app, pilot)
        view = screen.query_one(DiffView)
        assert [f.path for f in screen.files] == ["app.txt", "src/new.py"]
        assert [(f.added, f.removed) for f in screen.files] == [(2, 2), (2, 0)]
        assert view.file is not None and view.file.path == "app.txt"
        # `]` goes hunk by hunk, then on to the next file.
        await pilot.press("right_square_bracket")
        assert view.hunk_index() == 1
        await pilot.press("left_square_bracket")
        assert view.hunk_index() == 0
        # A line comment on the "-line 5" / "+line five" pair: the cursor starts on the first change.
        await pilot.press("j")
        assert view.cursor_row.line.text == "line five"  # type: ignore[union-attr]
        await comment(pilot, "say five as a digit")
        await until(pilot, lambda: len(screen.pending) == 1, "a pending comment")
        assert any(r.comment and r.comment.get("pending") for r in view.rows)
        # A range: v, two down, c.
        await pilot.press("right_square_bracket", "k", "v", "j", "j", "j")
        assert view.selection() == ("new", 24, 26)
        await comment(pilot, "this block needs a test")
        await until(pilot, lambda: len(screen.pending) == 2, "two pending comments")
        # Closing the screen keeps them: they live in the engine.
        await pilot.press("escape")
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.loaded)
        screen = app.screen
        assert isinstance(screen, ReviewScreen) and len(screen.pending) == 2
        # Request changes, with a summary.
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, SubmitDialog))
        await pilot.press(*"two things", "enter")
        await until(pilot, lambda: screen.review.get("verdict") == "request_changes" and not screen.pending)
        # The agent reads it with the CLI: the structured message and `review comments`.
        got = await cli(alice, "review", "comments")
        assert [(c["path"], c.get("line"), c.get("end_line"), c["outdated"]) for c in got["comments"]] == [
            ("app.txt", 5, None, False),
            ("app.txt", 24, 26, False),
        ]
        assert got["comments"][0]["quote"] == "line five"
        inbox = await cli(alice, "inbox")
        (msg,) = [m for m in inbox["messages"] if m["refs"] and m["refs"][0]["type"] == "review"]
        assert "app.txt:5" in msg["body"]["content"] and "> line five" in msg["body"]["content"]
        assert "app.txt:24-26" in msg["body"]["content"] and "two things" in msg["body"]["content"]
        assert msg["body"]["structured"]["comments"][1]["body"] == "this block needs a test"
        # The agent commits again: the line commented on changed, the review says so.
        commit(repo, path, {"app.txt": APP_V2.replace("line five\n", "line 5 (five)\n")}, "digits")
        await pilot.press("u")
        await until(pilot, lambda: screen.review.get("changed_since_review") is True, "changed since review")
        outdated = {c.get("line"): c["outdated"] for c in screen.review["comments"]}
        assert outdated == {5: True, 24: False}
        assert "changed since your review" in str(screen.query_one("#review-head").render())
        # The agent asks again: the header says so, not the old verdict alone (walk, session 21).
        await cli(alice, "review", "request")
        await pilot.press("u")
        await until(pilot, lambda: screen.review.get("status") == "requested", "requested again")
        assert "review requested again (last: request changes)" in str(
            screen.query_one("#review-head").render()
        )
        # Approve, then merge behind the preflight, then tear the worktree down.
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, SubmitDialog))
        await pilot.press("enter")
        await until(pilot, lambda: screen.review.get("verdict") == "approve", "approved")

        def refused_busy() -> bool:  # the merge's own preflight found alice working after all
            return isinstance(app.screen, MergeDialog) and "is still working" in preflight(app)

        # The review messages nudge alice's pane, and a nudge is typed the moment the pane turns idle:
        # the dialog's preflight can see it idle and the merge's, a moment later, working. Merge once
        # it stays quiet.
        for _ in range(5):
            await idle(repo)
            await pilot.press("M")
            await until(pilot, lambda: isinstance(app.screen, MergeDialog) and app.screen.pre is not None)
            dialog = app.screen
            assert isinstance(dialog, MergeDialog) and dialog.pre is not None
            if [p["code"] for p in dialog.pre["problems"]] == ["agent_working"]:
                await pilot.press("escape")
                continue
            assert dialog.pre["ok"], dialog.pre["problems"]
            await pilot.press("ctrl+s")
            await until(
                pilot,
                lambda: isinstance(app.screen, AfterMergeDialog) or refused_busy(),
                "after the merge",
                last=lambda: (app.screen, preflight(app)),
            )
            if isinstance(app.screen, AfterMergeDialog):
                break
            await pilot.press("escape")
        assert isinstance(app.screen, AfterMergeDialog), preflight(app)
        assert (repo.path / "src" / "new.py").exists()
        await pilot.click("#go")
        await until(pilot, lambda: not isinstance(app.screen, (AfterMergeDialog, ReviewScreen)), "back home")
        assert not path.exists()
        assert repo.git("branch", "--list", "feature/alice") == ""
        reviews = await cli(alice.__class__("ada", "", repo.path, {**repo.env}), "review", "list")
        assert reviews["reviews"] == []


async def test_g_goes_to_a_review_waiting_for_you_when_nothing_else_needs_you(work):
    """The header counts a review waiting for you in "needs you": `g` goes there too (walk A,
    bug 6: `g` and the header read one NeedsYou)."""
    repo, _alice, _path = work
    async with console(repo) as (app, pilot):
        queue = app.query_one(ReviewQueue)
        await until(pilot, lambda: queue.display and app.needs.reviews == 1, "the review request")
        await select_agent(pilot, "alice")
        await pilot.press("enter")  # her mail read: only the review is left
        header = app.query_one(HeaderLine)
        await until(pilot, lambda: app.needs.count == 1 and header.needs_you == 1, "needs you: the review")
        await pilot.press("2", "g")
        await until(pilot, lambda: app.focused is queue, "the review queue focused")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen), "its review")


async def test_a_conflict_is_refused_cleanly(work):
    repo, _alice, path = work
    commit(repo, repo.path, {"app.txt": APP_V1.replace("line 5\n", "line FIVE\n")}, "main edits line 5")
    before = repo.git("rev-parse", "main")
    async with console(repo) as (app, pilot):
        screen = await open_review(app, pilot)
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, ConflictDialog), "the conflict dialog")
        assert app.screen.files == ["app.txt"]  # type: ignore[union-attr]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
    assert repo.git("rev-parse", "main") == before
    assert repo.git("status", "--porcelain") == ""
    assert repo.git("status", "--porcelain", cwd=path) == ""


async def test_request_changes_after_a_conflict_is_prefilled_and_a_refusal_keeps_the_dialog(work):
    """Walk bug 10: "Request changes" from the conflict dialog started with an empty summary, and
    the engine's refusal came as a toast after the dialog had closed, its text lost."""
    repo, _alice, _path = work
    commit(repo, repo.path, {"app.txt": APP_V1.replace("line 5\n", "line FIVE\n")}, "main edits line 5")
    target = repo.git("symbolic-ref", "--short", "HEAD").strip()
    async with console(repo) as (app, pilot):
        screen = await open_review(app, pilot)
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, ConflictDialog), "the conflict dialog")
        await pilot.click("#ask")
        dialog = await until(pilot, lambda: isinstance(app.screen, SubmitDialog) and app.screen)
        summary = dialog.query_one("#summary")
        assert "app.txt" in summary.value and f"rebase onto {target}" in summary.value, summary.value
        summary.value = ""  # no comment, no summary: the engine refuses
        await pilot.press("enter")
        error = dialog.query_one("#error")
        await until(pilot, lambda: "at least one comment" in str(error.render()), "the refusal, inline")
        assert app.screen is dialog
        summary.value = "rebase please"
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen, "sent, the dialog closed")
        await until(pilot, lambda: screen.review.get("verdict") == "request_changes", "changes requested")


async def test_the_merge_preflight_follows_the_agent_s_state_and_ctrl_s_says_why_not(work):
    """Walk bug 9: the preflight kept "@alice is still working" after she went idle, and ctrl+s on
    the disabled Merge did nothing and said nothing."""
    repo, _alice, _path = work
    socket = repo.env["THRUM_TMUX__SOCKET_NAME"]
    async with console(repo) as (app, pilot):
        await open_review(app, pilot)
        await idle(repo)
        busy = "for i in $(seq 16); do echo busy-$i; sleep 0.5; done"
        await asyncio.to_thread(
            subprocess.run, ["tmux", "-L", socket, "send-keys", "-t", "=alice:", busy, "Enter"], check=True
        )
        await asyncio.to_thread(
            wait_for, lambda: pane_state(repo, "alice") == "working", 20.0, "alice working"
        )
        await pilot.press("M")
        await until(pilot, lambda: "is still working" in preflight(app), "the preflight: still working")
        await pilot.press("ctrl+s")  # not approved, not forced: Merge is disabled
        await until(pilot, lambda: notified(app, "tick force past the problems marked !"), "why not merged")
        await until(
            pilot,
            lambda: preflight(app) and "is still working" not in preflight(app),
            "the preflight again once alice went idle",
            timeout=40,
            last=lambda: preflight(app),
        )
        assert "the review is not approved" in preflight(app)


async def test_one_commit_at_a_time_and_viewed_marks(work):
    repo, _alice, _path = work
    async with console(repo) as (app, pilot):
        screen = await open_review(app, pilot)
        await pilot.press("x")
        assert "1/2 viewed" in str(screen.query_one("#files").border_title)
        commits = screen.query_one("#commits")
        commits.focus()
        await pilot.press("down", "enter")  # the newest commit: add new.py
        await until(
            pilot, lambda: screen.commit is not None and [f.path for f in screen.files] == ["src/new.py"]
        )
        assert "commit " + screen.commit[:8] in str(screen.query_one("#review-head").render())  # type: ignore[index]


async def test_the_worktrees_page_says_what_git_status_says(work):
    repo, _alice, path = work
    (path / "scratch.txt").write_text("not added\n")
    (path / "app.txt").write_text(APP_V2 + "more\n")
    async with console(repo) as (app, pilot):
        await pilot.press("w")
        await until(
            pilot, lambda: isinstance(app.screen, WorktreesScreen) and app.screen.trees, "the worktrees"
        )
        (w,) = app.screen.trees  # type: ignore[union-attr]
        row = tree_row(w)
        assert row[:3] == ("alice", "feature/alice", "↑2 ↓0")
        assert row[3].endswith("add new.py")
        assert row[4] == "1 uncommitted, 1 untracked" and row[5] == "not merged"
        assert row[6].startswith("@alice ")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.loaded, "its review")
        assert "2 uncommitted" in str(app.screen.query_one("#review-head").render())


async def test_a_worktree_with_no_commits_of_its_own_but_uncommitted_work_is_not_merged(team):
    """Walk A, bug 15: 0 commits ahead and a modified file read "merged", which a user scanning
    for "safe to remove" takes for done; the work exists nowhere else."""
    repo, _alice, bob = team
    repo.run("daemon", "stop")
    async with console(repo) as (app, pilot):
        await pilot.press("w")
        screen = await until(
            pilot, lambda: isinstance(app.screen, WorktreesScreen) and app.screen.trees and app.screen
        )
        row = {w["name"]: tree_row(w) for w in screen.trees}
        # never committed: not "merged" either (console walk, session 22)
        assert row[bob.cwd.name][2] == "↑0 ↓0" and row[bob.cwd.name][4:6] == ("clean", "no commits yet")
        (bob.cwd / "notes.md").write_text("work in progress\n")
        await pilot.press("u")
        await until(
            pilot,
            lambda: (
                [tree_row(w)[4:6] for w in screen.trees if w["name"] == bob.cwd.name]
                == [("1 untracked", "no commits, 1 untracked")]
            ),
            "not merged while it holds work",
            last=lambda: [tree_row(w) for w in screen.trees],
        )


def test_the_merged_column_says_what_is_in_the_target_and_what_is_not():
    """Console walk (session 22): a merged branch with an untracked file read "not merged
    (uncommitted)", and a branch never committed to read "merged"."""
    base = {"name": "w", "branch": "feature/w", "ahead": 0, "behind": 2, "last_commit": None, "agents": [],
            "error": None, "uncommitted": [], "untracked": [], "merged": True, "branch_merged": True,
            "no_commits": False}  # fmt: skip
    assert tree_row(base)[5] == "merged"
    assert tree_row({**base, "merged": False, "untracked": ["NOTES.md"]})[5] == "merged, 1 untracked not"
    assert tree_row({**base, "no_commits": True})[5] == "no commits yet"
    assert tree_row({**base, "merged": False, "branch_merged": False, "ahead": 1})[5] == "not merged"

"""The review's diff side by side (`s`): removed lines beside the added lines that replaced them,
the cursor kept on the same line across the toggle, hunks and comments working as they do
unified. The pairing is pure; the rest runs in the console on a real repo and worktree."""

from __future__ import annotations

import pytest

import test_review_tui
from thrum_engine.review.diff import parse_diff
from thrum_tui.screens.review import ReviewScreen
from thrum_tui.widgets.diff_view import DiffView, side_by_side
from tui_helpers import until

pytestmark = pytest.mark.timeout(240)
work = test_review_tui.work

DIFF = """diff --git a/f.py b/f.py
--- a/f.py
+++ b/f.py
@@ -1,6 +1,6 @@
 keep
-old a
-old b
-old c
+new a
+new b
 keep 2
+added alone
-removed alone
"""


def test_removed_runs_pair_with_the_added_runs_after_them():
    (f,) = parse_diff(DIFF)
    rows = [(f.lines[i].text, f.lines[o].text if o >= 0 else None) for i, o in side_by_side(f.lines)]
    assert rows == [
        ("@@ -1,6 +1,6 @@", None),
        ("keep", None),
        ("new a", "old a"),
        ("new b", "old b"),
        ("old c", None),  # more removed than added: alone on the left
        ("keep 2", None),
        ("added alone", None),
        ("removed alone", None),
    ]


async def test_side_by_side_keeps_the_line_and_comments_anchor_to_the_new_side(work):
    repo, _alice, _path = work
    async with test_review_tui.console(repo) as (app, pilot):
        screen = await test_review_tui.open_review(app, pilot)
        view = screen.query_one(DiffView)
        await pilot.press("j")
        assert view.cursor_row.line.text == "line five"  # type: ignore[union-attr]
        unified_rows = len(view.rows)
        await pilot.press("s")
        assert view.split and "side by side" in str(view.border_title)
        row = view.cursor_row
        assert row is not None and row.line is not None and row.other is not None
        assert (row.line.text, row.other.text) == ("line five", "line 5")  # one row, both sides
        assert len(view.rows) == unified_rows - 2  # each of the two changed lines shares a row
        # Hunks move as they do unified, and a comment here is on the new side's line.
        await pilot.press("right_square_bracket")
        assert view.hunk_index() == 1 and view.cursor_row.line.text == "line twenty-five"  # type: ignore[union-attr]
        assert view.selection() == ("new", 25, 25)
        await test_review_tui.comment(pilot, "spell it as digits")
        await until(pilot, lambda: len(screen.pending) == 1, "a pending comment")
        assert screen.pending[0]["line"] == 25 and screen.pending[0]["side"] == "new"
        assert any(r.comment and r.comment.get("pending") for r in view.rows)
        # The mode stays for the next file, and `s` again is unified with the cursor kept.
        await pilot.press("n")
        await until(pilot, lambda: view.file is not None and view.file.path == "src/new.py")
        assert view.split
        await pilot.press("p", "s")
        assert not view.split and isinstance(app.screen, ReviewScreen)

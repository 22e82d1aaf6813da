"""What makes the review screen fast, kept honest: the screen pushed with its diff already fetched
shows the review from its first mount; a slow answer still opens it ("loading…", then the review);
the file list scrolls by half a page, not a row; the review's heap is frozen while the screen is
shown and handed back to the collector after it closes. Real repo, worktree and engine."""

from __future__ import annotations

import asyncio
import gc

import pytest
from textual.app import App

import test_review_tui
from thrum_tui.screens.review import ReviewScreen, fetch_review
from thrum_tui.widgets.diff_files import FileList, FileRow
from thrum_tui.widgets.diff_view import DiffView
from tui_helpers import notified, until

pytestmark = pytest.mark.timeout(240)
work = test_review_tui.work


async def test_a_fetched_review_is_on_the_screen_from_its_mount(work):
    repo, _alice, _path = work
    async with test_review_tui.console(repo) as (app, pilot):
        fetched = asyncio.ensure_future(fetch_review(app.engine, "alice"))
        await fetched
        screen = ReviewScreen("alice", fetched)
        await app.push_screen(screen)  # done once the screen is mounted
        assert screen.loaded and [f.path for f in screen.files] == ["app.txt", "src/new.py"]
        view = screen.query_one(DiffView)
        assert view.file is not None and view.file.path == "app.txt" and app.focused is view


async def test_a_review_still_coming_opens_loading_then_fills_in(work):
    repo, _alice, _path = work
    async with test_review_tui.console(repo) as (app, pilot):
        gate = asyncio.Event()

        async def slow():
            await gate.wait()
            return await fetch_review(app.engine, "alice")

        screen = ReviewScreen("alice", asyncio.ensure_future(slow()))
        await app.push_screen(screen)
        assert not screen.loaded and "loading" in str(screen.query_one("#review-head").render())
        gate.set()
        await until(pilot, lambda: screen.loaded, "the review")
        assert len(screen.files) == 2


async def test_a_failed_fetch_says_why_and_shows_nothing(work):
    repo, _alice, _path = work
    async with test_review_tui.console(repo) as (app, pilot):
        app.open_review("nobody_here")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review screen")
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        await until(pilot, lambda: "nothing to show" in str(screen.query_one("#review-head").render()))
        assert notified(app, "nobody_here")
        assert not screen.loaded


async def test_the_file_list_scrolls_by_half_a_page():
    class Files(App):
        def compose(self):
            yield FileList(id="files")

    app = Files()
    async with app.run_test(size=(60, 14)) as pilot:
        files = app.query_one(FileList)
        files.show([FileRow(f"f{i}.py", "M", 1, 1) for i in range(100)])
        await pilot.pause()
        height = files.scrollable_content_region.height
        for i in range(height):  # within the view: no scrolling
            files.set_cursor(i)
        assert files.scroll_offset.y == 0
        files.set_cursor(height)  # one past the bottom: the cursor lands mid-view
        await pilot.pause()
        assert files.scroll_offset.y == height - height // 2
        top = files.scroll_offset.y
        files.set_cursor(height + 1)  # the next files need no scroll
        assert files.scroll_offset.y == top
        files.set_cursor(top - 1)  # above the view: mid-view again
        await pilot.pause()
        assert files.scroll_offset.y == max(0, top - 1 - height // 2)


async def test_the_review_heap_is_frozen_while_shown_and_collected_after(work):
    repo, _alice, _path = work
    async with test_review_tui.console(repo) as (app, pilot):
        app.freeze_heap = True  # as `thrum tui` runs
        refrozen: list[int] = []
        refreeze = app._refreeze

        def counted() -> None:
            refreeze()
            refrozen.append(gc.get_freeze_count())

        app._refreeze = counted
        try:
            frozen = gc.get_freeze_count()
            screen = await test_review_tui.open_review(app, pilot)
            await until(pilot, lambda: app._heap_holders == {id(screen)}, "the heap held")
            assert gc.get_freeze_count() > frozen
            app.pop_screen()
            await until(pilot, lambda: app._heap_holders == set(), "the heap released")
            await until(pilot, lambda: refrozen, "the heap collected and frozen again", timeout=10)
            assert refrozen[0] > 0
        finally:
            gc.unfreeze()  # this test process's heap back to the collector

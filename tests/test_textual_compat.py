"""The console's few reaches past Textual's public API (thrum_tui/textual_compat.py) still land
where they did: a Textual upgrade that moves them fails here, loudly, before it slows the console
down unnoticed (the adapter itself falls back to public calls)."""

from __future__ import annotations

from importlib.metadata import version

from textual.app import App
from textual.content import Content
from textual.reactive import Reactive
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from thrum_tui import textual_compat


def test_textual_is_the_version_the_adapter_was_checked_against():
    assert version("textual") == textual_compat.TESTED_WITH, (
        "Textual was upgraded: re-check thrum_tui/textual_compat.py against this version, re-run "
        "bench/console.py, then update TESTED_WITH"
    )


def test_widget_virtual_size_still_asks_for_layout():
    """If Textual stopped re-laying out on virtual_size changes, the override would be moot."""
    reactive = Widget.__dict__["virtual_size"]
    assert isinstance(reactive, Reactive) and reactive._layout is True


async def test_redraw_option_replaces_one_prompt_and_keeps_the_others_rendered():
    class Lists(App):
        def compose(self):
            yield OptionList(*(Option(f"row {i}") for i in range(5)))

    app = Lists()
    async with app.run_test() as pilot:
        options = app.query_one(OptionList)
        await pilot.pause()
        cache = options._option_render_cache
        assert hasattr(cache, "keys") and hasattr(cache, "discard"), "OptionList's render cache moved"
        option = options.get_option_at_index(2)
        assert hasattr(option, "_set_prompt"), "Option._set_prompt moved"
        others = [k for k in cache.keys() if k[0] is not option]  # noqa: SIM118 (LRUCache has no __iter__)
        textual_compat.redraw_option(options, 2, "row two")
        await pilot.pause()
        assert str(options.get_option_at_index(2).prompt) == "row two"
        assert all(k in cache for k in others), "the other rows' renderings were dropped"


async def test_redraw_option_repaints_only_that_options_line():
    """The list's line map is still (option index, line of it) per line, and a redraw marks only the
    redrawn option's line dirty: a whole-list refresh re-renders every visible row."""

    class Lists(App):
        def compose(self):
            yield OptionList(*(Option(f"row {i}") for i in range(5)))

    app = Lists()
    async with app.run_test() as pilot:
        options = app.query_one(OptionList)
        await pilot.pause()
        lines = options._lines
        assert [tuple(line) for line in lines] == [(i, 0) for i in range(5)], "OptionList._lines moved"
        dirty: list[tuple] = []
        real = options.refresh

        def spy(*regions, **kw):
            dirty.append(regions)
            return real(*regions, **kw)

        options.refresh = spy  # type: ignore[method-assign]
        textual_compat.redraw_option(options, 3, "row three")
        assert dirty and all(len(r) == 1 and r[0].height == 1 for r in dirty), dirty
        assert dirty[0][0].y == 3 - options.scroll_offset.y
        await pilot.pause()
        assert str(options.get_option_at_index(3).prompt) == "row three"


class Boxed(App):
    """One bordered Static: a border's title and subtitle lines to watch."""

    CSS = "Static { border: round red; height: 5; }"

    def compose(self):
        yield Static("body")


async def test_set_border_title_repaints_the_top_line_only():
    app = Boxed()
    async with app.run_test() as pilot:
        box = app.query_one(Static)
        box.border_title = "FILES 0/2"
        await pilot.pause()
        assert "_border_title" in vars(box) or hasattr(box, "_border_title"), "Widget._border_title moved"
        textual_compat.set_border_title(box, "FILES 1/2")
        assert box.border_title == "FILES 1/2"
        assert box._dirty_regions and all(r.height == 1 and r.y == 0 for r in box._dirty_regions), (
            "more than the border's top line was marked for repaint"
        )
        await pilot.pause()
        top = app.screen._compositor.render_strips()[0].text
        assert "FILES 1/2" in top, top


async def test_an_unchanged_border_title_or_subtitle_repaints_nothing_and_a_subtitle_only_its_line():
    """Textual's setter repaints the whole widget even for the same text; the main screen sets the
    conversation's and the pane preview's titles on every refresh (bench/console.py)."""
    app = Boxed()
    async with app.run_test() as pilot:
        box = app.query_one(Static)
        box.border_title, box.border_subtitle = "@alice", "state from the pane"
        await pilot.pause()
        assert not box._dirty_regions
        textual_compat.set_border_title(box, "@alice")
        textual_compat.set_border_subtitle(box, "state from the pane")
        assert not box._dirty_regions, "an unchanged border text marked the widget for repaint"
        assert hasattr(box, "_border_subtitle"), "Widget._border_subtitle moved"
        textual_compat.set_border_subtitle(box, "state from hooks")
        bottom = box.outer_size.height - 1  # dirty regions are kept in the widget's outer box
        assert box._dirty_regions and all(r.height == 1 and r.y == bottom for r in box._dirty_regions), (
            box._dirty_regions
        )
        await pilot.pause()
        last = app.screen._compositor.render_strips()[4].text
        assert "state from hooks" in last, last
        textual_compat.set_border_title(box, None)
        assert box.border_title is None
        textual_compat.set_border_title(box, "[b]x[/]")  # plain text: a snippet's brackets are words
        assert Content.from_markup(box.border_title or "").plain == "[b]x[/]"
        box._dirty_regions.clear()
        textual_compat.set_border_title(box, "[b]x[/]")
        assert not box._dirty_regions

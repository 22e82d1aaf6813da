"""What the console shows of words it did not write reads as written: every table is filled through
`thrum_tui.widgets.tables.refill` (cells are plain text; a frame drawn before the table next idles
shows whole columns, not header-wide ones that stay on screen: the worktrees snapshot once caught
"featur" for "feature/alice" on a loaded CI run), and every Static and Label is built with markup
off. A real Textual app; a frame is drawn by asking the table for its lines, as the compositor
does."""

from __future__ import annotations

import ast
from pathlib import Path

from textual.app import App
from textual.widgets import DataTable, Static

from thrum_tui.widgets.side_lists import MonitorSummary, WorktreeSummary
from thrum_tui.widgets.tables import refill

TREE = {"branch": "feature/alice-jwt-middleware", "status": "2 ahead", "agent": "alice"}


def lines(table: DataTable) -> list[str]:
    return [table.render_line(y).text.rstrip() for y in range(table.row_count + int(table.show_header))]


class Side(App):
    def compose(self):
        yield WorktreeSummary("WORKTREES", id="trees")
        yield MonitorSummary("MONITORS", id="monitors")


async def test_a_frame_drawn_before_the_table_idles_shows_whole_columns():
    app = Side()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        trees = app.query_one(WorktreeSummary)
        trees.show([TREE])
        before = lines(trees)  # a frame between the fill and the table's idle pass
        await pilot.pause()
        after = lines(trees)
        assert "feature/alice-jwt-middleware" in before[0], before
        assert after == before, "the frame before the idle pass differs from the one after it"
        trees.show([{**TREE, "branch": "main"}, TREE])  # a refill with a wider and a narrower row
        assert "feature/alice-jwt-middleware" in lines(trees)[1]


async def test_cells_read_as_sent_brackets_and_all():
    app = Side()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        monitors = app.query_one(MonitorSummary)
        monitors.show([{"name": "ci", "match": r"\[ERROR\] [/] [wip]", "status": "running", "matches": 3}])
        await pilot.pause()
        shown = lines(monitors)[0]
        assert r"/\[ERROR\] [/] [wip]/" in shown, shown


async def test_refill_keeps_the_columns_their_keys_and_gives_rows_their_keys():
    class One(App):
        def compose(self):
            yield DataTable()

    app = One()
    async with app.run_test(size=(80, 10)) as pilot:
        table = app.query_one(DataTable)
        for c in ("id", "what"):
            table.add_column(c, key=c)
        refill(table, [("a1", "[bold]x"), ("b2", "y")], ["k1", "k2"])
        await pilot.pause()
        assert [c.key.value for c in table.ordered_columns] == ["id", "what"]
        assert table.get_cell("k1", "what").plain == "[bold]x"
        assert lines(table) == [" id  what", " a1  [bold]x", " b2  y"]
        kept = table.ordered_columns
        refill(table, [("b2", "y"), ("a1", "[bold]x")])  # the same widths: the columns stay
        assert table.ordered_columns == kept and all(a is b for a, b in zip(table.ordered_columns, kept))
        assert lines(table)[1:] == [" b2  y", " a1  [bold]x"]
        refill(table, [])
        assert table.row_count == 0 and len(table.columns) == 2


# Widgets whose first argument (or `label=`) is parsed as markup when it is a str, with no switch.
LABELLED = ("Option", "Button", "Checkbox", "RadioButton")


def test_every_static_and_label_of_the_console_is_built_with_markup_off_and_no_label_from_data():
    """A Static parses a str as markup: a git error "! [rejected] main" lost its word, a pane line
    with "[/]" raised in the monitors page. The console styles text with Content, never markup; a
    button's, checkbox's or option's label holding data (a worktree's path, an agent's name) is
    given as Content too."""

    def markup_off(node: ast.Call) -> bool:
        return any(
            k.arg == "markup" and isinstance(k.value, ast.Constant) and k.value.value is False
            for k in node.keywords
        )

    def formatted(label: ast.expr | None) -> bool:
        """Text built from data here: an f-string, a `+` or `%` of strings, a `.format`."""
        if isinstance(label, ast.IfExp):
            return formatted(label.body) or formatted(label.orelse)
        return (
            isinstance(label, ast.JoinedStr)
            or (isinstance(label, ast.BinOp) and isinstance(label.op, (ast.Add, ast.Mod)))
            or (
                isinstance(label, ast.Call)
                and isinstance(label.func, ast.Attribute)
                and label.func.attr == "format"
            )
        )

    def plain(node: ast.Call) -> bool:
        if node.func.id in LABELLED:  # type: ignore[attr-defined]  # a str label or prompt is markup too
            label = (
                node.args[0]
                if node.args
                else next((k.value for k in node.keywords if k.arg == "label"), None)
            )
            return not formatted(label)
        return markup_off(node)

    src = Path(__file__).resolve().parent.parent / "src" / "thrum_tui"
    parsing = [
        f"{path.relative_to(src)}:{node.lineno}"
        for path in sorted(src.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("Static", "Label", *LABELLED)
        and not plain(node)
    ]
    assert not parsing, parsing


async def test_a_static_with_markup_off_shows_a_pane_line_as_it_came():
    class One(App):
        def compose(self):
            yield Static("", markup=False)

    app = One()
    async with app.run_test(size=(80, 5)) as pilot:
        box = app.query_one(Static)
        box.update("12:00:01 match    ! [rejected] main -> main [/] [wip]")
        await pilot.pause()
        assert "! [rejected] main -> main [/] [wip]" in str(box.render())


async def test_a_worktree_path_with_brackets_reads_as_written_in_the_after_merge_dialog():
    """A checkbox's str label is markup: `/work/[wip]/wt` lost `[wip]` (and `[/]` in a path raised)."""
    from textual.widgets import Checkbox

    from thrum_tui.screens.review_dialogs import AfterMergeDialog

    result = {
        "branch": "feature/x",
        "target": "main",
        "strategy": "merge",
        "merged_commit": "0123456789abcdef",
    }
    app = App()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(AfterMergeDialog("alice", "/work/[wip]/wt [/]", result))
        await pilot.pause()
        label = app.screen.query_one("#teardown", Checkbox).label.plain
        assert label == "tear down the worktree /work/[wip]/wt [/] (archived first)"


def test_every_table_and_list_of_the_console_moves_with_j_and_k():
    """Walk A, bug 5: the schedules page was a bare DataTable, so `j` did nothing there and `x`
    cancelled the row the cursor had never left. Every DataTable and OptionList the console builds
    or subclasses is a RowTable or a RowList (j/k as the arrows), outside `widgets/tables.py`."""
    src = Path(__file__).resolve().parent.parent / "src" / "thrum_tui"
    bare = ("DataTable", "OptionList")

    def named(node: ast.expr) -> str | None:
        return (
            node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
        )

    found = [
        f"{path.relative_to(src)}:{node.lineno}"
        for path in sorted(src.rglob("*.py"))
        if path.relative_to(src).as_posix() != "widgets/tables.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.Call) and named(node.func) in bare)
        or (isinstance(node, ast.ClassDef) and any(named(b) in bare for b in node.bases))
    ]
    assert not found, found


async def test_j_and_k_move_a_row_table_and_a_row_list_as_the_arrows_do():
    from textual.widgets.option_list import Option

    from thrum_tui.widgets.tables import RowList, RowTable

    class Two(App):
        def compose(self):
            yield RowTable(cursor_type="row")
            yield RowList(*(Option(f"option {i}") for i in range(3)))

    app = Two()
    async with app.run_test(size=(80, 20)) as pilot:
        table = app.query_one(RowTable)
        table.add_column("n", key="n")
        refill(table, [(str(i),) for i in range(3)])
        table.focus()
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        options = app.query_one(RowList)
        options.focus()
        options.highlighted = 0
        await pilot.press("j", "j", "k")
        assert options.highlighted == 1

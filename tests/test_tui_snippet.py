"""A body as a list line and as a thread view draws it (`thrum_tui.snippet`)."""

from __future__ import annotations

from thrum_tui.snippet import one_line, viewable


def test_one_line_squeezes_whitespace_and_cuts_only_what_is_long():
    assert one_line("  a\n\n b\tc  ") == "a b c"
    assert one_line("") == ""
    assert one_line("x" * 10, 10) == "x" * 10
    assert one_line("x" * 11, 10) == "x" * 10 + " …"
    assert one_line("word " * 10_000, 20).endswith(" …") and len(one_line("word " * 10_000, 20)) <= 22
    # a body that is mostly whitespace: only its head is looked at, and the cut is still said
    assert one_line("a" + " " * 100_000 + "b", 10) == "a …"


def test_viewable_keeps_small_bodies_whole_and_says_what_it_left_out():
    assert viewable("short\ntext", "msg_1") == "short\ntext"
    body = "".join(f"{i}\n" for i in range(50_000))
    shown = viewable(body, "msg_1", limit=1000)
    assert len(shown) < 1200 and shown.startswith("0\n1\n")
    assert shown.endswith("`thrum message get msg_1` prints it all")
    assert shown.split("\n…")[0].endswith(str(int(shown.split("\n…")[0].split("\n")[-1])))  # whole lines

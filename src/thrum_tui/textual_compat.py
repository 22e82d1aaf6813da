"""Every place the console leans on Textual beyond its public API, in one module, each with the
measurement that justified it. `tests/test_textual_compat.py` fails loudly when a Textual upgrade
moves any of them; the console then falls back to (slower) public calls, never breaks.

1. `redraw_option`: OptionList's public `replace_option_prompt_at_index` clears the render cache
   of every option and re-measures all lines; the team table changes one row per piece of mail,
   and at 50 agents that full clear was the bulk of a keystroke's wait under 100 msgs/s
   (bench/console.py, the "team row" change). Here only that option's renderings are forgotten,
   and only its lines are repainted (a whole refresh re-renders every visible row: py-spy on the
   console in tmux under 100 msgs/s put 6 % of the console's CPU in OptionList.render_lines).
2. `no_layout_virtual_size()`: Widget's `virtual_size` reactive asks for a layout of the whole screen
   on every change; the compose bar, the conversation and the team table have boxes the layout
   fixes, so their content changes only need a repaint (bench/console.py: each keystroke re-laid
   out every widget). Redeclared with the public `Reactive`, layout off.
3. `set_border_title` / `set_border_subtitle`: setting `border_title` repaints the whole widget,
   even to the same text; the review's file list changes its title ("FILES n/100 viewed") on every
   `]` that reads a file to its end, and that repaint (the list and the screen's chops over it) was
   about a fifth of the key's CPU (bench/review.py). The main screen set the pane preview's title
   four times a second and the conversation's title and subtitle on every refresh, unchanged: a
   repaint of both panels each time, the frames a keystroke waited behind under load
   (bench/console.py, real terminal). Here an unchanged text repaints nothing, and a changed one is
   stored where the descriptor stores it with only that line of the border repainted.
"""

from __future__ import annotations

from textual.content import Content
from textual.geometry import Region, Size
from textual.reactive import Reactive
from textual.visual import VisualType
from textual.widget import Widget
from textual.widgets import OptionList

TESTED_WITH = "8.2.8"


def no_layout_virtual_size() -> Reactive[Size]:
    """A `virtual_size` for a widget whose box the layout fixes: a change repaints, never re-lays out."""
    return Reactive(Size(0, 0), layout=False)


def redraw_option(option_list: OptionList, index: int, prompt: VisualType) -> None:
    """Replace one option's prompt, forgetting only that option's rendering when Textual still
    has the internals this relies on; otherwise the public (whole-list) replace."""
    option = option_list.get_option_at_index(index)
    cache = getattr(option_list, "_option_render_cache", None)
    set_prompt = getattr(option, "_set_prompt", None)
    if cache is None or set_prompt is None or not hasattr(cache, "keys") or not hasattr(cache, "discard"):
        option_list.replace_option_prompt_at_index(index, prompt)
        return
    set_prompt(prompt)
    for key in [k for k in cache.keys() if k[0] is option]:  # noqa: SIM118 (an LRUCache, not a dict)
        cache.discard(key)
    lines = getattr(option_list, "_lines", None)  # (option index, line of it) per line of the list
    rows = [y for y, line in enumerate(lines or ()) if line[0] == index]
    if rows and rows[-1] - rows[0] + 1 == len(rows):
        option_list.refresh_lines(rows[0], len(rows))  # repaint that option's lines, not the list
    else:
        option_list.refresh()


def set_border_title(widget: Widget, title: str | None) -> None:
    """Set `widget.border_title`: nothing when it is unchanged, else a repaint of only the top line of
    its border when Textual still keeps the title where this expects (`Widget._border_title`);
    otherwise the public setter."""
    _set_border_text(widget, "border_title", title, top=True)


def set_border_subtitle(widget: Widget, subtitle: str | None) -> None:
    """`set_border_title` for `border_subtitle` (the bottom line of the border)."""
    _set_border_text(widget, "border_subtitle", subtitle, top=False)


def _set_border_text(widget: Widget, attr: str, text: str | None, *, top: bool) -> None:
    current = getattr(widget, attr)
    if text is None:
        if current is not None:
            setattr(widget, attr, None)
        return
    if current == text:  # the usual refresh: plain text, unchanged, and nothing to render
        return
    # Plain text, never markup: a reply's snippet "[/]" raised in the descriptor's parse.
    content = Content(text)
    stored = widget.render_str(content).expand_tabs(4).split()[0]  # the descriptor's own steps
    if current == stored.markup:
        return
    internal = "_" + attr
    if not widget.is_mounted or not hasattr(widget, internal):
        setattr(widget, attr, content)
        return
    setattr(widget, internal, stored)
    off = widget.content_offset  # refresh regions are content-relative: the border is above it
    outer = widget.outer_size
    y = -off.y if top else outer.height - 1 - off.y
    widget.refresh(Region(-off.x, y, outer.width, 1))

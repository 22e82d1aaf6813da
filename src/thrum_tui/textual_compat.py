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
"""

from __future__ import annotations

from textual.geometry import Size
from textual.reactive import Reactive
from textual.visual import VisualType
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

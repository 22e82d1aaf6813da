"""Text from others made safe to show in a terminal, in a module with no imports (the CLI prints
through it on every call; the console passes every engine answer through it).

A message body, an intent, a monitor's output or a diff comes from another agent (or a file it
wrote) and ends up on the operator's terminal, where an escape sequence in it could clear the
screen, retitle the window, write the clipboard (OSC 52) or overwrite a line with a forged one (a
bare CR). The control characters a terminal acts on are shown as their visible pictures (ESC as
␛, CR as ␍, BEL as ␇, DEL as ␡; C1 as \\x9b); newline and tab stay. `--json` output is not passed
through here: JSON escapes them, and scripts get the exact text.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs the CLI a few ms of start-up
    from typing import Any, TypeVar

    T = TypeVar("T")

_PICTURES: dict[int, int | str] = {c: 0x2400 + c for c in range(32) if c not in (9, 10)}
_PICTURES |= {0x7F: 0x2421} | {c: f"\\x{c:02x}" for c in range(0x80, 0xA0)}


def terminal_safe(text: str) -> str:
    """`text` with the control characters a terminal would act on made visible."""
    return text if text.isprintable() else text.translate(_PICTURES)


def terminal_safe_data(obj: "T") -> "T":
    """A copy of a JSON-shaped value (an engine answer) with every string made terminal-safe; the
    original is not touched (in-process answers may be the engine's own objects). ~150 us for a
    50-agent team listing."""
    return _safe(obj)


def _safe(obj: "Any") -> "Any":
    """isinstance, not exact types: an answer the engine vouched for (`fastjson.Plain`, a dict
    subclass) must not slip through unfiltered."""
    if isinstance(obj, str):
        return obj if obj.isprintable() else str.translate(obj, _PICTURES)
    if isinstance(obj, dict):
        return {k: _safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_safe(v) for v in obj]
    return obj

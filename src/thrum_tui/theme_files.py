"""Themes shipped as TOML files in `themes/`: a user can copy one, change colours, and drop it in
`~/.config/thrum/themes/` without touching code. An editable install has no packaged copy, so the
repository's `themes/` is the fallback (see STACK.md, "Packaging themes/")."""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path

from textual.theme import Theme

log = logging.getLogger("thrum.tui")

DEFAULT_THEME = "thrum-dark"


def theme_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [here / "themes", here.parent.parent / "themes", config_home / "thrum" / "themes"]


def load_themes(dirs: list[Path] | None = None) -> list[Theme]:
    """Every readable theme file; later directories override earlier ones by name; a broken file
    is logged and skipped so one typo never stops the console."""
    found: dict[str, Theme] = {}
    for d in dirs if dirs is not None else theme_dirs():
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.toml")):
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
                data.setdefault("name", path.stem)
                found[data["name"]] = Theme(**data)
            except (OSError, ValueError, TypeError) as exc:
                log.warning("theme %s skipped: %s", path, exc)
    return list(found.values())

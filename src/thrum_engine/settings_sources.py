"""Where settings come from, read as plain data: `.thrum/config.json` and `THRUM_*` env.

`settings.py` validates them (pydantic, whose import costs ~100 ms); this module is stdlib only so
that a caller needing one value before it can pay for that -- the console's first frame, which
needs only its theme -- reads it the way `ThrumSettings` would and leaves the validation to the
full load that follows."""

from __future__ import annotations

import json
import os

from thrum_engine.errors import InvalidInput

ENV_PREFIX = "THRUM_"
ENV_NESTED = "__"  # THRUM_<SECTION>__<KEY>


def read_config_file(path: str | None) -> object:
    """The config file's JSON ({} when there is none): a typo reads as a clear error, not a trace."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not valid JSON: {exc}") from exc


def configured(config_file: str | None, section: str, key: str) -> object | None:
    """`section.key` as configured, unvalidated: `THRUM_<SECTION>__<KEY>`, else a JSON object in
    `THRUM_<SECTION>`, else the config file; None when none sets it. Env names match in any case,
    as pydantic-settings matches them."""
    env = {k.lower(): v for k, v in os.environ.items() if k[: len(ENV_PREFIX)].upper() == ENV_PREFIX}
    name = f"{ENV_PREFIX}{section}".lower()
    value = env.get(f"{name}{ENV_NESTED}{key}".lower())
    if value is not None:
        return value
    whole = _object(env.get(name))
    if key in whole:
        return whole[key]
    data = read_config_file(config_file)
    return _object(data.get(section) if isinstance(data, dict) else None).get(key)


def _object(value: object) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}

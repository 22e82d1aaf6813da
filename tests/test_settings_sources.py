"""`settings_sources.configured` reads one setting the way the validated settings do (the console's
first frame uses it for its theme, before pydantic is imported): the two must agree on every source
and on their order."""

from __future__ import annotations

import json
import os

import pytest

from thrum_engine.errors import InvalidInput
from thrum_engine.settings import InvalidSettings, load_settings
from thrum_engine.settings_sources import configured


@pytest.mark.parametrize(
    ("file", "env", "expected"),
    [
        (None, {}, None),
        ({"console": {"theme": "nord"}}, {}, "nord"),
        ({"console": {"theme": "nord"}}, {"THRUM_CONSOLE__THEME": "gruvbox"}, "gruvbox"),
        ({}, {"thrum_console__theme": "gruvbox"}, "gruvbox"),  # env names match in any case
        ({"console": {"theme": "nord"}}, {"THRUM_CONSOLE": '{"theme": "dracula"}'}, "dracula"),
        ({}, {"THRUM_CONSOLE": '{"theme": "dracula"}', "THRUM_CONSOLE__THEME": "gruvbox"}, "gruvbox"),
        ({"console": {"bell": False}}, {"THRUM_CONSOLE__BELL": "true"}, None),
    ],
)
def test_a_setting_read_without_validation_is_the_one_the_settings_hold(
    tmp_path, monkeypatch, file, env, expected
):
    for key in [k for k in os.environ if k.upper().startswith("THRUM_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "config.json"
    if file is not None:
        path.write_text(json.dumps(file), encoding="utf-8")
    assert configured(str(path), "console", "theme") == expected
    assert load_settings(str(path)).console.theme == (expected or "thrum-dark")


def test_a_config_file_that_is_not_json_is_one_clear_error_on_both_paths(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"console": ', encoding="utf-8")
    for read in (lambda: configured(str(path), "console", "theme"), lambda: load_settings(str(path))):
        with pytest.raises(InvalidInput, match="is not valid JSON"):
            read()


def test_a_bad_value_is_named_with_where_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setenv("THRUM_CONSOLE__PREVIEW_LINES", "3")
    path = tmp_path / "config.json"
    with pytest.raises(InvalidSettings) as got:
        load_settings(str(path))
    assert got.value.message.startswith("invalid setting console.preview_lines (")
    assert got.value.message.endswith(f"fix {path} or THRUM_* env")

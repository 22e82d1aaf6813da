"""Agents pay the CLI's start-up on every call: the hot commands must stay stdlib-light."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = {
    "textual",
    "git",
    "libtmux",
    "pydantic",
    "pydantic_settings",
    "aiosqlite",
    "watchfiles",
    "rich",
    "asyncio",
    "json",
    "re",
    "argparse",
    "socket",
    "subprocess",
    "enum",
    "calendar",
    "datetime",
    # Either one makes `exit_with` take the interpreter's full teardown (~2 ms): see test_fast_exit.
    "atexit",
    "threading",
    # `from __future__ import annotations` imports a module (~0.2 ms): the hot modules quote instead.
    "__future__",
}
# Ours, needed only to spawn an engine, or to name an error raised in this process (settings, a
# local rebuild): a call whose engine is up and answers never pays for them.
SPAWN_ONLY = {
    "thrum_engine.daemon.control",
    "thrum_engine.daemon.lock",
    "thrum_engine.private_fs",
    "thrum_engine.errors",  # 13 exception classes: 160 us
}

PROBE = """
import sys
from thrum_engine.cli.main import main
code = main(sys.argv[1:])
sys.stdout.flush()
sys.stderr.write("\\nMODULES=" + ",".join(sorted(sys.modules)) + "\\n")
"""


def modules_after(args: list[str], cwd: Path, env: dict) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES=")][-1]
    return proc.returncode, set(line[len("MODULES=") :].split(","))


@pytest.mark.parametrize(
    "args",
    [
        ["send", "hello", "--to", "@bob"],
        ["inbox"],
        ["inbox", "--unread", "--json"],
        ["sent"],
        ["team"],
        ["version"],
        ["whoami"],
    ],
)
def test_hot_commands_import_nothing_heavy(pair, args):
    repo, alice, bob = pair
    code, mods = modules_after(args, alice.cwd, alice.env)
    assert code == 0
    top = {m.split(".")[0] for m in mods}
    assert not (top & HEAVY), f"thrum {' '.join(args)} imported {sorted(top & HEAVY)}"
    assert not (mods & SPAWN_ONLY), f"thrum {' '.join(args)} imported {sorted(mods & SPAWN_ONLY)}"


def test_installed_entry_script_does_not_import_re():
    """pip's generated console-script wrapper imports `re`; ours is hand-written."""
    script = Path(sys.executable).parent / "thrum"
    if not script.exists():
        pytest.skip("thrum is not installed as a script in this environment")
    text = script.read_text()
    assert "import re" not in text


def test_import_linter_contracts_hold():
    root = Path(__file__).resolve().parent.parent
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run(
        [str(lint)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(root / "src")},
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "0 broken" in proc.stdout

"""`exit_with` skips the interpreter's teardown only when no exit work can be pending, and then
loses no output; otherwise the process exits the normal way (atexit callbacks run)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# An object whose finalizer reports on stderr: it runs in a normal teardown, not in a skipped one.
PROLOGUE = """
import os, sys
class Witness:
    def __del__(self):
        os.write(2, b"TEARDOWN")
witness = Witness()
from thrum_engine.cli.main import exit_with
"""


def run(body: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROLOGUE + body], capture_output=True, timeout=60)


def test_nothing_pending_skips_teardown_and_flushes_every_byte():
    proc = run("sys.stdout.write('x' * 300_000); sys.stderr.write('err-tail'); exit_with(3)")
    assert proc.returncode == 3
    assert proc.stdout == b"x" * 300_000
    assert proc.stderr.endswith(b"err-tail")
    assert b"TEARDOWN" not in proc.stderr


@pytest.mark.parametrize(
    "body",
    [
        "import atexit; atexit.register(lambda: os.write(2, b'ATEXIT')); exit_with(4)",
        # logging registers its flush with atexit when imported
        "import logging; exit_with(4)",
        "import threading; t = threading.Thread(target=lambda: None); t.start(); exit_with(4)",
    ],
    ids=["atexit", "logging", "threading"],
)
def test_pending_exit_work_takes_the_normal_exit(body):
    proc = run(body)
    assert proc.returncode == 4
    assert b"TEARDOWN" in proc.stderr
    if "atexit.register" in body:
        assert b"ATEXIT" in proc.stderr


def test_a_reader_that_went_away_is_no_traceback():
    """`thrum inbox | head -1`: output still buffered when the reader is gone has nowhere to go;
    that is not an error and no traceback."""
    body = "sys.stdout.write('line\\n' * 100); sys.stdin.readline(); exit_with(0)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # keep it buffered
    proc = subprocess.Popen(
        [sys.executable, "-c", PROLOGUE + body],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before the child flushes
    proc.stdin.write(b"go\n")
    proc.stdin.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert b"Traceback" not in err and b"TEARDOWN" not in err

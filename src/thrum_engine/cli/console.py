"""`thrum tui`: hand this process over to the console (`python -m thrum_tui`).

An exec rather than an import: the engine package never imports the console.
"""

from __future__ import annotations

import os
import sys

from thrum_engine.cli.call import Ctx


def tui(ctx: Ctx) -> int:
    ctx.close()
    if ctx.args.get("repo"):
        os.chdir(ctx.args["repo"])
    sys.stdout.flush()
    extra = ["--stop-engine"] if ctx.args.get("stop_engine") else []
    os.execv(sys.executable, [sys.executable, "-m", "thrum_tui", *extra])
    return 0  # not reached

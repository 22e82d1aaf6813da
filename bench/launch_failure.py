"""How long `thrum tmux launch` takes to fail when the runtime cannot start (walk bug 6).

Three runtimes in a scratch repo on a private tmux server:
  * `ghost`: its binary is not on the pane's PATH. Refused by the PATH check before anything is
    typed.
  * `broken`: found, but exits at once (prints `command not found`, exit 127, as a missing binary
    did in the pane): told as soon as the pane is back at its shell.
  * `baseline`: runs and never shows a prompt: the launch waits `tmux.launch_timeout_seconds` --
    what every one of the failures above cost before (walk bug 6: ~50 s, then "engine not
    reachable").

    .venv/bin/python bench/launch_failure.py [--runs 5] [--launch-timeout 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tmux import scratch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--launch-timeout", type=float, default=60, help="tmux.launch_timeout_seconds (default 60)"
    )
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    tmp, sock, env, repo, thrum = scratch("launch", THRUM_TMUX__LAUNCH_TIMEOUT_SECONDS=str(a.launch_timeout))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            thrum + list(args), cwd=repo, env=env, capture_output=True, text=True, check=False
        )

    out: dict = {"launch_timeout_seconds": a.launch_timeout}
    try:
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, env=env, check=True)
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=repo, env=env, check=True)
        run("init")
        presets = {
            "ghost": {"extends": "claude", "command": ["thrum-bench-no-such-runtime"]},
            "broken": {
                "extends": "claude",
                "command": ["sh", "-c", "echo 'claude: command not found'; exit 127"],
            },
            "baseline": {"extends": "claude", "command": ["sleep", "3600"]},
        }
        (repo / ".thrum" / "runtimes.json").write_text(json.dumps({"presets": presets}))
        run("daemon", "restart")
        run(
            "tmux", "create", "s", "--cwd", str(repo), "--name", "s", "--role", "worker", "--runtime", "shell"
        )
        for preset, runs in (("ghost", a.runs), ("broken", a.runs), ("baseline", 1)):
            times, said = [], ""
            for _ in range(runs):
                run("tmux", "restart", "s", "--force", "--runtime", "shell")  # a fresh shell each time
                t0 = time.perf_counter()
                p = run("tmux", "launch", "s", "--runtime", preset)
                times.append(time.perf_counter() - t0)
                said = (p.stderr.strip() or p.stdout.strip()).splitlines()[-1:]
            out[preset] = {
                "median_ms": round(1000 * statistics.median(times)),
                "max_ms": round(1000 * max(times)),
                "runs": runs,
                "said": said[0] if said else "",
            }
    finally:
        run("daemon", "stop")
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)

    if a.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        print(f"== tmux launch of a runtime that cannot start (launch timeout {a.launch_timeout:g} s)")
        for preset, what in (
            ("ghost", "binary not on the pane's PATH (checked)"),
            ("broken", "exits at start (pane back at its shell)"),
            ("baseline", "no prompt ever (the launch timeout)"),
        ):
            r = out[preset]
            print(f"  {what:42s} median {r['median_ms']:6d} ms  max {r['max_ms']:6d} ms  ({r['runs']} runs)")
            print(f"    -> {r['said'][:110]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

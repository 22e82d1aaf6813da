"""How long `thrum tmux launch` takes to fail when the runtime cannot start (walk bug 6).

Two runtimes in a scratch repo on a private tmux server:
  * `ghost`: its binary is not on the pane's PATH. Refused by the PATH check before anything is
    typed.
  * `baseline`: a binary that is found but fails the way a missing one does in the pane (prints
    `command not found`, exits 127): nothing can refuse it beforehand, so the launch waits for a
    prompt until `tmux.launch_timeout_seconds` -- what every missing binary cost before the check.

    .venv/bin/python bench/launch_failure.py [--runs 5] [--launch-timeout 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import env_for  # noqa: E402

BIN = Path(sys.executable).parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--launch-timeout", type=float, default=60, help="tmux.launch_timeout_seconds (default 60)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-launch-"))
    sock = f"thrum-bench-{uuid.uuid4().hex[:8]}"
    env = env_for(tmp / "home")
    (tmp / "home").mkdir()
    env.update(THRUM_TMUX__SOCKET_NAME=sock, THRUM_TMUX__SHELL="bash --norc --noprofile",
               THRUM_TMUX__LAUNCH_TIMEOUT_SECONDS=str(a.launch_timeout))
    repo = tmp / "repo"
    repo.mkdir()
    thrum = [str(BIN / "thrum")] if (BIN / "thrum").exists() else [sys.executable, "-m", "thrum_engine"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(thrum + list(args), cwd=repo, env=env, capture_output=True, text=True, check=False)

    out: dict = {"launch_timeout_seconds": a.launch_timeout}
    try:
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, env=env, check=True)
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=repo, env=env, check=True)
        run("init")
        presets = {"ghost": {"extends": "claude", "command": ["thrum-bench-no-such-runtime"]},
                   "baseline": {"extends": "claude", "command": [
                       "sh", "-c", "echo 'claude: command not found'; exit 127"]}}
        (repo / ".thrum" / "runtimes.json").write_text(json.dumps({"presets": presets}))
        run("daemon", "restart")
        run("tmux", "create", "s", "--cwd", str(repo), "--name", "s", "--role", "worker", "--runtime", "shell")
        for preset, runs in (("ghost", a.runs), ("baseline", 1)):
            times, said = [], ""
            for _ in range(runs):
                t0 = time.perf_counter()
                p = run("tmux", "launch", "s", "--runtime", preset)
                times.append(time.perf_counter() - t0)
                said = (p.stderr.strip() or p.stdout.strip()).splitlines()[-1:]
            out[preset] = {"median_ms": round(1000 * statistics.median(times)), "max_ms": round(1000 * max(times)),
                           "runs": runs, "said": said[0] if said else ""}
    finally:
        run("daemon", "stop")
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)

    if a.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        print(f"== tmux launch of a runtime that cannot start (launch timeout {a.launch_timeout:g} s)")
        for preset, what in (("ghost", "binary not on the pane's PATH (checked)"),
                             ("baseline", "fails in the pane (no check possible)")):
            r = out[preset]
            print(f"  {what:42s} median {r['median_ms']:6d} ms  max {r['max_ms']:6d} ms  ({r['runs']} runs)")
            print(f"    -> {r['said'][:110]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

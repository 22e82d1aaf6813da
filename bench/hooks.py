"""Hook and prime latency with a realistic store: 100k messages, 50 agents (defaults).

Targets (issue 11): a hook command's wall time <= 2x the bare interpreter floor (median), and
`thrum prime` <= 150 ms. The floor is measured in the same run: the same interpreter starting and
exiting (`python -c pass`). Every figure is a whole process, as a runtime would spawn it.

    .venv/bin/python bench/hooks.py [--messages N] [--agents N] [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
THRUM = str(BIN / "thrum")


def env_for(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THRUM_", "TMUX"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(HOME=str(home), GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@x", PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")  # fmt: skip
    return env


def timed(cmd: list[str], cwd: Path, env: dict, runs: int, stdin: str | None = None) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, check=False)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def seed(repo: Path, messages: int, agents: int) -> list[str]:
    """Agents and messages through the engine's real commit path (in process, engine stopped)."""
    from thrum_engine.engine.assemble import build
    from thrum_engine.engine.caller import Caller
    from thrum_engine.layout import Layout
    from thrum_engine.messaging import create_message
    from thrum_engine.settings import ThrumSettings

    engine = build(Layout(str(repo)), ThrumSettings(guards={"enabled": False}))  # bulk agent traffic: see engine.env_for
    await engine.start()
    names = [f"agent_{i:02d}" for i in range(agents)]
    for n in names:
        await engine.call(
            "agent.register", {"name": n, "role": "worker", "start_session": True}, Caller(worktree=str(repo))
        )
    rng = random.Random(7)
    for start in range(0, messages, 500):
        tasks = []
        for i in range(start, min(start + 500, messages)):
            a, r = rng.sample(names, 2)
            tasks.append(create_message(engine, a, f"message {i} " + "x" * 80, to=["@" + r]))
        await asyncio.gather(*tasks)
    await engine.stop()
    return names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-hooks-"))
    env = env_for(tmp)
    repo = tmp / "repo"
    repo.mkdir()
    try:
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, env=env, check=True)
        (repo / "README.md").write_text("x\n")
        subprocess.run(["git", "add", "."], cwd=repo, env=env, check=True)
        subprocess.run(["git", "commit", "-qm", "i"], cwd=repo, env=env, check=True)
        subprocess.run([THRUM, "init", "--non-interactive", "--no-daemon", "--runtime", "claude"], cwd=repo,
                       env=env, check=True, capture_output=True)  # fmt: skip
        t0 = time.perf_counter()
        names = asyncio.run(seed(repo, a.messages, a.agents))
        seeded = time.perf_counter() - t0
        subprocess.run([THRUM, "daemon", "start"], cwd=repo, env=env, check=True, capture_output=True)
        me = {**env, "THRUM_NAME": names[0]}
        hook_in = json.dumps({"session_id": "s", "cwd": str(repo), "hook_event_name": "UserPromptSubmit",
                              "prompt": "hi"})  # fmt: skip
        stop_in = json.dumps({"session_id": "s", "cwd": str(repo), "hook_event_name": "Stop",
                              "stop_hook_active": False})  # fmt: skip
        timed([THRUM, "hook", "prompt-submit", "--runtime", "claude"], repo, me, 3, hook_in)  # warm caches
        floor = timed([sys.executable, "-c", "pass"], repo, env, a.runs)
        prompt = timed([THRUM, "hook", "prompt-submit", "--runtime", "claude"], repo, me, a.runs, hook_in)
        stop = timed([THRUM, "hook", "stop", "--runtime", "claude"], repo, me, a.runs, stop_in)
        prime = timed([THRUM, "prime"], repo, me, a.runs)
        version = timed([THRUM, "version"], repo, env, a.runs)
        subprocess.run([THRUM, "daemon", "stop"], cwd=repo, env=env, check=False, capture_output=True)
        med = statistics.median
        r = {
            "messages": a.messages,
            "agents": a.agents,
            "runs": a.runs,
            "seed_seconds": round(seeded, 1),
            "floor_python_pass_ms": round(med(floor), 1),
            "thrum_version_ms": round(med(version), 1),
            "hook_prompt_submit_ms": round(med(prompt), 1),
            "hook_stop_ms": round(med(stop), 1),
            "prime_ms": round(med(prime), 1),
            "hook_over_floor": round(med(prompt) / med(floor), 2),
            "targets": {"hook_over_floor_max": 2.0, "prime_ms_max": 150},
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        print(json.dumps(r, indent=2, sort_keys=True))
    else:
        for k, v in r.items():
            print(f"{k:24s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What one big listing costs the engine (finding F10): N bodies of S bytes sent to bob, then one
`inbox --page-size N --json`; prints the response size, the engine's peak RSS (VmHWM) before and
after, and how many messages the page held.

Run it against another checkout's code with PYTHONPATH=<that checkout>/src for a baseline.
Figures only, never a pass/fail threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
THRUM = [str(BIN / "thrum")] if (BIN / "thrum").exists() else [sys.executable, "-m", "thrum_engine"]

SENDER = r"""
import json, socket, sys
from thrum_engine.layout import Layout
n, size = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_UNIX)
s.connect(Layout.discover().socket_path)
f = s.makefile("rb")
for i in range(n):
    body = "\u0001" * (size // 6 - 16) if sys.argv[3] == "ctl" else "x" * (size - 64)
    s.sendall(json.dumps({"jsonrpc": "2.0", "id": i, "method": "message.send",
                          "params": {"caller": "alice", "body": body, "to": ["@bob"]}}).encode() + b"\n")
    f.readline()
"""


def vm(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--size", type=int, default=1 << 20, help="bytes per body (as stored)")
    ap.add_argument("--body", choices=("text", "ctl"), default="text", help="ctl: control characters")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-"))
    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THRUM_", "TMUX"))}
    env.update(
        HOME=str(home),
        GIT_AUTHOR_NAME="b",
        GIT_AUTHOR_EMAIL="b@x",
        GIT_COMMITTER_NAME="b",
        GIT_COMMITTER_EMAIL="b@x",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    repo, wt = tmp / "repo", tmp / "wt-alice"
    repo.mkdir()

    def run(argv: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False, timeout=600, **kw)

    try:
        for cmd in (
            ["git", "init", "-q", "-b", "main"],
            ["git", "commit", "-q", "--allow-empty", "-m", "i"],
            ["git", "worktree", "add", "-q", "-b", "f/alice", str(wt)],
        ):
            run(cmd, repo)
        run([*THRUM, "quickstart", "--name", "bob", "--role", "rev"], repo)
        run([*THRUM, "quickstart", "--name", "alice", "--role", "impl"], wt)
        pid = json.loads((repo / ".thrum" / "var" / "thrum.pid").read_text())["pid"]
        run([sys.executable, "-c", SENDER, str(args.messages), str(args.size), args.body], wt)
        before = vm(pid, "VmHWM")
        r = run([*THRUM, "inbox", "--page-size", str(min(args.messages, 1000)), "--json", "--unread"], repo)
        after = vm(pid, "VmHWM")
        held = len(json.loads(r.stdout)["messages"]) if r.returncode == 0 else 0
        journal = repo / ".git" / "thrum-sync" / "a-sync" / "journal" / "alice.jsonl"
        out = {
            "messages": args.messages,
            "body_bytes": args.size,
            "body": args.body,
            "inbox_exit": r.returncode,
            "inbox_error": r.stderr.decode()[:200].strip(),
            "response_bytes": len(r.stdout),
            "page_held": held,
            "engine_hwm_kb_before": before,
            "engine_hwm_kb_after": after,
            "journal_bytes": journal.stat().st_size if journal.exists() else 0,
        }
        run([*THRUM, "daemon", "stop"], repo)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:22s} {v}")


if __name__ == "__main__":
    main()

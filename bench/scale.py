"""How the agent-facing CLI's cost grows with the store (issue #17: at 1M messages <= 1.2x of 10k).

Stores of 10k, 100k and 1M messages between 50 agents are built from a generated journal through
the store's own rebuild path (`store.rebuild.build_projection`, what `doctor rebuild` and a deleted
projection use), and cached under /tmp/thrum-scale/<size>/ between runs: the journal once, one
projection per schema (a hash of the store's source). Then one headless daemon per size runs at
once, and every agent-facing command is run as a real subprocess (`thrum <command>`, @agent_00 in
the repo), round-robin over the sizes so machine load falls on all of them alike. Printed: the
median (and p90) per command and size, and the ratio of each size's median to 10k's.

The journal: 50 agents registered, each with an open session and a history of ended ones (one
per 2,000 messages); messages between random pairs (3 % to three agents, 0.2 % broadcast, a tenth
replies in threads); 95 % of deliveries read, in read events of up to 500 ids.

    .venv/bin/python bench/scale.py [--sizes 10000,100000,1000000] [--runs 15] [--json]
    .venv/bin/python bench/engine.py --only scale
    .venv/bin/python bench/scale.py --src /tmp/base/src   # the same for other code, same cache
"""

from __future__ import annotations

import argparse
import calendar
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("THRUM_SCALE_CACHE", "/tmp/thrum-scale"))
AGENTS = 50
ME = "agent_00"
SIZES = (10_000, 100_000, 1_000_000)
T0 = 1767225600  # 2026-01-01T00:00:00Z: the history is in the past, one message a second

# (label, argv): every command an agent runs against the engine, and whoami (no engine).
COMMANDS: list[tuple[str, list[str]]] = [
    ("whoami", ["whoami"]),
    ("status", ["status"]),
    ("team", ["team"]),
    ("prime", ["prime"]),
    ("overview", ["overview"]),
    ("inbox", ["inbox"]),
    ("inbox --unread", ["inbox", "--unread"]),
    ("sent", ["sent"]),
    ("send", ["send", "scale bench", "--to", "@agent_01"]),
    ("wait (backlog)", ["wait", "--after", "{backlog_after}", "--timeout", "5"]),
]
# `wait --after T` shows every unread message since T, up to 100: T is chosen per size so the
# backlog holds the same BACKLOG messages at every size (with `-400d` it held 7 at 10k and the
# 100-message cap at 100k and 1M, and the row measured printing 14 times more).
BACKLOG = 5


def _iso(t: float) -> str:
    secs = int(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{round((t - secs) * 1e6):06d}Z"


def _id(prefix: str, n: int) -> str:
    return f"{prefix}_01KB{n:022d}"  # Crockford digits; sorts by n, before any live ULID


def env_for(home: Path, src: str | None) -> dict:
    """The user's environment without Thrum's or tmux's session variables (the daemon must not find
    the caller's tmux server or identity); TMUX_TMPDIR is kept so both sides agree on tmux's socket dir."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("THRUM_") and k not in ("TMUX", "TMUX_PANE")
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        HOME=str(home),
        THRUM_NAME=ME,
        GIT_AUTHOR_NAME="b",
        GIT_AUTHOR_EMAIL="b@x",
        GIT_COMMITTER_NAME="b",
        GIT_COMMITTER_EMAIL="b@x",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    if src:
        env["PYTHONPATH"] = src
    return env


def write_journal(journal_dir: str, repo: str, messages: int, seed: int = 17) -> int:
    """The generated history (see the module docstring); returns the number of events."""
    from thrum_engine.engine.writer import encode

    rng = random.Random(seed)
    names = [f"agent_{i:02d}" for i in range(AGENTS)]
    shards: dict[str, list[bytes]] = {n: [] for n in names}
    n = 0

    def ev(author: str, etype: str, ts: str, data: dict) -> None:
        nonlocal n
        n += 1
        shards[author].append(
            encode({"v": 1, "id": _id("evt", n), "type": etype, "author": author, "ts": ts, "data": data})
        )

    start = _iso(T0)
    for name in names:
        ev(
            name,
            "agent.register",
            start,
            {"name": name, "role": "worker", "worktree": repo, "registered_at": start},
        )
    sessions_each = max(1, messages // 2000 // AGENTS)
    step = messages / (sessions_each + 1)
    session_at = {name: [step * (k + 1) for k in range(sessions_each)] for name in names}
    open_session: dict[str, str] = {}
    unread_queue: dict[str, list[str]] = {name: [] for name in names}
    last_mid: str | None = None
    for i in range(messages):
        ts = _iso(T0 + 60 + i)
        for name in names:  # a session ends and the next starts, now and then
            if session_at[name] and i >= session_at[name][0]:
                session_at[name].pop(0)
                if name in open_session:
                    ev(name, "session.end", ts, {"session_id": open_session[name], "reason": "normal"})
                open_session[name] = _id("ses", n)
                ev(name, "session.start", ts, {"session_id": open_session[name], "agent": name})
        author = rng.choice(names)
        roll = rng.random()
        others = [a for a in names if a != author]
        data: dict = {
            "message_id": _id("msg", n + 1),
            "content": f"message {i} " + "x" * 80,
            "format": "markdown",
        }
        if roll < 0.002:
            data["recipients"] = others
            data["broadcast"] = True
            data["addressed"] = ["@everyone"]
        elif roll < 0.032:
            data["recipients"] = rng.sample(others, 3)
        else:
            data["recipients"] = [rng.choice(others)]
        if last_mid and rng.random() < 0.1:
            data["reply_to"] = last_mid
            data["thread_id"] = _id("thr", n + 1)
            data["thread_root"] = last_mid
        ev(author, "message.create", ts, data)
        last_mid = data["message_id"]
        for r in data["recipients"]:
            if rng.random() < 0.95:
                q = unread_queue[r]
                q.append(data["message_id"])
                if len(q) >= 500:
                    ev(r, "message.read", ts, {"message_ids": q[:], "at": ts})
                    q.clear()
    end = _iso(T0 + 120 + messages)
    for name in names:
        if unread_queue[name]:
            ev(name, "message.read", end, {"message_ids": unread_queue[name], "at": end})
        if name not in open_session:
            ev(name, "session.start", end, {"session_id": _id("ses", n), "agent": name})
    os.makedirs(journal_dir, exist_ok=True)
    for name, lines in shards.items():
        with open(os.path.join(journal_dir, name + ".jsonl"), "wb") as fh:
            fh.write(b"".join(lines))
    return n


PROJECTION_SOURCE = ("schema.py", "apply.py", "lines.py", "db.py", "rebuild.py")


def schema_tag(src: Path) -> str:
    """Which projection a checkout builds: a hash of the store's source."""
    h = hashlib.sha1()
    for name in PROJECTION_SOURCE:
        h.update((src / "thrum_engine/store" / name).read_bytes())
    return h.hexdigest()[:12]


def _thrum(args: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([str(BIN / "thrum"), *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"thrum {' '.join(args)} failed in {cwd}: {p.stderr.strip()}")
    return p


def _src_of(src: str | None) -> Path:
    return Path(src) if src else ROOT / "src"


def prepare(size: int, src: str | None) -> tuple[Path, dict]:
    """The cached store of `size` messages, with the projection this checkout builds in place."""
    base = CACHE / str(size)
    repo, home = base / "repo", base / "home"
    env = env_for(home, src)
    if not (base / "journal.done").exists():
        shutil.rmtree(base, ignore_errors=True)
        home.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
        (repo / "README.md").write_text("x\n")
        subprocess.run(["git", "add", "README.md"], cwd=repo, check=True, env=env)
        subprocess.run(["git", "commit", "-q", "-m", "init"], cwd=repo, check=True, env=env)
        _thrum(["init", "--non-interactive", "--no-daemon"], repo, env)
        journal = repo / ".git/thrum-sync/a-sync/journal"
        t = time.perf_counter()
        events = write_journal(str(journal), str(repo), size)
        print(
            f"   generated {size:,} messages ({events:,} events) in {time.perf_counter() - t:.1f} s",
            file=sys.stderr,
        )
        (base / "journal.done").write_text(str(events))
    tag = schema_tag(_src_of(src))
    db = repo / ".thrum/var/thrum.db"
    kept = base / "projections"
    kept.mkdir(exist_ok=True)
    current = (base / "projection.tag").read_text() if (base / "projection.tag").exists() else None
    if current != tag:
        if current and db.exists():
            os.replace(db, kept / f"{current}.db")  # the daemon stopped cleanly: no -wal/-shm left
        if (kept / f"{tag}.db").exists():
            os.replace(kept / f"{tag}.db", db)
        elif db.exists():
            db.unlink()
        (base / "projection.tag").write_text(tag)
    if not db.exists():
        t = time.perf_counter()
        code = (
            "import asyncio, sys\n"
            "from thrum_engine.journal import Journal\n"
            "from thrum_engine.layout import Layout\n"
            "from thrum_engine.store.rebuild import build_projection, swap_in\n"
            "lay = Layout(sys.argv[1])\n"
            "j = Journal(lay.journal_dir, lay.quarantine_dir, lay.clone_file); j.open()\n"
            "b = asyncio.run(build_projection(j, lay.db_path, local_from=None))\n"
            "swap_in(b, lay.db_path); print(b.events)\n"
        )
        p = subprocess.run(
            [sys.executable, "-c", code, str(repo)], env=env, capture_output=True, text=True, check=False
        )
        if p.returncode:
            raise SystemExit(f"rebuild failed: {p.stderr}")
        print(
            f"   rebuilt {size:,} ({p.stdout.strip()} events) in {time.perf_counter() - t:.1f} s",
            file=sys.stderr,
        )
    return repo, env


def backlog_after(repo: Path) -> str:
    """`--after` (seconds before now) just past @agent_00's (BACKLOG+1)-th newest unread message
    from someone else: the BACKLOG newer ones are the backlog (the window's start moves with the
    clock; over a bench's minutes it loses a fraction of one message)."""
    import sqlite3

    db = sqlite3.connect(f"file:{repo / '.thrum/var/thrum.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT d.created_at FROM deliveries d JOIN messages m ON m.id = d.message_id"
            " WHERE d.recipient = ? AND d.read_at IS NULL AND d.deleted = 0 AND m.author != ?"
            " ORDER BY d.created_at DESC LIMIT ?",
            (ME, ME, BACKLOG + 1),
        ).fetchall()
    finally:
        db.close()
    if len(rows) <= BACKLOG:
        return "-400d"
    stamp = calendar.timegm(time.strptime(rows[-1][0][:19], "%Y-%m-%dT%H:%M:%S"))
    return f"-{int(time.time() - stamp)}s"


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    ms = (time.perf_counter() - t0) * 1000
    if p.returncode not in (0, 1):  # wait: 1 is a timeout
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr.decode()[:300]}")
    return ms


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def bench_scale(sizes: list[int], runs: int, src: str | None = None) -> dict:
    """Per command and size: median, p90, ratio of the median to the smallest size's."""
    stores = {size: prepare(size, src) for size in sizes}
    fill = {size: {"backlog_after": backlog_after(repo)} for size, (repo, _env) in stores.items()}

    def argv_for(argv: list[str], size: int) -> list[str]:
        return [str(BIN / "thrum"), *(a.format(**fill[size]) for a in argv)]

    try:
        for size, (repo, env) in stores.items():
            _thrum(["daemon", "start"], repo, env)
            for _ in range(2):  # first views mark read, caches warm
                for _label, argv in COMMANDS:
                    timed(argv_for(argv, size), repo, env)
        times: dict[str, dict[int, list[float]]] = {label: {s: [] for s in sizes} for label, _ in COMMANDS}
        for _ in range(runs):
            for label, argv in COMMANDS:
                for size, (repo, env) in stores.items():
                    times[label][size].append(timed(argv_for(argv, size), repo, env))
    finally:
        for repo, env in stores.values():
            _thrum(["daemon", "stop"], repo, env, check=False)
    small = sizes[0]
    out: dict = {"sizes": sizes, "agents": AGENTS, "runs": runs, "commands": {}}
    for label, by_size in times.items():
        med = {s: statistics.median(v) for s, v in by_size.items()}
        out["commands"][label] = {
            str(s): {
                "median_ms": round(med[s], 1),
                "p90_ms": round(pct(by_size[s], 90), 1),
                "x_smallest": round(med[s] / med[small], 2),
            }
            for s in sizes
        }
    out["worst_ratio"] = max(v[str(sizes[-1])]["x_smallest"] for v in out["commands"].values())
    return out


def print_scale(r: dict) -> None:
    sizes = r["sizes"]
    head = "".join(f"{f'{s:,}':>22}" for s in sizes)
    print(
        f"== CLI wall time by store size ({r['agents']} agents, median of {r['runs']}; x = ratio to {sizes[0]:,})"
    )
    print(f"  {'command':16s}{head}")
    for label, by in r["commands"].items():
        cells = "".join(
            f"{by[str(s)]['median_ms']:>9.1f} ms {by[str(s)]['x_smallest']:>5.2f}x   " for s in sizes
        )
        print(f"  {label:16s}  {cells}")
    print(f"  worst ratio at {sizes[-1]:,}: {r['worst_ratio']:.2f}x (target <= 1.2x)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--src", help="run another checkout's src/ (PYTHONPATH) on the same cached journals")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = bench_scale([int(s) for s in a.sizes.split(",")], a.runs, a.src)
    if a.json:
        print(json.dumps(r, indent=2, sort_keys=True))
    else:
        print_scale(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

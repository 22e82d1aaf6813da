"""User patterns cannot hold the engine hostage (F1), and a watched file cannot be swapped for one
outside the repo (F13). Real engine, real CLI subprocesses, real files, real tmux.

No latency thresholds here: "the engine stays responsive" means other clients' sends *complete*
(each CLI call has its own timeout) while a catastrophic pattern runs. The figures are in
bench/monitors.py.
"""

from __future__ import annotations

import json
import os
import threading

import pytest

from conftest import pane_state, wait_for
from test_monitors import append, contents, events, show

A_LINE = "a" * 34 + "!"  # `^(a|a)+$` on this backtracks 2**34 ways before failing
FEEDER = ["sh", "-c", f"while :; do echo {A_LINE}; sleep 0.05; done"]


@pytest.fixture
def team(repo):
    """A lead and a worker in the main checkout; the engine's match budget shortened for speed."""
    repo.env["THRUM_MONITORS__MATCH_BUDGET_SECONDS"] = "0.2"
    boss = repo.agent("boss", "lead", worktree=False)
    bob = repo.agent("bob", "worker", worktree=False)
    return repo, boss, bob


def sends_from_other_clients(sender, to: str, n: int, clients: int = 3) -> list:
    """n sends split over `clients` concurrent CLI processes; the results, in any order."""
    results: list = []

    def one(k: int) -> None:
        for i in range(k, n, clients):
            results.append(sender.run("send", f"ping {i}", "--to", to, timeout=60))

    threads = [threading.Thread(target=one, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def failed(agent, ident: str) -> dict | None:
    m = show(agent, ident)
    return m if m["status"] == "failed" else None


# -- F1: monitor patterns --


@pytest.mark.parametrize(
    "pattern, stopped",
    [
        ("^(a+)+$", False),  # the probe's pattern: catastrophic for `re`, linear for the regex engine
        ("^(a|a)+$", True),  # catastrophic for both: must be stopped by the budget
    ],
)
def test_a_catastrophic_monitor_pattern_never_blocks_other_clients(team, pattern, stopped):
    repo, boss, bob = team
    r = boss.ok(
        "--json",
        "monitor",
        "start",
        "--name",
        "redos",
        "--match",
        pattern,
        "--to",
        "@boss",
        "--debounce",
        "0",
        "--",
        *FEEDER,
    )
    mid = r.json["monitor"]["id"]

    results = sends_from_other_clients(bob, "@boss", 12)
    assert len(results) == 12
    assert all(r.code == 0 for r in results), [(r.code, r.err) for r in results if r.code]
    assert boss.run("monitor", "list").code == 0

    if not stopped:
        info = show(boss, mid)
        assert info["status"] == "running" and info["running"] and not info["last_error"], info
        return
    info = wait_for(lambda: failed(boss, mid), 20, "the rule stopped by its budget")
    assert "took longer than 0.2s" in info["last_error"] and info["running"] is False, info
    text = boss.ok("monitor", "show", "redos").out
    assert "failed" in text and "took longer than" in text, text
    errors = [e for e in events(boss, mid) if e["kind"] == "error"]
    assert errors and "took longer than" in errors[-1]["detail"] and errors[-1]["line"].startswith("aaaa"), (
        errors
    )
    notices = [c for c in contents(boss, "redos") if "monitor stopped" in c]
    assert len(notices) == 1 and "took longer than" in notices[0], notices

    # Stays stopped across an engine restart (the status and reason are persisted).
    repo.stop()
    assert repo.run("daemon", "start").code == 0
    again = show(boss, mid)
    assert (again["status"], again["running"], again["last_error"]) == ("failed", False, info["last_error"])
    assert all(r.code == 0 for r in sends_from_other_clients(bob, "@boss", 3))


def test_a_pattern_the_engine_cannot_compile_is_refused_at_creation(team):
    _repo, boss, _bob = team
    # (?:x{2000}){2000} held the engine's loop 3 s while compiling, (?:x{3500}){3500} took 2.5 GB
    # (reliability probe, session 22): counted repeats are sized before the compile
    for bad in ("(", "a{2,1}", "[z-a]", "(?:x{2000}){2000}", "(?:x{3500}){3500}", "x{100000}"):
        r = boss.run("monitor", "start", "--name", "bad", "--match", bad, "--to", "@bob", "--", "true")
        assert r.code == 1 and r.out == "" and r.err.startswith("Error: invalid pattern"), (bad, r.err)
        assert r.err.count("\n") == 1
    assert boss.json("monitor", "list", "--all") == []


def test_patterns_are_sized_before_they_compile():
    from thrum_engine.patterns import MAX_EXPANDED, PatternError, compile_pattern, expanded_size

    for ok in (
        r"\d{4}-\d{2}-\d{2}",
        r"(?:[a-f0-9]{2}:){5}[a-f0-9]{2}",
        r".{0,200}",
        r"x{a}",
        r"[{]{3}",
        "(?#{99999})x",
    ):
        assert expanded_size(ok) < 300, ok
        compile_pattern(ok)
    # a range is a loop past its minimum: cheap, whatever its maximum (a review of session 22)
    for ok in (
        r".{0,20000}",
        r"\d{1,65535}",
        r"(?:ab){0,60000}",
        r"token=[A-Za-z0-9]{0,20000}",
        "(?x) a b # c",
    ):
        assert expanded_size(ok) < 50, ok
        compile_pattern(ok)
    assert expanded_size("(?:x{300}){300}") > MAX_EXPANDED
    assert expanded_size("(?:x{300}){300,}") > MAX_EXPANDED  # an open repeat copies its minimum
    assert expanded_size("(x{200}|y{200}){200}") > MAX_EXPANDED  # branches add up
    with pytest.raises(PatternError, match="expand to"):
        compile_pattern("(?:(?:x{30}){30}){30}")


# -- F1's class: runtime preset markers from .thrum/runtimes.json --


def test_a_catastrophic_preset_marker_is_disabled_and_pane_state_carries_on(team):
    repo, _boss, bob = team
    presets = {"slow": {"extends": "shell", "idle": ["^(a|a)+$", r"[$#%>] $"]}}
    (repo.path / ".thrum" / "runtimes.json").write_text(json.dumps({"presets": presets}))
    r = repo.run("tmux", "create", "s1", "--cwd", str(repo.path), "--no-agent", "--runtime", "slow")
    assert r.code == 0, r.err
    assert repo.run("tmux", "send", "s1", f"printf '{A_LINE}\\n{A_LINE}\\n'").code == 0

    results = sends_from_other_clients(bob, "@boss", 9)
    assert all(r.code == 0 for r in results), [(r.code, r.err) for r in results if r.code]
    # The good marker still decides: back at the shell prompt, the pane reads idle.
    wait_for(lambda: pane_state(repo, "s1") == "idle", 20, "s1 idle by its remaining marker")
    logs = repo.run("daemon", "logs", "--lines", "400").out
    assert "idle marker '^(a|a)+$' took longer than" in logs and "disabled" in logs, logs[-2000:]


# -- F13: a watched file swapped for a symlink --


def test_a_symlink_swapped_in_for_a_watched_file_stops_the_rule(team, tmp_path):
    repo, boss, _bob = team
    log = repo.path / "x.log"
    log.write_text("start\n")
    secret = tmp_path / "secret"
    secret.write_text("root:first line of the outside file\n")
    mid = boss.json(
        "monitor",
        "watch-file",
        "--name",
        "s2",
        "--path",
        "x.log",
        "--match",
        "root",
        "--to",
        "@boss",
        "--debounce",
        "0",
    )["monitor"]["id"]
    append(log, "root: inside, delivered\n")
    wait_for(lambda: "[s2] root: inside, delivered" in contents(boss, "s2"), what="the inside line delivered")

    log.unlink()
    os.symlink(secret, log)
    append(secret, "root:appended to the outside file\n")
    append(log, "root:written through the symlink\n")
    info = wait_for(lambda: failed(boss, mid), 20, "the rule stopped by the swap")
    assert "escaped" in info["last_error"] and "symlink" in info["last_error"], info
    got = contents(boss, "s2")
    assert not any("outside file" in c or "through the symlink" in c for c in got), (
        got
    )  # nothing of the secret
    assert any("monitor stopped" in c for c in got), got
    assert "escaped" in boss.ok("monitor", "show", "s2").out


def test_a_follower_refuses_a_path_that_no_longer_resolves_inside_its_root(tmp_path):
    """The directory on the way swapped for a symlink (the name itself is not a link)."""
    from thrum_engine.monitors.sources import FileFollower, PathEscaped

    root = tmp_path / "repo"
    (root / "logs").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    path = root / "logs" / "app.log"
    path.write_text("")
    follower = FileFollower(str(path), 2000, root=str(root))
    append(path, "inside\n")
    assert follower.read_new() == ["inside"]

    (outside / "app.log").write_text("secret\n")
    (root / "logs").rename(root / "logs.old")
    os.symlink(outside, root / "logs")
    with pytest.raises(PathEscaped, match="outside"):
        follower.read_new()

    os.unlink(root / "logs")
    (root / "logs.old").rename(root / "logs")
    os.mkfifo(root / "logs" / "fifo")
    with pytest.raises(PathEscaped, match="regular file"):
        FileFollower(str(root / "logs" / "fifo"), 2000, root=str(root)).read_new()

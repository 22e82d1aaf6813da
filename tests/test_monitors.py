"""Monitors, end to end: a rule is created with the real `thrum monitor ...` CLI, its source
(a command, a file, a tmux pane) produces a line, the engine matches it and *really sends* a
message, and the recipient reads it with `thrum inbox --json` as itself. Nothing is pre-seeded:
the original Thrum's monitors matched but never delivered, because delivery needed rows that
only its tests created.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

from conftest import (
    assert_error,
    fake_runtime,
    pane_state,
    run_python,
    start_session,
    wait_for,
    write_runtimes,
)

MON_ID = re.compile(r"^mon_[0-9A-Za-z]{26}$")
STARTED = re.compile(r"^Started monitor (\S+) \((mon_[0-9A-Za-z]{26})\)$")


# -- helpers --


def inbox(agent) -> list[dict]:
    """The agent's whole inbox, oldest first, read with the real CLI as that agent."""
    return list(reversed(agent.json("inbox", "--page-size", "500")["messages"]))


def from_monitor(agent, name: str) -> list[dict]:
    return [m for m in inbox(agent) if m["agent_id"] == f"monitor:{name}"]


def contents(agent, name: str) -> list[str]:
    return [m["body"]["content"] for m in from_monitor(agent, name)]


def wait_contents(agent, name: str, n: int, timeout: float = 20.0) -> list[str]:
    """Wait until `monitor:<name>` has delivered at least n messages to `agent`."""
    got: list[str] = []

    def enough():
        got[:] = contents(agent, name)
        return len(got) >= n

    try:
        wait_for(enough, timeout, f"{n} message(s) from monitor:{name} in @{agent.name}'s inbox")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; got {got!r}") from None
    return got


def start_command(
    agent, name: str, match: str, to: str, *cmd: str, debounce: str = "0", extra: tuple = ()
) -> dict:
    """`monitor start ... -- CMD`: --json goes first (everything after `--` is the command)."""
    r = agent.ok(
        "--json",
        "monitor",
        "start",
        "--name",
        name,
        "--match",
        match,
        "--to",
        to,
        "--debounce",
        debounce,
        *extra,
        "--",
        *cmd,
    )
    mon = r.json["monitor"]
    assert MON_ID.match(mon["id"]), mon["id"]
    return mon


def monitors(agent, all_: bool = True) -> dict[str, dict]:
    args = ("monitor", "list", "--all") if all_ else ("monitor", "list")
    return {m["name"]: m for m in agent.json(*args)}


def show(agent, ident: str) -> dict:
    return agent.json("monitor", "show", ident)


def shown_if(agent, ident: str, cond) -> dict | None:
    """The monitor's record once `cond(record)` holds (for wait_for), else None."""
    m = show(agent, ident)
    return m if cond(m) else None


def events(agent, ident: str, limit: int | None = None) -> list[dict]:
    args = ["monitor", "logs", ident] + (["--limit", str(limit)] if limit else [])
    return agent.json(*args)["events"]


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()


def _ppid(pid: str) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _is_tail_of(pid: str, log: Path) -> bool:
    """`pid` is a `tail ... <log>` with the log open and its inotify watch set up, so a line
    appended now will be read (tail -n0 skips what was there when it opened)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if os.path.basename(argv[0]) != b"tail" or str(log).encode() not in argv:
            return False
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    return os.path.realpath(log) in links and "anon_inode:inotify" in links


def tails(repo, log: Path) -> int:
    """How many `tail -F <log>` run by the current engine are following the log."""
    daemon = repo.daemon_pid()
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit() and _is_tail_of(pid, log):
            try:
                n += _ppid(pid) == daemon
            except (OSError, ValueError, IndexError):
                pass
    return n


def wait_tails(repo, log: Path, n: int = 1) -> None:
    wait_for(lambda: tails(repo, log) == n, 20, f"{n} monitor tail(s) to follow {log.name}")


@pytest.fixture
def team(repo):
    """A lead (boss) and a worker (bob) sharing the main checkout."""
    boss = repo.agent("boss", "lead", worktree=False)
    bob = repo.agent("bob", "worker", worktree=False)
    return repo, boss, bob


@pytest.fixture
def tmux_repo(repo, tmp_path):
    """A repo whose engine knows a fake claude runtime that answers dialogs with a typed line."""
    repo.env.update({"THRUM_TMUX__SILENCE_SECONDS": "0.4", "THRUM_TMUX__TYPING_SECONDS": "1.5"})
    assert repo.run("init").code == 0
    repo.logs = tmp_path
    write_runtimes(repo, {"fake_a": fake_runtime(tmp_path / "a.log", approve="1 Enter", deny="3 Enter")})
    return repo


def fake_log(repo) -> list[str]:
    p = repo.logs / "a.log"
    return p.read_text().splitlines() if p.exists() else []


def member(agent, name: str) -> dict:
    return next(m for m in agent.json("team")["members"] if m["name"] == name)


# -- 1. a command monitor --


def test_command_monitor_delivers_only_matching_lines_to_the_target_inbox(team):
    repo, boss, bob = team
    log = repo.path / "app.log"
    log.write_text("ERROR: written before the monitor started\n")
    r = boss.ok(
        "monitor",
        "start",
        "--name",
        "errors",
        "--match",
        r"^ERROR\b",
        "--to",
        "@bob",
        "--debounce",
        "0",
        "--",
        "tail",
        "-n0",
        "-F",
        str(log),
    )
    m = STARTED.match(r.out.strip())
    assert m and m.group(1) == "errors", r.out
    mon_id = m.group(2)
    assert MON_ID.match(mon_id)
    wait_tails(repo, log)

    append(
        log,
        "info: all fine\nERROR: disk full\ndebug: ERROR in the middle is not at the start\n"
        "ERROR: disk still full\nwarning: nothing\n",
    )
    got = wait_contents(bob, "errors", 2)
    assert got == ["[errors] ERROR: disk full", "[errors] ERROR: disk still full"]

    msgs = from_monitor(bob, "errors")
    assert all(m["agent_id"] == "monitor:errors" and m["to"] == ["@bob"] for m in msgs)
    assert all({"type": "monitor", "value": mon_id} in m["refs"] for m in msgs)
    assert from_monitor(boss, "errors") == []  # only the target hears about it
    info = show(boss, mon_id)
    assert (info["id"], info["name"], info["status"], info["running"]) == (mon_id, "errors", "running", True)
    assert info["matches"] == 2 and info["delivered"] == 2 and not info["last_error"]


def test_crlf_output_matches_like_the_same_line_with_lf(team):
    """Lines are split on \\n and their trailing \\r dropped before matching, so `done$` must match
    `build done\\r\\n` exactly as it matches `build done\\n` (a chunk-wide pre-filter must not
    skip it)."""
    repo, boss, bob = team
    log = repo.path / "crlf.log"
    log.write_text("")
    start_command(boss, "crlf", "done$", "@bob", "tail", "-n0", "-F", str(log))
    wait_tails(repo, log)
    with open(log, "ab") as fh:
        fh.write(b"build done\r\n")
    assert wait_contents(bob, "crlf", 1, timeout=8) == ["[crlf] build done"]
    append(log, "tests done\n")
    assert wait_contents(bob, "crlf", 2) == ["[crlf] build done", "[crlf] tests done"]


# -- 2. debounce --


def test_debounce_holds_back_repeats_and_summarises_them_after_the_window(team):
    repo, boss, bob = team
    log = repo.path / "burst.log"
    log.write_text("")
    start_command(boss, "slow", "BURST", "@bob", "tail", "-n0", "-F", str(log), debounce="2s")
    start_command(boss, "every", "BURST", "@boss", "tail", "-n0", "-F", str(log), debounce="0")
    assert show(boss, "slow")["debounce"] == 2 and show(boss, "every")["debounce"] == 0

    wait_tails(repo, log, 2)
    append(log, "BURST 1\nBURST 2\nBURST 3\n")

    # --debounce 0: every match is its own message.
    assert wait_contents(boss, "every", 3) == ["[every] BURST 1", "[every] BURST 2", "[every] BURST 3"]
    # --debounce 2s: the first match now ...
    first = wait_contents(bob, "slow", 1)
    assert first == ["[slow] BURST 1"]
    # ... and after the window, one summary of the two held back.
    got = wait_contents(bob, "slow", 2, timeout=15)
    assert len(got) == 2, got
    assert got[1].startswith("[slow] 2 more matches suppressed"), got
    assert "(last: BURST 3)" in got[1], got
    kinds = [e["kind"] for e in events(boss, "slow")]
    assert kinds.count("match") == 1 and kinds.count("suppressed") == 1, kinds
    assert show(boss, "slow")["matches"] == 1 and show(boss, "slow")["delivered"] == 2


def test_a_restart_inside_the_debounce_window_keeps_it(team):
    """`monitor restart` delivered a repeat inside the window at once (walk C, C7): the window of the
    last delivered match carries over, and what it holds back is summarised when it ends."""
    repo, boss, bob = team
    log = repo.path / "again.log"
    log.write_text("")
    mon = start_command(boss, "again", "ERR", "@bob", "tail", "-n0", "-F", str(log), debounce="4s")
    wait_tails(repo, log, 1)
    append(log, "ERR one\n")
    assert wait_contents(bob, "again", 1) == ["[again] ERR one"]
    boss.ok("monitor", "restart", mon["id"])
    wait_for(
        lambda: [e["kind"] for e in events(boss, "again")].count("start") == 2 and tails(repo, log) == 1,
        20,
        "the restarted rule's tail",
    )
    time.sleep(0.3)  # `tail -n0 -F` opens the file after it starts: a line before that is not read
    append(log, "ERR two\n")
    got = wait_contents(bob, "again", 2, timeout=20)
    assert got[1].startswith("[again] 1 more match suppressed") and "(last: ERR two)" in got[1], got


EDIT = r"""
import json, sys
from thrum_engine.rpc.client import Client
from thrum_engine.layout import Layout
c = Client(Layout.discover().socket_path).connect()
print(json.dumps(c.call("monitor.edit", json.loads(sys.argv[1]))))
"""


def test_an_edit_logs_and_applies_only_what_changed(team):
    """The console's form sends every field: the log said `edit debounce, pattern, target` when only
    the match had changed (walk A, 14); the same values again change nothing."""
    repo, boss, bob = team
    log = repo.path / "edit.log"
    log.write_text("")
    mon = start_command(boss, "ed", "ERR", "@bob", "tail", "-n0", "-F", str(log), debounce="5s")
    same = {"id": mon["id"], "match": "ERR", "to": "@bob", "debounce": 5.0}

    def edit(params: dict) -> dict:
        r = run_python(boss, EDIT, json.dumps(params))
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["monitor"]

    edit({**same, "match": "FAIL"})
    edit(same | {"match": "FAIL"})  # nothing differs now
    edits = [e["detail"] for e in events(boss, "ed") if e["kind"] == "edit"]
    assert edits == ["pattern"], edits
    assert [e["kind"] for e in events(boss, "ed")].count("start") == 2  # one restart, for the one change


# -- 3. restart, stop, restart, show, logs --


def test_monitor_survives_a_daemon_restart_and_stop_restart_show_logs_work(team):
    repo, boss, bob = team
    log = repo.path / "svc.log"
    log.write_text("")
    mon = start_command(boss, "svc", "FAIL", "@bob", "tail", "-n0", "-F", str(log))
    mon_id = mon["id"]
    # A witness on the same log, to boss: proves lines were produced and read while svc is stopped.
    start_command(boss, "witness", "FAIL", "@boss", "tail", "-n0", "-F", str(log))
    wait_tails(repo, log, 2)
    append(log, "FAIL one\n")
    assert wait_contents(bob, "svc", 1) == ["[svc] FAIL one"]
    wait_contents(boss, "witness", 1)

    old_pid = repo.daemon_pid()
    r = repo.run("daemon", "restart", timeout=60)
    assert r.code == 0, r.err
    wait_for(lambda: repo.daemon_pid() not in (None, old_pid), what="a new daemon")
    listed = monitors(boss, all_=False)
    assert listed["svc"]["id"] == mon_id and listed["svc"]["status"] == "running"
    wait_tails(repo, log, 2)  # under the new daemon
    assert monitors(boss, all_=False)["svc"]["running"] is True
    append(log, "FAIL two\n")
    assert wait_contents(bob, "svc", 2) == ["[svc] FAIL one", "[svc] FAIL two"]

    # stop by id: the next matching line is not delivered.
    r = boss.ok("monitor", "stop", mon_id)
    assert r.out.strip() == f"✓ Stopped monitor {mon_id} (svc)"
    assert "svc" not in monitors(boss, all_=False)
    stopped = monitors(boss)["svc"]
    assert stopped["status"] == "stopped" and stopped["running"] is False
    append(log, "FAIL three\n")
    wait_contents(boss, "witness", 3)
    time.sleep(0.5)  # the stopped rule gets every chance to (wrongly) deliver
    assert contents(bob, "svc") == ["[svc] FAIL one", "[svc] FAIL two"]

    # restart by name: delivering again.
    r = boss.ok("monitor", "restart", "svc")
    assert r.out.strip() == f"✓ Restarted monitor svc ({mon_id})"
    assert monitors(boss, all_=False)["svc"]["status"] == "running"
    wait_tails(repo, log, 2)
    append(log, "FAIL four\n")
    assert wait_contents(bob, "svc", 3) == ["[svc] FAIL one", "[svc] FAIL two", "[svc] FAIL four"]

    # show: by name and by id, human and JSON.
    for ident in (mon_id, "svc"):
        info = show(boss, ident)
        assert info["id"] == mon_id and info["matches"] == 3 and info["delivered"] == 3
        assert info["last_match_at"]
    human = boss.ok("monitor", "show", "svc").out
    assert mon_id in human and "svc" in human and "running" in human and "3 matches" in human

    # logs: every match with the id of the message it became, which is what bob received.
    sent_ids = {m["body"]["content"]: m["message_id"] for m in from_monitor(bob, "svc")}
    evs = events(boss, "svc")
    matches = [e for e in evs if e["kind"] == "match"]
    assert [(e["line"], e["message_id"]) for e in matches] == [
        (c[len("[svc] ") :], sent_ids[c]) for c in ("[svc] FAIL one", "[svc] FAIL two", "[svc] FAIL four")
    ]
    assert "stop" in [e["kind"] for e in evs]
    limited = events(boss, mon_id, limit=2)
    assert limited == evs[-2:] and len(limited) == 2
    last = events(boss, mon_id, limit=1)
    assert (
        len(last) == 1 and last[0]["kind"] == "match" and last[0]["message_id"] == sent_ids["[svc] FAIL four"]
    )
    human = boss.ok("monitor", "logs", mon_id, "--limit", "1").out.strip().splitlines()
    assert len(human) == 1 and "FAIL four" in human[0] and sent_ids["[svc] FAIL four"] in human[0]
    r = boss.run("monitor", "logs", "svc", "--limit", "lots")
    assert_error(r, "--limit")


# -- 4. a pane monitor --


def test_pane_monitor_fires_when_the_pane_prints_the_pattern(tmux_repo):
    repo = tmux_repo
    boss = repo.agent("boss", "lead", worktree=False)
    start_session(repo, "s1", "worker1", "fake_a")
    r = boss.ok(
        "monitor",
        "watch-pane",
        "--name",
        "panewatch",
        "--session",
        "s1",
        "--match",
        r"^ok: .*PANEMATCH",
        "--to",
        "@boss",
        "--debounce",
        "0",
    )
    m = STARTED.match(r.out.strip())
    assert m and m.group(1) == "panewatch", r.out
    assert monitors(boss)["panewatch"]["source"] == "pane"

    assert repo.run("tmux", "send", "s1", "nothing to see").code == 0
    wait_for(lambda: "nothing to see" in fake_log(repo), what="the fake to read the first line")
    assert repo.run("tmux", "send", "s1", "hello PANEMATCH").code == 0
    assert wait_contents(boss, "panewatch", 1) == ["[panewatch] ok: hello PANEMATCH"]
    assert show(boss, "panewatch")["matches"] == 1

    r = boss.run(
        "monitor", "watch-pane", "--name", "nopane", "--session", "nosuch", "--match", "x", "--to", "@boss"
    )
    assert_error(r, "nosuch")
    assert "nopane" not in monitors(boss)


# -- 5. a file monitor --


def test_file_monitor_follows_appends_rotation_and_truncation(team):
    repo, boss, bob = team
    (repo.path / "logs").mkdir()
    log = repo.path / "logs" / "app.log"
    log.write_text("MATCH already there before the monitor\n")
    r = bob.ok(
        "monitor",
        "watch-file",
        "--name",
        "filewatch",
        "--path",
        "logs/app.log",
        "--match",
        "MATCH",
        "--to",
        "@bob",
        "--debounce",
        "0",
    )
    assert STARTED.match(r.out.strip()), r.out
    info = show(bob, "filewatch")
    assert info["source"] == "file" and info["spec"]["path"] == os.path.realpath(log)

    append(log, "nothing\nappended MATCH one\n")
    assert wait_contents(bob, "filewatch", 1) == ["[filewatch] appended MATCH one"]

    # Rotation: moved away, a new file at the same path.
    log.rename(log.with_name("app.log.1"))
    log.write_text("rotated MATCH two " + "x" * 200 + "\n")
    got = wait_contents(bob, "filewatch", 2)
    assert got[1] == "[filewatch] rotated MATCH two " + "x" * 200, got
    append(log.with_name("app.log.1"), "MATCH in the rotated-away file\n")  # not followed any more

    # Truncation in place (copytruncate), then a new, shorter line.
    with open(log, "r+") as fh:
        fh.truncate(0)
    append(log, "truncated MATCH three\n")
    got = wait_contents(bob, "filewatch", 3)
    assert got[2] == "[filewatch] truncated MATCH three", got
    append(log, "after MATCH four\n")
    got = wait_contents(bob, "filewatch", 4)
    assert got[2:] == ["[filewatch] truncated MATCH three", "[filewatch] after MATCH four"], got
    assert len(got) == 4 and show(bob, "filewatch")["matches"] == 4


def test_file_monitor_on_a_file_created_later_shared_by_two_rules_and_across_a_restart(team):
    repo, boss, bob = team
    (repo.path / "logs").mkdir()
    log = repo.path / "logs" / "later.log"
    assert not log.exists()
    for name, to in (("first", "@bob"), ("second", "@boss")):
        bob.ok(
            "monitor",
            "watch-file",
            "--name",
            name,
            "--path",
            str(log),
            "--match",
            r"M\d",
            "--to",
            to,
            "--debounce",
            "0",
        )
    log.write_text("M1 the file appears\n")
    assert wait_contents(bob, "first", 1) == ["[first] M1 the file appears"]
    assert wait_contents(boss, "second", 1) == ["[second] M1 the file appears"]

    bob.ok("monitor", "stop", "second")  # the other rule on the same file keeps going
    append(log, "M2\n")
    assert wait_contents(bob, "first", 2)[1:] == ["[first] M2"]

    assert repo.run("daemon", "restart", timeout=60).code == 0
    append(log, "M3\n")
    assert wait_contents(bob, "first", 3)[2:] == ["[first] M3"]
    bob.ok("monitor", "restart", "second")
    append(log, "M4\n")
    assert wait_contents(bob, "first", 4)[3:] == ["[first] M4"]
    assert wait_contents(boss, "second", 2) == ["[second] M1 the file appears", "[second] M4"]


# -- 6. the permission rule --


def test_permission_dialog_blocks_the_agent_and_y_or_n_replies_answer_it(tmux_repo):
    repo = tmux_repo
    coord = repo.agent("coord", "coordinator", worktree=False)
    boss = repo.agent("boss", "lead", worktree=False)
    start_session(repo, "s1", "worker1", "fake_a")

    def notices(seen: set) -> list[dict]:
        return [
            m
            for m in inbox(coord)
            if m["agent_id"] == "monitor:permissions"
            and "@worker1 is waiting on a permission dialog" in m["body"]["content"]
            and m["message_id"] not in seen
        ]

    seen: set[str] = set()
    for round_, (answer, keys, verdict) in enumerate((("y", "1", "Approved"), ("n", "3", "Denied"))):
        assert repo.run("tmux", "send", "s1", "dialog").code == 0
        wait_for(lambda: member(coord, "worker1")["status"] == "blocked", what="worker1 marked blocked")
        assert member(coord, "worker1")["presence"] == "blocked"
        notice = wait_for(lambda: notices(seen), what="the permission notice to the coordinator")
        assert len(notice) == 1, notice
        notice = notice[0]
        seen.add(notice["message_id"])
        assert notice["to"] == ["@coord"]
        assert "s1" in notice["body"]["content"] and "Do you want to proceed?" in notice["body"]["content"]
        # the question on the first line, which is what a toast shows (console walk, session 22)
        assert 'session s1 — "Do you want to proceed?"' in notice["body"]["content"].splitlines()[0]
        assert len([ln for ln in fake_log(repo) if ln.startswith("answer:")]) == round_, "answered too early"

        r = coord.ok("--json", "reply", notice["message_id"], answer)
        reply_id = r.json["message_id"]
        wait_for(
            lambda keys=keys: f"answer: {keys}" in fake_log(repo),
            what=f"the {verdict.lower()} keys in the pane",
        )
        assert [ln for ln in fake_log(repo) if ln.startswith("answer:")][-1] == f"answer: {keys}"
        wait_for(
            lambda: (
                member(coord, "worker1")["status"] != "blocked"
                and member(coord, "worker1")["presence"] != "blocked"
            ),
            what="worker1 no longer blocked",
        )
        confirm = wait_for(
            lambda reply_id=reply_id: [
                m
                for m in inbox(coord)
                if m["agent_id"] == "monitor:permissions" and m["reply_to"] == reply_id
            ],
            what="the confirmation",
        )
        assert len(confirm) == 1
        assert confirm[0]["body"]["content"].startswith(f"✓ {verdict} in s1"), confirm[0]["body"]["content"]
        seen.add(confirm[0]["message_id"])
        wait_for(lambda: pane_state(repo, "s1") == "idle", what="the fake back at its prompt")

    assert [ln for ln in fake_log(repo) if ln.startswith("answer:")] == ["answer: 1", "answer: 3"]
    # The lead is not a supervisor: it heard nothing.
    assert [m for m in inbox(boss) if m["agent_id"] == "monitor:permissions"] == []


def test_a_reply_to_a_dialog_that_already_closed_types_nothing_and_says_so(tmux_repo):
    repo = tmux_repo
    coord = repo.agent("coord", "coordinator", worktree=False)
    start_session(repo, "s1", "worker1", "fake_a")
    assert repo.run("tmux", "send", "s1", "dialog").code == 0
    notice = wait_for(
        lambda: [m for m in inbox(coord) if m["agent_id"] == "monitor:permissions"],
        what="the permission notice",
    )[0]
    # Someone answers in the pane before the coordinator does.
    assert repo.run("tmux", "send", "s1", "1").code == 0
    wait_for(lambda: member(coord, "worker1")["status"] != "blocked", what="worker1 no longer blocked")
    wait_for(lambda: pane_state(repo, "s1") == "idle", what="the fake back at its prompt")

    reply_id = coord.ok("--json", "reply", notice["message_id"], "y").json["message_id"]
    answer = wait_for(
        lambda: [
            m for m in inbox(coord) if m["agent_id"] == "monitor:permissions" and m["reply_to"] == reply_id
        ],
        timeout=8,
        what="an answer saying the dialog is gone (the reply must not be ignored silently)",
    )
    assert (
        "no longer open" in answer[0]["body"]["content"]
        and "nothing was typed" in answer[0]["body"]["content"]
    )
    assert [ln for ln in fake_log(repo) if ln.startswith("answer:")] == ["answer: 1"]
    assert fake_log(repo)[-1] == "answer: 1", "keys were typed into the pane after the dialog closed"


# -- 7. delivery failures are visible --


def test_a_failed_delivery_is_recorded_and_the_engine_keeps_going(team):
    repo, boss, bob = team
    log = repo.path / "fail.log"
    log.write_text("")
    start_command(boss, "tobob", "OOPS", "@bob", "tail", "-n0", "-F", str(log))
    start_command(boss, "toboss", "OOPS", "@boss", "tail", "-n0", "-F", str(log))
    wait_tails(repo, log, 2)
    pid = repo.daemon_pid()
    assert boss.run("agent", "delete", "bob", "--force").code == 0

    append(log, "OOPS one\n")
    assert wait_contents(boss, "toboss", 1) == ["[toboss] OOPS one"]
    info = wait_for(
        lambda: shown_if(boss, "tobob", lambda m: m["last_error"]), what="last_error on the failed monitor"
    )
    assert "delivery failed" in info["last_error"] and "bob" in info["last_error"], info["last_error"]
    assert info["delivered"] == 0
    errs = [e for e in events(boss, "tobob") if e["kind"] == "error"]
    assert errs and "delivery failed" in errs[0]["detail"] and errs[0]["line"] == "OOPS one"
    assert errs[0]["message_id"] is None
    listing = boss.ok("monitor", "list").out
    assert any("tobob" in ln and "delivery failed" in ln for ln in listing.splitlines()), listing

    # The engine is the same process and still delivers for the healthy monitor.
    append(log, "OOPS two\n")
    assert wait_contents(boss, "toboss", 2) == ["[toboss] OOPS one", "[toboss] OOPS two"]
    wait_for(
        lambda: len([e for e in events(boss, "tobob") if e["kind"] == "error"]) == 2,
        what="the second failure logged",
    )
    assert repo.daemon_pid() == pid
    assert boss.run("daemon", "status").code == 0


# -- 8. crashing commands give up; schedules are accepted --


def test_a_command_that_keeps_crashing_gives_up_and_tells_the_target(repo):
    repo.env["THRUM_MONITORS__GIVE_UP_AFTER_CRASHES"] = "3"  # before anything starts the daemon
    boss = repo.agent("boss", "lead", worktree=False)
    bob = repo.agent("bob", "worker", worktree=False)
    mon = start_command(boss, "flaky", "never matches", "@bob", "false")

    got = wait_contents(bob, "flaky", 1, timeout=40)
    assert len(got) == 1 and "gave up" in got[0] and "3" in got[0], got
    info = wait_for(
        lambda: shown_if(boss, mon["id"], lambda m: m["status"] == "failed"), what="status failed"
    )
    assert "gave up" in info["last_error"] and info["running"] is False
    assert "flaky" not in monitors(boss, all_=False)
    assert [e["kind"] for e in events(boss, "flaky")].count("exit") == 3

    r = boss.ok(
        "monitor",
        "start",
        "--name",
        "cron",
        "--match",
        "TICK",
        "--to",
        "@bob",
        "--schedule",
        "* * * * *",
        "--",
        "echo",
        "TICK",
    )
    assert STARTED.match(r.out.strip()), r.out
    listed = monitors(boss, all_=False)["cron"]
    assert listed["schedule"] == "* * * * *" and listed["status"] == "running"
    assert "schedule: * * * * *" in boss.ok("monitor", "show", "cron").out
    boss.ok("monitor", "stop", "cron")

    # `false` exits with status 1 every time: that is what the log and the notice must say.
    exits = [e["detail"] for e in events(boss, "flaky") if e["kind"] == "exit"]
    assert exits == ["exit status 1"] * 3, exits
    assert "(last exit status 1)" in got[0], got


# -- 9. bad input --


def test_bad_input_is_one_error_line_and_creates_nothing(team, tmp_path):
    repo, boss, bob = team
    start_command(boss, "dup", "x", "@bob", "tail", "-n0", "-F", str(repo.path / "README.md"))
    before = boss.json("monitor", "list", "--all")

    def start(*args: str, cmd: tuple = ("true",)):
        return boss.run("monitor", "start", *args, *(("--", *cmd) if cmd else ()))

    common = ("--match", "x", "--to", "@bob")
    cases = [
        (start("--name", "re", "--match", "(", "--to", "@bob"), ["invalid pattern"]),
        (start("--name", "empty", "--match", "", "--to", "@bob"), ["--match"]),
        (start("--name", "who", "--match", "x", "--to", "@nobody"), ["unknown recipient", "@nobody"]),
        (start("--name", "dup", *common), ["dup", "already exists"]),
        (
            start("--name", "nocmd", *common, cmd=("no-such-command-xyz",)),
            ["command not found", "no-such-command-xyz"],
        ),
        (start("--name", "cron1", *common, "--schedule", "bad"), ["--schedule"]),
        (start("--name", "cron2", *common, "--schedule", "* * *"), ["--schedule"]),
        (start("--name", "cron3", *common, "--schedule", "61 * * * *"), ["--schedule"]),
        (
            start("--name", "cron4", *common, "--schedule", "0 0 31 2 *"),
            ["invalid --schedule", "never fires"],
        ),
        (start("--name", "nodash", *common, cmd=()), ["--"]),
        (start("--name", "Bad Name", *common), ["invalid monitor name"]),
        (start("--name", "a/b", *common), ["invalid monitor name"]),
        (start("--name", "deb", *common, "--debounce", "soon"), ["--debounce"]),
        (start("--name", "cwd", *common, "--cwd", str(tmp_path / "nope")), ["--cwd"]),
        (start("--name", "env", *common, "--env", "NOEQUALS"), ["--env"]),
        (start("--match", "x", "--to", "@bob"), ["--name"]),
        (
            boss.run(
                "monitor", "watch-file", "--name", "outside", "--path", str(tmp_path / "outside.log"), *common
            ),
            ["outside the repo", "--allow-outside"],
        ),
        (
            boss.run("monitor", "watch-file", "--name", "dotdot", "--path", "../escape.log", *common),
            ["outside the repo"],
        ),
        (
            boss.run(
                "monitor",
                "watch-file",
                "--name",
                "fwho",
                "--path",
                "x.log",
                "--match",
                "x",
                "--to",
                "@nobody",
            ),
            ["unknown recipient"],
        ),
        (
            boss.run(
                "monitor", "watch-file", "--name", "fre", "--path", "x.log", "--match", "[", "--to", "@bob"
            ),
            ["invalid pattern"],
        ),
        (
            boss.run(
                "monitor",
                "watch-pane",
                "--name",
                "pwho",
                "--session",
                "s1",
                "--match",
                "x",
                "--to",
                "@nobody",
            ),
            [],
        ),
        (boss.run("monitor", "show", "nosuch"), ["nosuch"]),
        (boss.run("monitor", "stop", "mon_00000000000000000000000000"), ["no monitor"]),
        (boss.run("monitor", "restart", "nosuch"), ["no monitor"]),
        (boss.run("monitor", "logs", "nosuch"), ["no monitor"]),
    ]
    for r, needles in cases:
        assert_error(r, *needles)
    assert boss.json("monitor", "list", "--all") == before, "a refused command created something"

    # With --allow-outside the same path is accepted, and it works.
    outside = tmp_path / "outside.log"
    outside.write_text("")
    r = boss.ok(
        "monitor",
        "watch-file",
        "--name",
        "outside",
        "--path",
        str(outside),
        *common,
        "--allow-outside",
        "--debounce",
        "0",
    )
    assert STARTED.match(r.out.strip())
    assert monitors(boss)["outside"]["spec"]["path"] == os.path.realpath(outside)
    append(outside, "x marks the spot\n")
    assert wait_contents(bob, "outside", 1) == ["[outside] x marks the spot"]


# -- 10. no shell --


def test_monitor_commands_are_execd_without_a_shell(team, tmp_path):
    repo, boss, bob = team
    pwned = tmp_path / "pwned"
    words = [f"$(touch {pwned})", f"`touch {pwned}`", ";", "touch", str(pwned), "|", "MATCHME"]
    start_command(boss, "literal", "MATCHME", "@bob", "echo", *words, debounce="60s")
    got = wait_contents(bob, "literal", 1)
    boss.ok("monitor", "stop", "literal")
    assert got[0] == "[literal] " + " ".join(words)
    assert not pwned.exists()


def test_command_monitor_runs_in_its_cwd_with_the_given_env(team):
    repo, boss, bob = team
    sub = repo.path / "sub"
    sub.mkdir()
    code = (
        "import os; print('ENVCHECK', os.getcwd(), os.environ.get('FOO'), "
        "sorted(k for k in os.environ if k.startswith('THRUM_')))"
    )
    start_command(
        boss,
        "envcheck",
        "ENVCHECK",
        "@bob",
        sys.executable,
        "-c",
        code,
        debounce="60s",
        extra=("--cwd", str(sub), "--env", "FOO=bar=baz"),
    )
    got = wait_contents(bob, "envcheck", 1)
    boss.ok("monitor", "stop", "envcheck")
    assert got[0] == f"[envcheck] ENVCHECK {os.path.realpath(sub)} bar=baz []"

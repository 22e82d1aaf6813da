"""Nudges and the command queue, with a real tmux server on a private socket and the fake agent."""

from __future__ import annotations

import subprocess
import time

import pytest

from conftest import fake_runtime, outer_terminal, pane_state, start_session, wait_for, write_runtimes


@pytest.fixture
def make_tmux_repo(make_repo, tmp_path):
    """Repos whose engine (on the repo's private tmux server) knows fake claude runtimes."""

    def make(**env: str):
        repo = make_repo()
        repo.env.update({"THRUM_TMUX__SILENCE_SECONDS": "0.4", "THRUM_TMUX__TYPING_SECONDS": "1.5", **env})
        assert repo.run("init").code == 0
        repo.sock = repo.env["THRUM_TMUX__SOCKET_NAME"]
        repo.logs = tmp_path
        write_runtimes(repo, {f"fake_{n}": fake_runtime(tmp_path / f"{n}.log") for n in ("a", "b", "c")})
        return repo

    return make


@pytest.fixture
def tmux_repo(make_tmux_repo):
    return make_tmux_repo()


def start_agent(repo, session: str, agent: str, fake: str) -> None:
    """`start_session` with the fake runtime `fake_<fake>` (test_mcp_delivery imports this name)."""
    start_session(repo, session, agent, f"fake_{fake}")


def jq(agent, *args):
    """--json first: `tmux queue S -- CMD` takes everything after `--` as the command."""
    return agent.ok("--json", *args).json


def log_lines(repo, n: str) -> list[str]:
    p = repo.logs / f"{n}.log"
    return p.read_text().splitlines() if p.exists() else []


def nudges(repo, n: str) -> list[str]:
    return [
        ln
        for ln in log_lines(repo, n)
        if ln.startswith(("New message", "2 new", "3 new")) or " new messages" in ln
    ]


@pytest.fixture
def boss(tmux_repo):
    return tmux_repo.agent("boss", "lead", worktree=False)


def test_mail_to_an_idle_agent_is_nudged_once_and_marked_notified(tmux_repo, boss):
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    sent = boss.json("send", "please look at the auth bug", "--to", "@worker1")
    wait_for(lambda: nudges(tmux_repo, "a"), what="the nudge")
    assert nudges(tmux_repo, "a") == [
        "New message from @boss — run `thrum inbox` (reads and marks them read)"
    ]
    shown = boss.json("sent", "show", sent["message_id"])["message"]["deliveries"]
    wait_for(
        lambda: (
            boss.json("sent", "show", sent["message_id"])["message"]["deliveries"][0]["state"] == "notified"
        ),
        what="notified state",
    )
    assert shown[0]["recipient"] == "worker1"
    assert not (tmux_repo.logs / "a.log.typeahead").exists()


def test_a_nudge_is_recorded_in_a_line_that_doctor_and_a_rebuild_accept(tmux_repo, boss):
    """The nudger's delivery record passes the check every line read back gets: `doctor` agrees after a
    nudge, and a rebuild keeps the message notified (via nudge) instead of 'not yet delivered'."""
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    sent = boss.json("send", "please look at the auth bug", "--to", "@worker1")

    def ledger() -> list[tuple]:
        m = boss.json("sent", "show", sent["message_id"])["message"]
        return [(d["state"], d.get("via")) for d in m["deliveries"]]

    wait_for(lambda: ledger() == [("notified", "nudge")], what="the nudge recorded")
    r = tmux_repo.run("doctor", "--json")
    assert r.code == 0 and r.json["ok"], r.out
    assert r.json["journal"]["invalid_lines"] == 0
    assert tmux_repo.json("doctor", "rebuild")["identical"]
    assert ledger() == [("notified", "nudge")]


def test_no_nudge_into_a_dialog_then_one_coalesced_nudge_when_it_clears(tmux_repo, boss):
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    assert tmux_repo.run("tmux", "send", "s1", "dialog").code == 0
    wait_for(lambda: pane_state(tmux_repo, "s1") == "blocked", what="blocked")
    boss.ok("send", "first", "--to", "@worker1")
    boss.ok("send", "second", "--to", "@worker1")
    time.sleep(1.0)  # give a wrong nudge every chance to happen
    assert not [ln for ln in log_lines(tmux_repo, "a") if ln.startswith("answer:")], "typed into the dialog"
    assert tmux_repo.run("tmux", "send", "s1", "1").code == 0
    wait_for(lambda: nudges(tmux_repo, "a"), what="the deferred nudge")
    time.sleep(0.6)
    assert log_lines(tmux_repo, "a")[-2:] == [
        "answer: 1",
        "2 new messages from @boss — run `thrum inbox` (reads and marks them read)",
    ]


def test_no_nudge_while_the_agent_is_busy(tmux_repo, boss):
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    assert tmux_repo.run("tmux", "send", "s1", "busy 1.5").code == 0
    wait_for(lambda: pane_state(tmux_repo, "s1") == "working", what="working")
    boss.ok("send", "while busy", "--to", "@worker1")
    wait_for(lambda: nudges(tmux_repo, "a"), what="the nudge after busy")
    assert log_lines(tmux_repo, "a")[-2:] == [
        "busy 1.5",
        "New message from @boss — run `thrum inbox` (reads and marks them read)",
    ]
    assert not (tmux_repo.logs / "a.log.typeahead").exists(), "the nudge was typed while the agent was busy"


def test_input_typed_and_erased_in_the_pane_does_not_stop_delivery(tmux_repo, boss):
    """Walk bug 2: `oops` typed into the agent's pane and erased again left `oops^H ^H...` in the
    stream, which matched no marker: `unknown` forever over an idle prompt, no nudge, queued
    commands never ran. The screen as shown decides once the stream cannot."""
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    pane = next(s["pane_id"] for s in tmux_repo.json("tmux", "status")["sessions"] if s["name"] == "s1")
    keys = ["send-keys", "-t", pane]
    subprocess.run(["tmux", "-L", tmux_repo.sock, *keys, "-l", "oops"], check=True)
    wait_for(lambda: pane_state(tmux_repo, "s1") != "idle", what="a half-typed line is not idle")
    subprocess.run(["tmux", "-L", tmux_repo.sock, *keys, *["BSpace"] * 4], check=True)
    wait_for(lambda: pane_state(tmux_repo, "s1") == "idle", what="idle again once erased")
    jq(boss, "tmux", "queue", "s1", "--", "after-erase")
    boss.ok("send", "hi", "--to", "@worker1")
    nudge = "New message from @boss — run `thrum inbox` (reads and marks them read)"
    wait_for(lambda: {nudge, "after-erase"} <= set(log_lines(tmux_repo, "a")), what="the nudge and the command",
             last=lambda: log_lines(tmux_repo, "a"))  # fmt: skip
    assert "oops" not in "".join(log_lines(tmux_repo, "a"))


def test_the_sender_is_never_nudged_about_its_own_broadcast(tmux_repo, boss):
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    start_session(tmux_repo, "s2", "worker2", "fake_b")
    assert tmux_repo.run("tmux", "send", "s1", "run send everyone listen --broadcast").code == 0
    wait_for(lambda: nudges(tmux_repo, "b"), what="worker2's nudge")
    time.sleep(0.8)
    assert nudges(tmux_repo, "a") == []
    assert nudges(tmux_repo, "b") == [
        "New message from @worker1 — run `thrum inbox` (reads and marks them read)"
    ]


def test_no_nudge_while_a_human_types_in_an_attached_client(tmux_repo, boss):
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    outer = outer_terminal(tmux_repo, "human", f"tmux -L {tmux_repo.sock} attach-session -t =s1")
    try:
        wait_for(
            lambda: subprocess.run(
                ["tmux", "-L", tmux_repo.sock, "list-clients"], capture_output=True, text=True
            ).stdout.strip(),
            what="an attached client",
        )
        subprocess.run(["tmux", "-L", outer, "send-keys", "-t", "=human:", "-l", "half a thou"], check=True)
        boss.ok("send", "interrupting?", "--to", "@worker1")
        time.sleep(0.8)
        assert nudges(tmux_repo, "a") == [], "nudged while a human was typing"
        # The human finishes the line; after the typing window the nudge follows.
        subprocess.run(["tmux", "-L", outer, "send-keys", "-t", "=human:", "ght", "Enter"], check=True)
        wait_for(lambda: nudges(tmux_repo, "a"), what="the nudge after typing stopped")
        assert "half a thought" in log_lines(tmux_repo, "a")
    finally:
        subprocess.run(["tmux", "-L", outer, "kill-server"], capture_output=True)


def test_the_backstop_renudges_mail_left_unread_and_stops_once_read(make_tmux_repo):
    repo = make_tmux_repo(THRUM_TMUX__NUDGE_BACKSTOP_SECONDS="1.5")
    boss = repo.agent("boss", "lead", worktree=False)
    start_session(repo, "s1", "worker1", "fake_a")
    boss.ok("send", "ping", "--to", "@worker1")
    wait_for(lambda: len(nudges(repo, "a")) >= 2, timeout=20, what="a backstop re-nudge")
    worker = repo.agent("worker1", "worker", worktree=False)  # the same identity, from a shell
    assert worker.run("inbox").code == 0  # reading it ...
    count = len(nudges(repo, "a"))
    time.sleep(3.5)
    assert len(nudges(repo, "a")) == count  # ... ends the re-nudging


# -- the command queue --


def test_queue_wait_prints_the_output(tmux_repo, boss):
    r = tmux_repo.run(
        "tmux",
        "create",
        "sh",
        "--cwd",
        str(tmux_repo.path),
        "--name",
        "shelly",
        "--role",
        "worker",
        "--runtime",
        "shell",
    )
    assert r.code == 0, r.err
    wait_for(lambda: pane_state(tmux_repo, "sh") == "idle", what="shell idle")
    r = tmux_repo.run("tmux", "queue", "sh", "--wait", "--timeout", "20", "--", "echo", "hello queue")
    assert r.code == 0, r.err
    assert "hello queue" in r.out
    status = tmux_repo.run("tmux", "queue-status", "sh", "--json").json["commands"]
    assert [c["status"] for c in status] == ["done"]


def test_queued_commands_run_in_order_and_report_to_the_requester(tmux_repo, boss):
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    # Long enough that both are queued while it is busy, even on a loaded machine.
    assert tmux_repo.run("tmux", "send", "s1", "busy 4").code == 0
    wait_for(lambda: pane_state(tmux_repo, "s1") == "working", what="working")
    first = jq(boss, "tmux", "queue", "s1", "--", "first task")["command"]
    second = jq(boss, "tmux", "queue", "s1", "--", "second task")["command"]
    assert first["status"] == "queued" and second["status"] in ("queued", "running")
    wait_for(
        lambda: (
            [c["status"] for c in boss.json("tmux", "queue-status", "s1")["commands"]] == ["done", "done"]
        ),
        timeout=30,
        what="both commands done",
    )
    lines = log_lines(tmux_repo, "a")
    assert lines[lines.index("busy 4") :][1:3] == ["first task", "second task"]
    inbox = boss.json("inbox")["messages"]
    reports = [m for m in inbox if m["agent_id"] == "system"]
    assert len(reports) == 2
    assert any(
        first["command_id"] in m["body"]["content"] and "ok: first task" in m["body"]["content"]
        for m in reports
    )
    assert not (tmux_repo.logs / "a.log.typeahead").exists()


def test_a_nudge_and_a_queued_command_waiting_together_are_typed_as_two_inputs(tmux_repo, boss):
    """Walk bug 1: mail and a queued command both waiting for the pane to go idle were typed at
    once, one line of both (`...marks them read)queued-cmd-two`) and then an empty Enter. Each is
    typed on its own, submitted, before the other."""
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    assert tmux_repo.run("tmux", "send", "s1", "busy 3").code == 0
    wait_for(lambda: pane_state(tmux_repo, "s1") == "working", what="working")
    boss.ok("send", "race msg", "--to", "@worker1")
    jq(boss, "tmux", "queue", "s1", "--", "queued-cmd-two")
    nudge = "New message from @boss — run `thrum inbox` (reads and marks them read)"
    wait_for(lambda: {nudge, "queued-cmd-two"} <= set(log_lines(tmux_repo, "a")), what="both inputs",
             timeout=30, last=lambda: log_lines(tmux_repo, "a"))  # fmt: skip
    time.sleep(1.0)  # an Enter left over would arrive as one more (empty) line
    lines = log_lines(tmux_repo, "a")
    after = lines[lines.index("busy 3") + 1 :]
    assert sorted(after) == sorted([nudge, "queued-cmd-two"]), lines


def test_cancel_a_queued_and_a_running_command(tmux_repo, boss):
    r = tmux_repo.run(
        "tmux", "create", "sh", "--cwd", str(tmux_repo.path), "--no-agent", "--runtime", "shell"
    )
    assert r.code == 0, r.err
    wait_for(lambda: pane_state(tmux_repo, "sh") == "idle", what="shell idle")
    running = jq(boss, "tmux", "queue", "sh", "--", "echo partial-output; sleep 5; echo never")["command"]
    queued = jq(boss, "tmux", "queue", "sh", "--", "echo should-not-run")["command"]
    wait_for(
        lambda: "partial-output" in (boss.json("tmux", "queue-status", "sh")["commands"][-1]["output"] or ""),
        what="partial output",
    )
    q = boss.json("tmux", "cancel", queued["command_id"])["command"]
    assert q["status"] == "cancelled" and q["output"] == ""
    c = boss.json("tmux", "cancel", running["command_id"])["command"]
    assert c["status"] == "cancelled" and "partial-output" in c["output"] and "never" not in c["output"]


def test_a_command_that_never_returns_times_out(tmux_repo, boss):
    r = tmux_repo.run(
        "tmux", "create", "sh", "--cwd", str(tmux_repo.path), "--no-agent", "--runtime", "shell"
    )
    assert r.code == 0
    wait_for(lambda: pane_state(tmux_repo, "sh") == "idle", what="shell idle")
    r = tmux_repo.run("tmux", "queue", "sh", "--wait", "--timeout", "1.5", "--json", "--", "sleep 30")
    assert r.code == 1
    assert r.json["command"]["status"] == "timeout"
    assert r.err.startswith("Error: timeout in ") and r.err.count("\n") == 1, r  # walk C, C2


def test_after_an_engine_restart_running_is_interrupted_and_queued_resume(tmux_repo, boss):
    r = tmux_repo.run(
        "tmux", "create", "sh", "--cwd", str(tmux_repo.path), "--no-agent", "--runtime", "shell"
    )
    assert r.code == 0
    wait_for(lambda: pane_state(tmux_repo, "sh") == "idle", what="shell idle")
    # Long enough that the restart (seconds on a loaded machine) comes while it runs: done first, it
    # was "done", not "interrupted" (the suite failed so once under load).
    slow = jq(boss, "tmux", "queue", "sh", "--", "sleep 8; echo slow-done")["command"]
    later = jq(boss, "tmux", "queue", "sh", "--", "echo after-restart")["command"]
    wait_for(
        lambda: boss.json("tmux", "queue-status", "sh")["commands"][-1]["status"] == "running",
        what="the slow one running",
    )
    assert tmux_repo.run("daemon", "restart").code == 0
    wait_for(
        lambda: (
            {c["command_id"]: c["status"] for c in boss.json("tmux", "queue-status", "sh")["commands"]}
            == {slow["command_id"]: "interrupted", later["command_id"]: "done"}
        ),
        timeout=30,
        what="interrupted + resumed",
    )
    reports = [m["body"]["content"] for m in boss.json("inbox")["messages"] if m["agent_id"] == "system"]
    assert any(slow["command_id"] in b and "interrupted" in b for b in reports)


def test_queued_text_reaches_the_runtime_literally(tmux_repo, boss, tmp_path):
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    nasty = f"echo $(touch {tmp_path}/pwned) `id` ; rm -rf x; 'quote' \"dq\" trailing;"
    r = boss.run("tmux", "queue", "s1", "--wait", "--timeout", "20", "--", nasty)
    assert r.code == 0, r.err
    assert nasty in log_lines(tmux_repo, "a")
    assert not (tmp_path / "pwned").exists()


def test_queue_bad_input(tmux_repo, boss):
    r = boss.run("tmux", "queue", "nosuch", "--", "ls")
    assert r.code == 1 and "no session nosuch" in r.err
    r = boss.run("tmux", "queue", "bad.name", "--", "ls")
    assert r.code == 1 and "invalid session name" in r.err
    r = boss.run("tmux", "cancel", "cmd_nope")
    assert r.code == 1 and "invalid command id" in r.err


# -- queue results with substance (walk bug 18) --


def shell_session(repo, name: str = "sh") -> None:
    r = repo.run("tmux", "create", name, "--cwd", str(repo.path), "--no-agent", "--runtime", "shell")
    assert r.code == 0, r.err
    wait_for(lambda: pane_state(repo, name) == "idle", what="shell idle")


def test_a_shell_command_reports_its_exit_status_and_duration(tmux_repo, boss):
    shell_session(tmux_repo)
    r = tmux_repo.run(
        "tmux", "queue", "sh", "--wait", "--timeout", "20", "--", "echo out-$((6*7)); sleep 0.3; false"
    )
    assert r.code == 1, r.out  # a failing command is not "done": its outcome is the error line
    assert "out-42" in r.out and r.err.startswith("Error: failed (exit 1) in ") and r.err.count("\n") == 1, r
    assert "THRUM-" not in r.out and "$ " not in r.out.splitlines()[-2:], r.out  # no marker, no prompt
    c = tmux_repo.run("tmux", "queue", "sh", "--wait", "--json", "--", "echo fine # a comment, kept").json[
        "command"
    ]
    assert (c["status"], c["exit_code"], c["kind"], c["output"]) == ("done", 0, "command", "fine")
    assert c["result"].startswith("completed (exit 0) in ") and c["duration_seconds"] >= 0
    rows = boss.json("tmux", "queue-status", "sh")["commands"]
    assert [(x["status"], x["exit_code"]) for x in rows] == [("done", 0), ("failed", 1)]
    assert rows[1]["duration_seconds"] >= 0.3
    listing = tmux_repo.run("tmux", "queue-status", "sh").out
    assert "failed (exit 1)" in listing and "completed (exit 0)" in listing
    # The command runs in the pane's own shell: a `cd` stays, as it would typed by hand.
    tmux_repo.ok("tmux", "queue", "sh", "--wait", "--", "cd /")
    assert (
        tmux_repo.run("tmux", "queue", "sh", "--wait", "--json", "--", "pwd").json["command"]["output"] == "/"
    )


def test_a_prompt_queued_to_an_llm_runtime_is_labelled_so(tmux_repo, boss):
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    c = jq(boss, "tmux", "queue", "s1", "--wait", "--timeout", "20", "--", "summarise the diff")["command"]
    assert c["kind"] == "prompt" and c["exit_code"] is None
    # CLI.md: a finished queued command says `completed` (contract check, session 22)
    assert c["result"] == "completed: prompt typed to fake_a" and c["status"] == "done"
    assert "summarise the diff" in log_lines(tmux_repo, "a")  # typed as is, not wrapped


def test_an_engine_stopped_between_a_nudges_text_and_its_enter_still_sends_the_enter(make_tmux_repo):
    """Walk (session 18): `thrum daemon stop` two seconds after a send landed between the nudge's
    text and its Enter; the text stayed in the pane and the next input was appended to it
    (`...marks them read)echo AFTER`). Text and Enter are one uninterruptible step now."""
    repo = make_tmux_repo(THRUM_TMUX__ENTER_DELAY_SECONDS="2")
    boss = repo.agent("boss", "lead", worktree=False)
    start_session(repo, "s1", "worker1", "fake_a")
    boss.ok("send", "stop me", "--to", "@worker1")
    typed = "New message from @boss"
    wait_for(
        lambda: (
            typed
            in subprocess.run(
                ["tmux", "-L", repo.sock, "capture-pane", "-p", "-t", "=s1:"], capture_output=True, text=True
            ).stdout
        ),
        what="the nudge's text in the pane, its Enter still to come",
    )
    assert repo.run("daemon", "stop").code == 0
    nudge = "New message from @boss — run `thrum inbox` (reads and marks them read)"
    wait_for(
        lambda: nudge in log_lines(repo, "a"), what="the nudge submitted", last=lambda: log_lines(repo, "a")
    )
    assert repo.run("tmux", "send", "s1", "after the stop").code == 0  # starts an engine again
    wait_for(
        lambda: "after the stop" in log_lines(repo, "a"),
        what="a line of its own",
        last=lambda: log_lines(repo, "a"),
    )


def test_a_reminder_scheduled_for_yourself_is_nudged_at_its_time_a_note_to_yourself_never(tmux_repo, boss):
    """Issue 16's self-reminder reached no path (every path skipped mail whose author is its
    recipient): it sat in the inbox until the agent happened to look."""
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    assert tmux_repo.run("tmux", "send", "s1", "run send remember the migration --to @me").code == 0
    time.sleep(0.8)
    assert nudges(tmux_repo, "a") == []
    assert tmux_repo.run("tmux", "send", "s1", "run schedule create --to @me --in 1s stretch").code == 0
    wait_for(lambda: nudges(tmux_repo, "a"), what="the reminder's nudge")
    assert nudges(tmux_repo, "a") == [
        "New message from @worker1 — run `thrum inbox` (reads and marks them read)"
    ]

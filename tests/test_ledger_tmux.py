"""The delivery ledger through a nudge (issue 16): a real tmux server on a private socket and the fake
agent (tests/fake_agent.py), from stored to acked, and a dialog reported as not yet delivered."""

from __future__ import annotations

import re

from conftest import pane_state, start_session, wait_for
from test_nudges_queue import make_tmux_repo, nudges, tmux_repo  # noqa: F401  (fixtures)


def test_the_ledger_through_a_nudge_from_stored_to_acked(tmux_repo):  # noqa: F811
    boss = tmux_repo.agent("boss", "lead", worktree=False)
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    r = boss.ok("send", "please check the auth bug", "--to", "@worker1", "--ask")
    assert r.out.startswith("✓ Message sent: msg_") and "not yet delivered" not in r.out
    mid = re.search(r"msg_\w+", r.out).group(0)

    def record() -> dict:
        return boss.json("sent", "show", mid)["message"]["deliveries"][0]

    wait_for(lambda: nudges(tmux_repo, "a"), what="the nudge")
    wait_for(lambda: record()["state"] == "notified", what="notified")
    assert record()["via"] == "nudge" and record()["delivered"] is True
    assert tmux_repo.run("tmux", "send", "s1", "run inbox").code == 0
    wait_for(lambda: record()["state"] == "read", what="read in the pane")
    assert tmux_repo.run("tmux", "send", "s1", f"run ack {mid} --note 'on it'").code == 0
    wait_for(lambda: record()["state"] == "acked", what="acked in the pane")
    d = record()
    assert [s["state"] for s in d["steps"]] == ["stored", "notified", "seen", "read", "acked"]
    assert d["steps"][1]["via"] == "nudge" and d["ack_note"] == "on it"
    out = boss.ok("sent", "show", mid).out
    assert "via nudge" in out and "acked" in out
    assert boss.json("asks", "--mine")["asks"] == []


def test_a_dialog_in_the_pane_is_reported_not_yet_delivered(tmux_repo):  # noqa: F811
    boss = tmux_repo.agent("boss", "lead", worktree=False)
    start_session(tmux_repo, "s1", "worker1", "fake_a")
    assert tmux_repo.run("tmux", "send", "s1", "dialog").code == 0
    wait_for(lambda: pane_state(tmux_repo, "s1") == "blocked", what="blocked")
    r = boss.ok("send", "are you stuck?", "--to", "@worker1")
    assert r.out.startswith("✓ Message sent: msg_")
    assert "a dialog is open in its pane" in r.out
    mid = re.search(r"msg_\w+", r.out).group(0)
    listed = boss.json("sent", "--undelivered")["messages"]
    assert [m["message_id"] for m in listed] == [mid]
    assert listed[0]["deliveries"][0]["undelivered_reason"].startswith("a dialog")
    assert tmux_repo.run("tmux", "send", "s1", "1").code == 0  # the dialog closes: the nudge goes
    wait_for(lambda: boss.json("sent", "--undelivered")["messages"] == [], what="delivered after the dialog")

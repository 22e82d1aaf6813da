"""Delivery picks the least intrusive path: a recipient with a live channel (or hooks that drain its mail) is
not typed at in tmux; without one the typed nudge is still the last resort. Real tmux, the fake agent."""

from __future__ import annotations

import json
import subprocess
import time

import anyio

from conftest import THRUM, wait_for
from test_mcp import ChannelEvent, channel_open, engine, mcp_client, until
from test_nudges_queue import make_tmux_repo, nudges, start_agent, tmux_repo  # noqa: F401  (fixtures)
from thrum_engine.delivery_paths import CHANNEL_ACK_SECONDS, HOOK_SETTLE_SECONDS


def delivery(repo, boss, mid: str) -> dict:
    return boss.json("sent", "show", mid)["message"]["deliveries"][0]


async def test_a_recipient_with_a_live_channel_is_not_typed_at(tmux_repo):  # noqa: F811
    repo = tmux_repo
    boss = repo.agent("boss", "lead", worktree=False)
    start_agent(repo, "s1", "worker1", "a")
    env = {**repo.env, "THRUM_NAME": "worker1"}
    events: list[ChannelEvent] = []
    async with mcp_client(repo.path, env, "--channel", "on", client="claude-code", events=events):
        await channel_open(repo, "worker1")
        sent = boss.json("send", "please look at the auth bug", "--to", "@worker1")
        await until(lambda: events, what="the channel push")
        # Past the time the nudger gives a channel to acknowledge: still nothing typed.
        await anyio.sleep(CHANNEL_ACK_SECONDS + 1.5)
        if nudges(repo, "a"):
            print("LOG", (repo.logs / "a.log").read_text())
            print("DEL", delivery(repo, boss, sent["message_id"]))
            print(repo.run("daemon", "logs", "--lines", "60").out)
        assert nudges(repo, "a") == []
        d = delivery(repo, boss, sent["message_id"])
        assert (d["state"], d["via"]) == ("notified", "channel")
    # Without the channel, the typed nudge is the last resort again.
    sent = boss.json("send", "still there?", "--to", "@worker1")
    wait_for(lambda: nudges(repo, "a"), what="the fallback nudge")
    assert nudges(repo, "a") == ["New message from @boss — run `thrum inbox` (reads and marks them read)"]
    wait_for(lambda: delivery(repo, boss, sent["message_id"])["via"] == "nudge", what="via nudge")


def fire_hook(repo, agent: str, event: str) -> str:
    """What a hook installed for Claude Code runs: `thrum hook EVENT` with Claude's JSON on stdin,
    in the agent's directory, as the agent. Returns what it answers Claude."""
    payload = {"session_id": "s", "cwd": str(repo.path), "hook_event_name": event, "stop_hook_active": False}
    r = subprocess.run(
        [*THRUM, "hook", event, "--runtime", "claude"],
        cwd=repo.path,
        env={**repo.env, "THRUM_NAME": agent},
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_hooks_that_drain_mail_spare_the_pane_and_the_nudge_stays_the_last_resort(tmux_repo):  # noqa: F811
    repo = tmux_repo
    boss = repo.agent("boss", "lead", worktree=False)
    start_agent(repo, "s1", "worker1", "a")
    fire_hook(repo, "worker1", "session-start")
    # The stop hook shows the mail (blocks with it as the reason) within the settle time: nothing is typed.
    sent = boss.json("send", "drain me", "--to", "@worker1")
    answer = json.loads(fire_hook(repo, "worker1", "stop"))
    assert answer["decision"] == "block" and sent["message_id"] in answer["reason"]
    time.sleep(HOOK_SETTLE_SECONDS + 1.5)
    assert nudges(repo, "a") == []
    d = delivery(repo, boss, sent["message_id"])
    assert (d["state"], d["via"]) == ("notified", "hook")
    # Hooks live but this message never shown by one: typed after the settle time.
    sent = boss.json("send", "nobody drained this", "--to", "@worker1")
    wait_for(lambda: nudges(repo, "a"), what="the last-resort nudge")
    # recorded once the pane has taken the typed line (tmux manager `_submitted`), a moment after
    wait_for(lambda: delivery(repo, boss, sent["message_id"])["via"] == "nudge", what="notified via nudge")
    paths = engine(repo)
    try:
        view = paths.call("delivery.paths", {"agent": "worker1"})
    finally:
        paths.close()
    me = view["agents"][0]
    assert me["best"] == "hook" and me["hook"]["event"] == "stop" and me["pane"] == "s1"
    assert view["delivered"]["hook"] == 1


def test_the_console_mark_names_the_path_until_the_message_is_seen():
    from thrum_tui.widgets.conversation import delivery_mark

    notified = {"state": "notified", "via": "channel"}
    assert delivery_mark({"deliveries": [notified]}) == "✓ channel"
    assert (
        delivery_mark({"deliveries": [notified, {"state": "notified", "via": "nudge"}]}) == "✓ channel/nudge"
    )
    assert delivery_mark({"deliveries": [notified, {"state": "stored", "via": None}]}) == "✓ channel"
    assert delivery_mark({"deliveries": [{"state": "stored"}]}) == "✓"
    assert delivery_mark({"deliveries": [{"state": "read", "via": "channel"}]}) == "✓✓"

"""Delivery picks the least intrusive path: a recipient with a live channel (or hooks that drain its mail) is
not typed at in tmux; without one the typed nudge is still the last resort. Real tmux, the fake agent."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import anyio

from conftest import wait_for
from test_mcp import ChannelEvent, engine, mcp_client, until
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
    async with mcp_client(repo.path, env, client="claude-code", events=events):
        paths = engine(repo)
        try:
            await until(
                lambda: paths.call("delivery.paths", {"agent": "worker1"})["agents"][0]["best"] == "channel",
                what="worker1's channel",
            )
        finally:
            paths.close()
        sent = boss.json("send", "please look at the auth bug", "--to", "@worker1")
        await until(lambda: events, what="the channel push")
        # Past the time the nudger gives a channel to acknowledge: still nothing typed.
        await anyio.sleep(CHANNEL_ACK_SECONDS + 1.5)
        assert nudges(repo, "a") == []
        d = delivery(repo, boss, sent["message_id"])
        assert (d["state"], d["via"]) == ("notified", "channel")
    # Without the channel, the typed nudge is the last resort again.
    sent = boss.json("send", "still there?", "--to", "@worker1")
    wait_for(lambda: nudges(repo, "a"), what="the fallback nudge")
    assert nudges(repo, "a") == ["New message from @boss — run `thrum inbox` (reads and marks them read)"]
    wait_for(lambda: delivery(repo, boss, sent["message_id"])["via"] == "nudge", what="via nudge")


HOOK = """
import json, sys
from thrum_engine.layout import Layout
from thrum_engine.rpc.client import Client
c = Client(Layout.discover(".").socket_path, 10).connect()
print(json.dumps(c.call("delivery.hook", json.loads(sys.argv[1]))))
"""


def fire_hook(repo, agent: str, event: str, delivered: list[str] = ()) -> dict:  # type: ignore[assignment]
    """What an installed hook does: tell the engine it fired (from the agent's cwd, as the agent)."""
    params = {"caller": agent, "event": event, "runtime": "claude", "delivered": list(delivered)}
    r = subprocess.run(
        [sys.executable, "-c", HOOK, json.dumps(params)],
        cwd=repo.path,
        env=repo.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_hooks_that_drain_mail_spare_the_pane_and_the_nudge_stays_the_last_resort(tmux_repo):  # noqa: F811
    repo = tmux_repo
    boss = repo.agent("boss", "lead", worktree=False)
    start_agent(repo, "s1", "worker1", "a")
    assert fire_hook(repo, "worker1", "SessionStart")["notified"] == 0
    # The hook shows the mail (as a stop hook would) within the settle time: nothing is typed.
    sent = boss.json("send", "drain me", "--to", "@worker1")
    assert fire_hook(repo, "worker1", "Stop", [sent["message_id"]])["notified"] == 1
    time.sleep(HOOK_SETTLE_SECONDS + 1.5)
    assert nudges(repo, "a") == []
    d = delivery(repo, boss, sent["message_id"])
    assert (d["state"], d["via"]) == ("notified", "hook")
    # Hooks live but this message never shown by one: typed after the settle time.
    sent = boss.json("send", "nobody drained this", "--to", "@worker1")
    wait_for(lambda: nudges(repo, "a"), what="the last-resort nudge")
    assert delivery(repo, boss, sent["message_id"])["via"] == "nudge"
    paths = engine(repo)
    try:
        view = paths.call("delivery.paths", {"agent": "worker1"})
    finally:
        paths.close()
    me = view["agents"][0]
    assert me["best"] == "hook" and me["hook"]["event"] == "Stop" and me["pane"] == "s1"
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

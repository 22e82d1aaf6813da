"""`events.wait`, the change feed an attached console long-polls: it answers as soon as something
is applied after the cursor, and says `reset` when the cursor no longer fits (a restarted daemon)."""

from __future__ import annotations

import threading
import time

from thrum_engine.rpc.client import Client


def call(repo, method: str, params: dict, timeout: float = 60) -> dict:
    client = Client(str(repo.var / "thrum.sock"), timeout=timeout)
    try:
        return client.call(method, params)
    finally:
        client.close()


def test_a_send_wakes_a_waiting_long_poll_with_what_changed(pair):
    repo, alice, _bob = pair
    cursor = call(repo, "events.wait", {})["cursor"]
    got: dict = {}
    waiter = threading.Thread(
        target=lambda: got.update(call(repo, "events.wait", {"after": cursor, "timeout": 20}))
    )
    waiter.start()
    time.sleep(0.3)  # the poll is parked in the engine (nothing applied yet)
    assert waiter.is_alive()
    alice.ok("send", "wake up", "--to", "@bob")
    waiter.join(15)
    assert not waiter.is_alive(), "the long poll did not return on a send"
    creates = [c for c in got["changes"] if c["type"] == "message.create"]
    assert [(c["author"], c["data"]["recipients"], c["data"]["content"]) for c in creates] == [
        ("alice", ["bob"], "wake up")
    ]
    assert got["cursor"] > cursor and not got["reset"]
    # Nothing new: an empty answer after the timeout, same cursor.
    again = call(repo, "events.wait", {"after": got["cursor"], "timeout": 0.2})
    assert again == {"changes": [], "cursor": got["cursor"], "reset": False}


def test_a_cursor_from_before_a_restart_is_reset(pair):
    repo, alice, _bob = pair
    call(repo, "events.wait", {})
    alice.ok("send", "one", "--to", "@bob")
    cursor = call(repo, "events.wait", {"after": 0, "timeout": 0})["cursor"]
    assert cursor >= 1
    repo.ok("daemon", "restart")
    after = call(repo, "events.wait", {"after": cursor + 100, "timeout": 0})
    assert after["reset"] is True


def test_bad_params_are_refused(pair):
    repo, _alice, _bob = pair
    from thrum_engine.rpc.client import RpcError

    for params in ({"after": -1}, {"timeout": 3600}, {"after": "x"}, {"nope": 1}):
        try:
            call(repo, "events.wait", params)
        except RpcError as exc:
            assert exc.message
        else:
            raise AssertionError(f"accepted {params}")

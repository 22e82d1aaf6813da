"""CLI.md's Conventions as a user meets them: the greppable success lines, env defaults, read
filters that refuse unknown names, hints that `--json` carries and THRUM_NO_HINTS drops."""

from __future__ import annotations

import re

from conftest import assert_error


def test_a_send_to_an_offline_agent_still_says_message_sent_and_the_hint_says_not_yet_delivered(pair):
    repo, alice, bob = pair
    r = alice.ok("send", "hello", "--to", "@bob")  # bob has no live path: stored, not yet shown
    first, hint = r.out.splitlines()
    assert re.fullmatch(r"✓ Message sent: msg_[0-9A-Za-z]{26} → @bob", first)
    assert hint.startswith("  ⚠ not yet delivered to @bob: offline")
    mid = first.split()[3]
    r = bob.ok("reply", mid, "got it")
    first, hint = r.out.splitlines()
    assert re.fullmatch(r"✓ Reply sent: msg_\w+ → @alice \(thread thr_\w+\)", first)
    assert hint.startswith("  ⚠ not yet delivered to @alice: offline")

"""Review as traffic: an agent's "done" message tagged `--ref review:request` is its request for
review (the queue shows it with the message as its note), and every request, verdict and merge is
in the review history the feed and the agent's conversation show. Real repos, worktrees, commits
and the engine behind the CLI."""

from __future__ import annotations

import test_review_cli
from conftest import assert_error
from test_review_cli import approve, commit, settled, wt_path

work = test_review_cli.work  # the fixture: alice two commits ahead, ada the operator


def test_a_done_message_tagged_for_review_puts_the_work_in_the_queue(work):
    repo, alice, ada, _path = work
    sent = alice.json("send", "Done: JWT middleware, tests green.", "--to", "@ada", "--ref", "review:request")
    assert sent["review_id"].startswith("rev_") and sent["recipients"] == ["ada"]
    listed = ada.json("review", "list")
    (e,) = listed["reviews"]
    assert e["agent"] == "alice" and e["status"] == "requested" and e["needs_you"]
    assert e["note"] == "Done: JWT middleware, tests green." and e["review_id"] == sent["review_id"]
    assert listed["needs_you"] == 1
    # The message itself reached ada as any message does, with its ref.
    (m,) = [m for m in ada.json("inbox")["messages"] if m["message_id"] == sent["message_id"]]
    assert {"type": "review", "value": "request"} in m["refs"]
    # The history names the message that asked.
    (h,) = ada.json("review", "history")["events"]
    assert h["kind"] == "requested" and h["message_id"] == sent["message_id"] and h["author"] == "alice"
    human = alice.ok("send", "Also the docs.", "--to", "@ada", "--ref", "review:request").out
    assert f"✓ Review requested: {sent['review_id']}" in human  # the same open review, asked again
    (e,) = ada.json("review", "list")["reviews"]
    assert e["note"] == "Also the docs."
    settled(repo)


def test_a_tagged_message_with_nothing_to_review_is_refused_and_not_sent(repo):
    assert repo.run("init").code == 0
    assert repo.run("worktree", "create", "bob", "--name", "bob", "--role", "implementer").code == 0
    from conftest import Agent

    bob = Agent("bob", "implementer", wt_path(repo, "bob"), dict(repo.env))
    ada = repo.agent("ada", "operator", worktree=False)
    assert_error(bob.run("send", "done", "--to", "@ada", "--ref", "review:request"), "nothing to review")
    assert ada.json("inbox")["messages"] == []  # nothing stored
    assert repo.json("review", "list")["reviews"] == []
    # The operator's own checkout has no branch to review: refused the same way.
    assert_error(ada.run("send", "done", "--to", "@bob", "--ref", "review:request"), "main checkout")
    # Untagged, the same words are just a message.
    assert bob.ok("send", "done", "--to", "@ada").code == 0


def test_history_has_every_request_verdict_and_merge_in_order(work):
    repo, alice, ada, path = work
    alice.ok("review", "request", "--note", "first pass")
    ada.ok("review", "submit", "alice", "--request-changes", "--summary", "return 2")
    settled(repo)
    commit(repo, path, {"src/app.py": "def main():\n    return 2\n"}, "return 2")
    alice.ok("send", "fixed", "--to", "@ada", "--ref", "review:request")
    approve(repo, ada, "--summary", "lgtm")
    merged = ada.json("review", "merge", "alice", "--squash")
    events = ada.json("review", "history", "--agent", "alice")["events"]
    assert [e["kind"] for e in events] == [
        "merged",
        "approved",
        "requested",
        "changes_requested",
        "requested",
    ]
    assert events[0]["strategy"] == "squash" and events[0]["merged_commit"] == merged["merged_commit"]
    assert events[1]["summary"] == "lgtm" and events[3]["summary"] == "return 2"
    assert events[2]["note"] == "fixed" and events[4]["note"] == "first pass"
    assert {e["author"] for e in events} == {"ada", "alice"}
    # The rounds of `review show` are still the verdicts alone.
    shown = ada.json("review", "show", merged["review_id"])
    assert [r["verdict"] for r in shown["rounds"]] == ["request_changes", "approve"]
    assert_error(ada.run("review", "history", "--limit", "many"), "--limit")
    assert len(ada.json("review", "history", "--limit", "2")["events"]) == 2
    human = ada.ok("review", "history").out
    assert "@ada merged @alice's feature/alice into main (squash" in human
    assert "@ada requested changes on @alice's feature/alice: return 2" in human
    # And the history survives a rebuild from the journal.
    repo.stop()
    assert repo.run("doctor", "rebuild").code == 0
    assert ada.json("review", "history", "--agent", "alice")["events"] == events

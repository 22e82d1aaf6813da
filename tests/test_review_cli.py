"""Review and merge from a shell: an agent asks for review and reads what the reviewer said, the
operator approves and merges; every answer also as `--json`. Real repos, worktrees and commits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import (
    RAW_CALL,
    Agent,
    assert_error,
    commit,
    pane_state,
    raw_call,
    run_python,
    wait_for,
    worktree_agent,
    wt_path,
)


@pytest.fixture
def work(repo):
    """alice in a worktree Thrum made, two commits ahead of main; ada the operator in the main checkout."""
    assert repo.run("init").code == 0
    alice = worktree_agent(repo, "alice", "implementer")
    path = alice.cwd
    commit(repo, path, {"src/app.py": "def main():\n    return 1\n\n\nprint(main())\n"}, "add app")
    commit(repo, path, {"README.md": "hello\nworld\n"}, "readme")
    ada = repo.agent("ada", "operator", worktree=False)
    settled(repo)
    return repo, alice, ada, path


def settled(repo) -> None:
    """alice's shell pane back at the prompt (a review message nudges it): an agent still working
    is a merge problem of its own."""
    wait_for(lambda: pane_state(repo, "alice") == "idle", what="alice's pane at the prompt")


def approve(repo, ada, *flags: str) -> None:
    ada.ok("review", "submit", "alice", "--approve", *flags)
    # The verdict nudges alice's pane: idle only counts once that nudge went in (a pane seen idle
    # just before the nudger typed was "still working" at the merge, under load).
    wait_for(lambda: not ada.json("sent", "--undelivered")["messages"], what="the verdict's nudge typed")
    settled(repo)


def test_an_agent_asks_for_review_and_the_queue_shows_it(work):
    _repo, alice, ada, _path = work
    assert_error(alice.run("review", "request", "--agent", "nobody"), "nobody")
    r = alice.json("review", "request", "--note", "JWT middleware done")
    assert r["agent"] == "alice" and r["branch"] == "feature/alice" and r["target"] == "main"
    assert r["review_id"].startswith("rev_")
    listed = ada.json("review", "list")
    assert listed["needs_you"] == 1
    (e,) = listed["reviews"]
    assert {k: e[k] for k in ("agent", "status", "ahead", "behind", "files", "added", "removed", "note")} == {
        "agent": "alice",
        "status": "requested",
        "ahead": 2,
        "behind": 0,
        "files": 2,
        "added": 6,
        "removed": 0,
        "note": "JWT middleware done",
    }
    assert e["request_age"] is not None and e["needs_you"] and e["changed_since_review"] is None
    human = ada.ok("review", "list").out
    assert "@alice" in human and "↑2 ↓0" in human and "+6 −0" in human


def test_nothing_to_review_is_a_clear_error(repo):
    assert repo.run("init").code == 0
    assert repo.run("worktree", "create", "bob", "--name", "bob", "--role", "implementer").code == 0
    bob = Agent("bob", "implementer", wt_path(repo, "bob"), dict(repo.env))
    assert_error(bob.run("review", "request"), "nothing to review")
    assert repo.json("review", "list")["reviews"] == []


def test_request_changes_reaches_the_agent_who_reads_it_with_the_cli(work):
    repo, alice, ada, path = work
    alice.ok("review", "request")
    r = ada.json("review", "submit", "alice", "--request-changes", "--summary", "Return 2, and test it.")
    assert r["verdict"] == "request_changes" and r["message_id"].startswith("msg_")
    inbox = alice.json("inbox")
    (msg,) = [m for m in inbox["messages"] if m["message_id"] == r["message_id"]]
    assert {"type": "review", "value": r["review_id"]} in msg["refs"]
    assert msg["body"]["structured"]["verdict"] == "request_changes"
    assert "Return 2, and test it." in msg["body"]["content"]
    # the branch's commits are ahead of main, not on it (walk A, 13: read as merged already)
    assert "2 commit(s) ahead of main" in msg["body"]["content"], msg["body"]["content"]
    comments = alice.json("review", "comments")
    assert comments["review_id"] == r["review_id"] and comments["verdict"] == "request_changes"
    assert comments["changed_since_review"] is False and "pending" not in comments
    shown = alice.json("review", "show", r["review_id"])
    assert shown["review"]["status"] == "changes_requested"
    assert [c["subject"] for c in shown["commits"]] == ["readme", "add app"]
    # The agent answers in the message's thread: the review shows the reply.
    alice.ok("reply", r["message_id"], "Done, returning 2 now.")
    commit(repo, path, {"src/app.py": "def main():\n    return 2\n\n\nprint(main())\n"}, "return 2")
    shown = ada.json("review", "show", "--agent", "alice")
    assert [m["content"] for m in shown["replies"]] == ["Done, returning 2 now."]
    assert shown["changed_since_review"] is True
    (e,) = ada.json("review", "list")["reviews"]
    assert e["changed_since_review"] is True and e["needs_you"]


def test_merge_refuses_without_approval_then_merges_after_it(work):
    repo, alice, ada, _path = work
    alice.ok("review", "request")
    assert_error(ada.run("review", "merge", "alice"), "not approved", "--force")
    assert repo.git("rev-list", "--count", "main") == "1"  # nothing changed
    assert_error(alice.run("review", "merge", "alice"), "operator")
    approve(repo, ada)
    pre = ada.json("review", "preflight", "alice")
    assert pre["ok"], pre["problems"]
    assert pre["conflicts"] == [] and pre["ahead"] == 2
    r = ada.json("review", "merge", "alice")
    assert r["strategy"] == "merge" and r["target"] == "main"
    assert repo.git("rev-parse", "main") == r["merged_commit"]
    assert repo.git("log", "-1", "--format=%P", "main").count(" ") == 1  # a merge commit
    assert (repo.path / "src" / "app.py").exists()  # the main checkout has the work
    shown = ada.json("review", "show", r["review_id"])
    assert shown["review"]["status"] == "merged" and shown["review"]["merged_commit"] == r["merged_commit"]
    assert ada.json("review", "list")["reviews"] == []  # merged: nothing ahead
    # The agent is told (walk, session 21: nothing told it its work had landed).
    told = alice.json("message", "get", r["message_id"])["message"]
    assert (
        told["author"] == "ada"
        and told["to"] == ["@alice"]
        and told["body"]["content"].startswith("Merged: your feature/alice into main (merge, ")
    )


def test_squash_and_teardown_with_the_branch(work):
    repo, _alice, ada, path = work
    approve(repo, ada, "--summary", "lgtm")
    # alice's pane still runs: --teardown would kill it, which takes --force, as `worktree teardown`
    # does (walk, session 18: it was killed unasked), and the refusal changes nothing.
    before = repo.git("rev-parse", "main")
    assert_error(ada.run("review", "merge", "alice", "--squash", "--teardown"), "live pane", "--force")
    assert repo.git("rev-parse", "main") == before and path.exists()
    r = ada.json("review", "merge", "alice", "--squash", "--teardown", "--delete-branch", "--force")
    assert repo.git("log", "-1", "--format=%P", "main").count(" ") == 0  # one parent: squashed
    assert "add app" in repo.git("log", "-1", "--format=%B", "main")
    assert r["teardown"]["branch_deleted"] and r["teardown"]["agents_deleted"] == ["alice"]
    assert not path.exists()
    assert repo.git("branch", "--list", "feature/alice") == ""
    assert r["teardown"]["archive_ref"].startswith("refs/thrum/archive/alice/")


def test_rebase_fast_forwards_a_branch_that_is_behind(work):
    repo, _alice, ada, path = work
    commit(repo, repo.path, {"NOTES.md": "main moved\n"}, "main moves on")
    approve(repo, ada)
    pre = ada.json("review", "preflight", "alice", "--rebase")
    assert pre["behind"] == 1
    # Approval was of the branch as it was: rebasing changes nothing the reviewer read.
    r = ada.json("review", "merge", "alice", "--rebase")
    assert r["rebased"]
    assert repo.git("log", "--format=%s", "main").split("\n") == [
        "readme",
        "add app",
        "main moves on",
        "init",
    ]
    assert repo.git("rev-parse", "HEAD", cwd=path) == r["merged_commit"]


def test_a_conflict_is_reported_with_its_files_and_nothing_changes(work):
    repo, _alice, ada, path = work
    commit(repo, repo.path, {"README.md": "hello\nmain's line\n"}, "main edits the readme")
    before = repo.git("rev-parse", "main")
    approve(repo, ada)
    r = ada.run("review", "preflight", "alice", "--json")
    pre = r.json  # printed in full, and exit 1: not mergeable
    assert r.code == 1 and pre["conflicts"] == ["README.md"] and not pre["mergeable"]
    for flags in ((), ("--force",), ("--squash",), ("--rebase", "--force")):
        r = ada.run("review", "merge", "alice", *flags)
        assert_error(r, "conflict", "README.md")
    assert repo.git("rev-parse", "main") == before
    assert repo.git("status", "--porcelain") == ""
    assert repo.git("status", "--porcelain", cwd=path) == ""
    assert not (Path(repo.git("rev-parse", "--absolute-git-dir", cwd=path)) / "rebase-merge").exists()


def test_preflight_names_a_dirty_target_uncommitted_work_and_untracked_files(work):
    repo, _alice, ada, path = work
    approve(repo, ada)
    (repo.path / "README.md").write_text("edited in main\n")
    (path / "scratch.txt").write_text("not added\n")
    (path / "README.md").write_text("uncommitted\n")
    r = ada.run("review", "preflight", "alice", "--json")
    assert r.code == 1  # a dirty target: not mergeable
    pre = r.json
    codes = {p["code"]: p for p in pre["problems"]}
    assert codes["target_dirty"]["files"] == ["README.md"] and not codes["target_dirty"]["forceable"]
    assert codes["untracked"]["files"] == ["scratch.txt"] and codes["untracked"]["forceable"]
    assert codes["uncommitted"]["files"] == ["README.md"]
    assert "changed_since_approval" in codes  # the uncommitted edit changed what was approved
    # what the merge brings: the two commits, not the edit that stays behind (console walk, session 22)
    assert (pre["files"], pre["added"], pre["removed"]) == (2, 6, 0), pre  # worktree: +6 −1
    assert_error(ada.run("review", "merge", "alice", "--force"), "uncommitted change")
    r = ada.run("review", "preflight", "alice")
    human = r.out
    assert r.code == 1 and r.err == ""  # a verdict, not an error
    assert "✗ the main checkout (main) has 1 uncommitted change(s)" in human and "not mergeable" in human


def test_bad_input_is_one_error_line(work):
    _repo, alice, ada, _path = work
    assert_error(ada.run("review", "show", "rev_nope"), "invalid review id")
    assert_error(ada.run("review", "merge", "alice", "--squash", "--rebase"), "mutually exclusive")
    assert_error(ada.run("review", "merge", "alice", "--delete-branch"), "--teardown")
    assert_error(ada.run("review", "merge", "alice", "--keep-agent"), "--keep-agent needs --teardown")
    assert_error(ada.run("review", "submit", "alice"), "--approve or --request-changes")
    assert_error(ada.run("review", "show", "--agent", "ghost"), "ghost")
    assert_error(alice.run("review", "submit", "alice", "--approve"), "own work")


def test_reviews_survive_a_rebuild_from_the_journal(work):
    repo, alice, ada, _path = work
    alice.ok("review", "request", "--note", "please")
    ada.ok("review", "submit", "alice", "--request-changes", "--summary", "more tests")
    before = ada.json("review", "show", "--agent", "alice")
    repo.stop()
    assert repo.run("doctor", "rebuild").code == 0
    after = ada.json("review", "show", "--agent", "alice")
    assert json.dumps(after["review"], sort_keys=True) == json.dumps(before["review"], sort_keys=True)
    assert [r["summary"] for r in after["rounds"]] == ["more tests"]


def test_thrums_runtime_files_are_not_review_work_and_do_not_block_the_merge(repo):
    """Walk: an agent created with `--runtime claude` showed `3 uncommitted` in `review list`, and
    merging its approved review failed: `3 untracked file(s) ... would not be merged
    (.claude/settings.json, ..., .mcp.json)`. The files Thrum installed are not the agent's work."""
    assert repo.run("init").code == 0
    alice = worktree_agent(repo, "alice", "implementer", runtime="claude")
    path = alice.cwd
    assert (path / ".claude" / "settings.json").exists() and (path / ".mcp.json").exists()
    commit(repo, path, {"src/app.py": "print(1)\n"}, "add app")
    ada = repo.agent("ada", "operator", worktree=False)
    alice.ok("review", "request")
    (e,) = ada.json("review", "list")["reviews"]
    assert e["files"] == 1 and e["untracked"] == 0 and e.get("uncommitted", 0) == 0, e
    ada.ok("review", "submit", "alice", "--approve")
    # The verdict's nudge may leave the pane "working" a moment (a loaded machine): a problem of its own.
    pre = wait_for(
        lambda: (
            (p := ada.run("review", "preflight", "alice", "--json").json)
            and not [x for x in p["problems"] if x["code"] == "agent_working"]
            and p
        ),
        what="alice's pane back from the nudge",
    )
    assert pre["ok"], pre["problems"]
    r = ada.json("review", "merge", "alice")
    assert repo.git("rev-parse", "main") == r["merged_commit"]
    assert repo.git("ls-tree", "-r", "--name-only", "main").split() == ["README.md", "src/app.py"]


# -- a new user's walk of review and merge (session 21) --


def test_a_merge_never_goes_into_another_branch_than_the_reviews(work):
    """Walk 1: with the main checkout on `other`, preflight said ready and the merge went into
    `other`, recorded as merged into main."""
    repo, alice, ada, _path = work
    alice.ok("review", "request")
    approve(repo, ada)
    repo.git("checkout", "-q", "-b", "other")
    r = ada.run("review", "preflight", "alice", "--json")
    assert r.code == 1 and [p["code"] for p in r.json["problems"]] == ["wrong_target"], r.json
    assert_error(ada.run("review", "merge", "alice", "--force"), "the review is for main", "check out main")
    assert repo.git("rev-list", "--count", "other") == "1" and repo.git("rev-list", "--count", "main") == "1"
    repo.git("checkout", "-q", "main")
    assert ada.json("review", "merge", "alice")["target"] == "main"


def test_preflight_sees_what_makes_the_merge_fail_in_the_main_checkout(work):
    """Walk 4: an untracked file the branch adds, and a merge in progress in the main checkout: both
    were "ready to merge", then the merge failed with "the fast-forward of main failed: see git"."""
    repo, _alice, ada, _path = work
    approve(repo, ada)
    (repo.path / "src").mkdir()
    (repo.path / "src" / "app.py").write_text("mine, not committed\n")
    r = ada.run("review", "preflight", "alice", "--json")
    (p,) = r.json["problems"]
    assert r.code == 1 and p["code"] == "target_untracked" and p["files"] == ["src/app.py"], r.json
    assert_error(ada.run("review", "merge", "alice", "--force"), "untracked", "src/app.py")
    assert (repo.path / "src" / "app.py").read_text() == "mine, not committed\n"
    (repo.path / "src" / "app.py").unlink()
    git_dir = Path(repo.git("rev-parse", "--absolute-git-dir"))
    (git_dir / "MERGE_HEAD").write_text(repo.git("rev-parse", "HEAD") + "\n")  # what `git merge` leaves
    try:
        r = ada.run("review", "preflight", "alice", "--json")
        assert r.code == 1 and [p["code"] for p in r.json["problems"]] == ["target_busy"], r.json
        assert_error(ada.run("review", "merge", "alice"), "in the middle of a merge")
    finally:
        (git_dir / "MERGE_HEAD").unlink()
    assert ada.run("review", "merge", "alice").code == 0


def test_squashed_work_is_not_new_work_again(work):
    """Walk 5: after a squash merge the branch's commits are not in main's history: the queue showed
    them as unreviewed work, a new request was taken and a second merge made an empty commit."""
    repo, alice, ada, path = work
    alice.ok("review", "request")
    approve(repo, ada)
    ada.ok("review", "merge", "alice", "--squash")
    wait_for(lambda: not ada.json("sent", "--undelivered")["messages"], what="the merge's note typed")
    settled(repo)  # the note that the work landed nudged alice's pane
    assert ada.json("review", "list")["reviews"] == []
    (everyone,) = ada.json("review", "list", "--all")["reviews"]
    assert everyone["status"] == "merged" and not everyone["needs_you"]
    assert_error(alice.run("review", "request"), "nothing to review", "merged into main already")
    before = repo.git("rev-parse", "main")
    r = ada.run("review", "preflight", "alice", "--json")
    assert r.code == 1 and [p["code"] for p in r.json["problems"]] == ["nothing_to_merge"], r.json
    assert_error(ada.run("review", "merge", "alice", "--squash", "--force"), "merged into main already")
    assert repo.git("rev-parse", "main") == before
    commit(repo, path, {"NEW.md": "more\n"}, "more work")  # new work after the squash is reviewable
    assert alice.json("review", "request")["head"] == repo.git("rev-parse", "HEAD", cwd=path)
    assert [e["agent"] for e in ada.json("review", "list")["reviews"]] == ["alice"]


def test_changes_already_in_the_target_are_nothing_to_merge(work):
    """The same class without a review of Thrum's: the branch's changes cherry-picked into main."""
    repo, _alice, ada, path = work
    commit(repo, repo.path, {"NOTES.md": "main moved\n"}, "main moves on")  # picks are new commits
    for sha in repo.git("rev-list", "--reverse", "main..HEAD", cwd=path).split():
        repo.git("cherry-pick", sha)
    pre = ada.run("review", "preflight", "alice", "--json").json
    assert [p["code"] for p in pre["problems"]] == ["nothing_to_merge"], pre
    assert "in main already" in pre["problems"][0]["text"]


def test_an_operator_merge_from_the_cli_is_credited_to_the_operator(repo):
    """Walk 6: `review merge` from the main checkout with no identity was `@system`'s in the history,
    where the same user's `review submit` was theirs."""
    assert repo.run("init").code == 0
    alice = worktree_agent(repo, "alice", "implementer")
    commit(repo, alice.cwd, {"app.py": "print(1)\n"}, "add app")
    alice.ok("review", "request")
    # The operator the console registers (a user, in the main checkout, with no identity file there).
    register = {"name": "ada", "role": "operator", "kind": "user"}
    assert run_python(repo, RAW_CALL, "agent.register", json.dumps(register)).stdout == ""
    assert repo.run("review", "submit", "alice", "--approve").code == 0  # the main checkout, no identity
    assert repo.run("review", "merge", "alice", "--force").code == 0  # alice's pane: still working
    events = repo.json("review", "history")["events"]
    by = {e["kind"]: e["author"] for e in events}
    assert by["merged"] == by["approved"] == "ada", events


def test_a_detached_head_and_a_merged_review_are_named_plainly(work):
    """Walk 7 and 9: "merge None → main", "not merging @alice's None", and "the review is not
    approved" for a review merged already."""
    repo, _alice, ada, path = work
    approve(repo, ada)
    repo.git("checkout", "-q", "--detach", cwd=path)
    r = ada.run("review", "preflight", "alice")
    assert r.code == 1 and "None" not in r.out and "HEAD (detached)" in r.out, r.out
    line = assert_error(ada.run("review", "merge", "alice"), "detached HEAD")
    assert "None" not in line
    repo.git("checkout", "-q", "feature/alice", cwd=path)
    ada.ok("review", "merge", "alice")
    line = assert_error(ada.run("review", "merge", "alice"), "merged into main already")
    assert "not approved" not in line


def test_preflight_exits_1_when_a_plain_merge_would_refuse(work):
    """Walk 8: "mergeable with --force" exited 0, so `preflight && merge` failed at the merge."""
    _repo, alice, ada, _path = work
    alice.ok("review", "request")
    r = ada.run("review", "preflight", "alice", "--json")
    assert r.code == 1 and r.json["mergeable"] and not r.json["ok"]
    assert "only with --force" in ada.run("review", "preflight", "alice").out


def test_review_show_and_comments_take_an_agents_name_as_the_other_commands_do(work):
    """Walk 14: `review show impl` said "invalid review id 'impl' (expected rev_<ULID>)", where
    submit, preflight and merge take the agent's name in the same place."""
    _repo, alice, ada, _path = work
    rid = alice.json("review", "request")["review_id"]
    for who in ("alice", "@alice"):
        assert ada.json("review", "show", who)["review"]["id"] == rid
        assert ada.json("review", "comments", who)["review_id"] == rid
    assert_error(ada.run("review", "show", "ghost"), "ghost")


def test_an_open_review_whose_worktree_is_gone_stays_in_the_queue(work):
    """Walk 11: after `worktree teardown --keep-agent` the agent's open review left `review list`
    ("Nothing to review."), though `review show --agent` still had it as requested."""
    repo, alice, ada, _path = work
    rid = alice.json("review", "request", "--note", "done")["review_id"]
    assert repo.run("worktree", "teardown", "alice", "--force", "--keep-agent").code == 0
    (e,) = ada.json("review", "list")["reviews"]
    assert (e["agent"], e["review_id"], e["status"], e["no_worktree"], e["needs_you"]) == (
        "alice",
        rid,
        "requested",
        True,
        True,
    )
    assert "@alice  feature/alice  requested  no worktree on this machine" in ada.ok("review", "list").out


def test_a_reviewer_agent_leaves_line_comments_from_the_cli(work):
    """A reviewer agent had no way to comment on a line from a shell (only the console's drafts):
    `review submit --comment 'PATH:LINE: TEXT'`, the shape of a compiler's message."""
    repo, alice, _ada, _path = work
    rex = repo.agent("rex", "reviewer", worktree=False)
    alice.ok("review", "request")
    r = rex.json(
        "review",
        "submit",
        "alice",
        "--request-changes",
        "--comment",
        "src/app.py:2: return 2: the spec says so",
        "--comment",
        "src/app.py:1-2: name it run",
        "--comment",
        "README.md: say what it does",
    )
    assert r["comments"] == 3
    got = alice.json("review", "comments")["comments"]
    assert [(c["path"], c.get("line"), c.get("end_line"), c["body"], c["quote"]) for c in got] == [
        ("src/app.py", 2, None, "return 2: the spec says so", "    return 1"),
        ("src/app.py", 1, 2, "name it run", "def main():\n    return 1"),
        ("README.md", None, None, "say what it does", ""),
    ]
    assert not any(c["outdated"] for c in got)


def test_a_comment_that_points_at_nothing_is_refused_and_nothing_is_sent(work):
    repo, alice, _ada, _path = work
    rex = repo.agent("rex", "reviewer", worktree=False)
    alice.ok("review", "request")
    for bad, words in [
        ("src/app.py line 2 is wrong", "PATH:LINE: TEXT"),
        ("src/app.py:9: past the end", "past its end"),
        ("src/other.py:1: not changed", "not in the diff"),
        ("../etc/passwd:1: out", "invalid path"),
        ("src/app.py:2:   ", "needs text"),
    ]:
        assert_error(rex.run("review", "submit", "alice", "--request-changes", "--comment", bad), words)
    assert rex.json("sent")["messages"] == []
    assert alice.json("review", "comments")["comments"] == []


def test_the_operators_pending_comments_stay_theirs_when_another_reviewer_submits(work):
    """The console's pending comments went out with any reviewer's verdict, under that reviewer's
    name, and were gone from the operator's draft."""
    repo, alice, ada, _path = work
    rex = worktree_agent(repo, "rex", "reviewer")
    alice.ok("review", "request")
    draft = {"agent": "alice", "add": {"path": "src/app.py", "line": 2, "body": "ada's doubt"}}
    assert raw_call(ada, "review.draft", draft) == ""
    rex.ok("review", "submit", "alice", "--request-changes", "--summary", "rex says")
    assert [c["body"] for c in alice.json("review", "comments")["comments"]] == []
    pending = ada.json("review", "comments", "--agent", "alice")["pending"]
    assert [c["body"] for c in pending] == ["ada's doubt"]
    ada.ok("review", "submit", "alice", "--request-changes")
    assert [c["body"] for c in alice.json("review", "comments")["comments"]] == ["ada's doubt"]


def test_an_approval_of_nothing_is_refused(repo):
    """Console walk (session 22): `A` approved a branch with no commits and nothing uncommitted."""
    assert repo.run("init").code == 0
    worktree_agent(repo, "bob", "implementer")
    ada = repo.agent("ada", "operator", worktree=False)
    assert_error(ada.run("review", "submit", "bob", "--approve"), "nothing of @bob's to approve")
    comment = ("--comment", "README.md:1: why")
    assert_error(ada.run("review", "submit", "bob", "--request-changes", *comment), "nothing to comment on")
    assert ada.json("review", "history")["events"] == []


def test_a_comment_on_the_old_side_of_a_renamed_file_quotes_the_old_lines(repo):
    """A review of session 22: the old side of a rename was looked up under the new name at the
    merge base, so the console's comment on a removed line was refused as not there."""
    assert repo.run("init").code == 0
    commit(repo, repo.path, {"old_name.py": "a = 1\nb = 2\nc = 3\nd = 4\ne = 5\n"}, "base file")
    alice = worktree_agent(repo, "alice", "implementer")
    repo.git("mv", "old_name.py", "new_name.py", cwd=alice.cwd)
    (alice.cwd / "new_name.py").write_text("a = 1\nb = 20\nc = 3\nd = 4\ne = 5\n")
    repo.git("add", "-A", cwd=alice.cwd)
    repo.git("commit", "-q", "-m", "rename and change", cwd=alice.cwd)
    ada = repo.agent("ada", "operator", worktree=False)
    for path in ("new_name.py", "old_name.py"):
        draft = {"agent": "alice", "add": {"path": path, "line": 2, "side": "old", "body": "why 20?"}}
        assert raw_call(ada, "review.draft", draft) == ""
    pending = ada.json("review", "comments", "--agent", "alice")["pending"]
    assert [c["quote"] for c in pending] == ["b = 2", "b = 2"], pending


def test_the_author_reads_every_comment_since_the_request_ranges_and_all(work):
    """Walk (session 22): a reviewer's two submits in a row showed the author the second's comments
    alone, and a range read `src/app.py:1` in the human listing."""
    repo, alice, _ada, _path = work
    rex = repo.agent("rex", "reviewer", worktree=False)
    alice.ok("review", "request")
    rex.ok("review", "submit", "alice", "--request-changes", "--comment", "src/app.py:1-2: first")
    rex.ok("review", "submit", "alice", "--request-changes", "--comment", "README.md: second")
    got = alice.json("review", "comments")["comments"]
    assert [(c["body"], c["by"]) for c in got] == [("first", "rex"), ("second", "rex")]
    human = alice.ok("review", "comments").out
    assert "src/app.py:1-2" in human and "README.md (file)" in human, human
    assert_error(
        rex.run("review", "submit", "alice", "--request-changes", "--comment", "src/app.py:0: x"),
        "start at 1",
    )
    alice.ok("review", "request", "--note", "done")  # a new request: the next verdict starts afresh
    rex.ok("review", "submit", "alice", "--request-changes", "--summary", "one more")
    assert alice.json("review", "comments")["comments"] == []


def test_an_open_review_of_an_agent_here_is_never_listed_as_having_no_worktree(repo):
    """Walk (session 22): changes requested on a branch with nothing ahead listed the agent, whose
    worktree was right there, as "no worktree on this machine"."""
    assert repo.run("init").code == 0
    worktree_agent(repo, "bob", "implementer")
    ada = repo.agent("ada", "operator", worktree=False)
    ada.ok("review", "submit", "bob", "--request-changes", "--summary", "start on the parser")
    for flags in ((), ("--all",)):
        listed = ada.json("review", "list", *flags)["reviews"]
        assert not [e for e in listed if e.get("no_worktree")], listed
        assert "no worktree" not in ada.ok("review", "list", *flags).out

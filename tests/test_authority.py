"""F11: acting on others needs authority. The operator (the main checkout, the console) may do
everything; an agent may act on what its own worktree owns; a caller outside every worktree, or in
a directory dressed up as one, is read-only."""

from __future__ import annotations

import json
import shutil

from conftest import RAW_CALL, agent_names, assert_error, run_python, run_thrum, wait_for


def test_an_agent_cannot_delete_restatus_or_purge_for_others_but_the_operator_can(pair):
    repo, alice, bob = pair
    repo.agent("carol", "tester")
    ops = repo.agent("ops", "operator", worktree=False)  # an identity in the main checkout: the operator
    assert_error(bob.run("agent", "set-status", "blocked", "--agent", "alice"), "belongs to the worktree")
    assert alice.json("whoami")["name"] == "alice"
    assert [a["status"] for a in alice.json("agent", "list")["agents"] if a["name"] == "alice"] == [""]

    assert_error(bob.run("agent", "delete", "alice", "--force"), "belongs to the worktree")
    env = {k: v for k, v in bob.env.items() if k != "THRUM_NAME"}
    (bob.cwd / ".thrum" / "identities" / "bob.json").rename(bob.cwd / "bob.json.away")
    try:
        assert_error(
            run_thrum(["agent", "delete", "carol", "--force"], bob.cwd, env), "belongs to the worktree"
        )
    finally:
        (bob.cwd / "bob.json.away").rename(bob.cwd / ".thrum" / "identities" / "bob.json")
    assert agent_names(alice) == ["alice", "bob", "carol", "ops"]
    # Taking over another worktree's agent by registering it here with --force is acting on it too.
    assert_error(
        bob.run("agent", "register", "alice", "--role", "implementer", "--force", THRUM_NAME="alice"),
        "belongs to the worktree",
    )
    assert alice.json("whoami")["worktree"] == str(alice.cwd)
    bob.ok("send", "keep me", "--to", "@alice")
    assert bob.json("purge", "--all")["messages"] == 1  # the preview is anyone's
    assert_error(bob.run("purge", "--all", "--confirm"), "only the operator")
    assert_error(bob.run("agent", "cleanup", "--force", "--threshold", "0"), "only the operator")
    assert alice.json("inbox")["total"] == 1 and agent_names(alice) == ["alice", "bob", "carol", "ops"]

    # Acting on itself is fine.
    assert bob.ok("agent", "set-status", "blocked").out == "✓ Status set to blocked\n"
    assert bob.ok("agent", "set-status", "idle", "--agent", "bob").code == 0

    # The operator (a caller in the main checkout) may do all of it.
    ops.ok("agent", "set-status", "stuck", "--agent", "alice")
    ops.ok("agent", "delete", "carol", "--force")
    assert ops.json("purge", "--all", "--confirm")["purged"] is True
    assert agent_names(alice) == ["alice", "bob", "ops"] and alice.json("inbox")["total"] == 0


def test_a_caller_outside_every_worktree_cannot_stop_the_engine(pair, tmp_path):
    repo, alice, _bob = pair
    pid = repo.daemon_pid()
    r = run_thrum(["--repo", str(repo.path), "daemon", "stop"], tmp_path, repo.env)
    assert_error(r, "worktrees")
    assert repo.ok("daemon", "status", "--json").json["pid"] == pid
    assert alice.json("whoami")["name"] == "alice"


def test_a_planted_worktree_outside_git_s_list_grants_nothing(pair, tmp_path):
    repo, alice, _bob = pair
    fake = tmp_path / "X"
    (fake / ".git").mkdir(parents=True)
    (fake / ".thrum").mkdir()
    (fake / ".thrum" / "redirect").write_text(str(repo.path / ".thrum") + "\n")
    # A `.git` *file* pointing into the repo's own worktree admin dir is not in the list either.
    fake2 = tmp_path / "Y"
    fake2.mkdir()
    admin = next((repo.path / ".git" / "worktrees").iterdir())
    (fake2 / ".git").write_text(f"gitdir: {admin}\n")
    (fake2 / ".thrum").mkdir()
    (fake2 / ".thrum" / "redirect").write_text(str(repo.path / ".thrum") + "\n")
    for where in (fake, fake2):
        r = run_thrum(
            ["agent", "register", "mallory", "--role", "dev"], where, {**repo.env, "THRUM_NAME": "mallory"}
        )
        assert_error(r, "worktrees")
        assert_error(run_thrum(["agent", "delete", "bob", "--force"], where, repo.env))
        assert_error(run_thrum(["daemon", "stop"], where, repo.env))
    assert agent_names(alice) == ["alice", "bob"]
    # A real worktree, added with git, is recognized as one.
    real = repo.worktree("real")
    (real / ".thrum").mkdir()
    (real / ".thrum" / "redirect").write_text(str(repo.path / ".thrum") + "\n")
    assert run_thrum(["agent", "register", "dora", "--role", "dev"], real, repo.env).code == 0


def test_an_agent_cannot_type_into_kill_or_stop_the_rules_of_another_agent(pair):
    repo, alice, bob = pair
    if shutil.which("tmux") is None:
        import pytest

        pytest.skip("tmux is not installed")
    repo.ok("tmux", "create", "alp", "--cwd", str(alice.cwd), "--no-agent")
    for args in (
        ["tmux", "send", "alp", "echo typed-by-bob"],
        ["tmux", "kill", "alp"],
        ["tmux", "restart", "alp", "--force"],
        ["tmux", "queue", "alp", "echo queued-by-bob"],
        ["tmux", "create", "bobs", "--cwd", str(alice.cwd), "--no-agent"],
    ):
        assert_error(bob.run(*args), "belongs to the worktree")
    alice.ok("tmux", "send", "alp", "echo typed-by-alice")
    wait_for(
        lambda: "typed-by-alice" in "\n".join(alice.json("tmux", "capture", "alp")["lines"]),
        what="alice's text",
    )
    assert "typed-by-bob" not in "\n".join(alice.json("tmux", "capture", "alp")["lines"])
    cmd = alice.json("tmux", "queue", "alp", "sleep 30")["command"]["command_id"]
    assert_error(bob.run("tmux", "cancel", cmd), "belongs to the worktree")
    alice.ok("tmux", "cancel", cmd)

    alice.ok("monitor", "start", "--name", "mine", "--match", "x", "--to", "@alice", "--", "/bin/sleep", "30")
    assert_error(bob.run("monitor", "stop", "mine"), "belongs to the worktree")
    assert_error(bob.run("monitor", "restart", "mine"), "belongs to the worktree")
    assert alice.json("monitor", "show", "mine")["status"] == "running"
    alice.ok("monitor", "stop", "mine")
    repo.ok("monitor", "restart", "mine")  # the operator may
    repo.ok("monitor", "stop", "mine")
    bob.ok("tmux", "list")  # reading is anyone's
    repo.ok("tmux", "kill", "alp")


def test_an_agent_cannot_tear_down_another_agent_s_worktree(pair):
    repo, alice, bob = pair
    repo.ok("worktree", "create", "w1", "--name", "dan", "--role", "dev")
    assert_error(bob.run("worktree", "teardown", "w1", "--force"), "belongs to the worktree")
    assert "dan" in agent_names(alice)
    repo.ok("worktree", "teardown", "w1", "--force")
    assert "dan" not in agent_names(alice)


def test_an_agent_may_create_a_worktree_with_a_new_agent_and_its_session(pair):
    """The new worktree is the caller's own doing: its agent and tmux session are made with it (the
    session was refused half-way, after the agent was registered, when worktree.create went through
    the tmux.create handler's check of the caller)."""
    _repo, alice, bob = pair
    made = alice.json("worktree", "create", "w2", "--name", "erin", "--role", "dev")
    assert made["agent"]["name"] == "erin"
    assert made["session"]["name"] == "erin" and made["session"]["agent"] == "erin"
    assert_error(bob.run("worktree", "teardown", "w2", "--force"), "belongs to the worktree")


def test_a_person_registered_in_a_worktree_is_not_taken_for_the_main_checkouts_operator(pair):
    """Review of session 21: the main checkout's writes took the latest person's name, wherever
    that person was registered; one registered in a worktree was then a forged caller here, and
    every write from the main checkout was refused."""
    repo, alice, _bob = pair
    register = {"name": "opx", "role": "operator", "kind": "user"}
    assert (
        run_python(alice, RAW_CALL, "agent.register", json.dumps(register)).stdout == ""
    )  # in alice's worktree
    r = repo.run("schedule", "cancel", "sch_" + "0" * 26)
    assert_error(r, "no schedule")  # refused for what it is, not as a forged caller
    assert "caller claims" not in r.err

"""Worktrees as a user drives them: create, list, and a teardown that audits before it deletes."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from conftest import assert_error, wt_path


@pytest.fixture
def inited(repo):
    r = repo.run("init")
    assert r.code == 0, r.err
    return repo


@pytest.fixture(scope="module")
def inited_once(make_module_repo):
    """One initialised repo for the refusals, which change nothing (each checks that)."""
    repo = make_module_repo()
    r = repo.run("init")
    assert r.code == 0, r.err
    return repo


def test_create_makes_a_branch_and_points_state_at_the_main_repo(inited):
    repo = inited
    r = repo.run("worktree", "create", "auth", "--json")
    assert r.code == 0, r.err
    created = r.json
    path = wt_path(repo, "auth")
    assert created["path"] == str(path.resolve()) and created["branch"] == "feature/auth"
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD", cwd=path) == "feature/auth"
    assert (path / ".thrum" / "redirect").read_text().strip() == str(repo.path.resolve() / ".thrum")
    listed = repo.run("worktree", "list", "--json").json
    assert [set(w) >= {"name", "path", "branch", "head", "agent", "status"} for w in listed] == [True]
    assert listed[0]["name"] == "auth" and listed[0]["status"] == "clean" and listed[0]["agent"] is None


def test_create_with_an_identity_registers_the_agent_there(inited):
    repo = inited
    assert repo.run("worktree", "create", "ui", "--name", "impl_ui", "--role", "implementer").code == 0
    path = wt_path(repo, "ui")
    who = subprocess.run(
        ["thrum", "whoami", "--json"], cwd=path, env=repo.env, capture_output=True, text=True
    )
    assert who.returncode == 0 and '"impl_ui"' in who.stdout
    listed = repo.run("worktree", "list", "--json").json
    assert listed[0]["agent"] == "impl_ui"
    # ... and its tmux session exists, not launched yet, in the worktree.
    sessions = repo.run("tmux", "status", "--json").json["sessions"]
    assert [(s["name"], s["agent"], s["cwd"]) for s in sessions] == [
        ("impl_ui", "impl_ui", str(path.resolve()))
    ]
    sender = repo.agent("lead", "coordinator", worktree=False)
    assert sender.run("send", "hi ui", "--to", "@impl_ui").code == 0


def test_branch_base_and_detach(inited):
    repo = inited
    repo.git("branch", "existing")
    assert repo.run("worktree", "create", "one", "--branch", "existing").code == 0
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD", cwd=wt_path(repo, "one")) == "existing"
    assert repo.run("worktree", "create", "two", "-b", "topic/x", "--base", "main").code == 0
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD", cwd=wt_path(repo, "two")) == "topic/x"
    assert repo.run("worktree", "create", "three", "--detach").code == 0
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD", cwd=wt_path(repo, "three")) == "HEAD"
    r = repo.run("worktree", "create", "four", "--detach", "--branch", "b")
    assert r.code == 1 and "mutually exclusive" in r.err


@pytest.mark.parametrize(
    "name", ["a/b", "..", "../escape", "a\\b", "x..y", "-rf", ".hidden", "$(touch pwned)"]
)
def test_bad_names_are_refused_and_nothing_is_created(inited_once, name):
    repo = inited_once
    r = repo.run("worktree", "create", "--", name)
    assert r.code == 1 and r.err.startswith("Error: invalid worktree name")
    assert len(r.err.strip().splitlines()) == 1
    assert repo.run("worktree", "list", "--json").json == []
    assert not (repo.path / "pwned").exists()


def test_an_unknown_base_or_an_existing_path_is_refused(inited):
    repo = inited
    r = repo.run("worktree", "create", "x", "--base", "no-such-ref")
    assert r.code == 1 and "unknown base" in r.err
    assert repo.run("worktree", "create", "x").code == 0
    r = repo.run("worktree", "create", "x")
    assert r.code == 1 and "already exists" in r.err


def test_teardown_refuses_unsaved_work_then_archives_it_with_force(inited):
    repo = inited
    assert repo.run("worktree", "create", "auth", "--name", "impl_auth", "--role", "implementer").code == 0
    path = wt_path(repo, "auth")
    (path / "done.txt").write_text("committed\n")
    repo.git("add", "done.txt", cwd=path)
    repo.git("commit", "-q", "-m", "work", cwd=path)
    (path / "draft.txt").write_text("not committed yet\n")

    r = repo.run("worktree", "teardown", "auth")
    assert r.code == 1
    assert "untracked" in r.err and "not merged into main" in r.err and "--force" in r.err
    assert "live pane (impl_auth)" in r.err
    assert path.exists()

    r = repo.run("worktree", "teardown", "auth", "--force", "--json")
    assert r.code == 0, r.err
    out = r.json
    ref = out["archive_ref"]
    assert ref.startswith("refs/thrum/archive/auth/") and out["agents_deleted"] == ["impl_auth"]
    assert not path.exists()
    # The archive keeps both the commit and the draft that was never committed.
    assert repo.git("show", f"{ref}:draft.txt") == "not committed yet"
    assert repo.git("show", f"{ref}:done.txt") == "committed"
    assert repo.run("agent", "list", "--json").json["agents"] == []
    assert repo.run("tmux", "status", "--json").json["sessions"] == []  # its pane went with it
    assert repo.git("branch", "--list", "feature/auth")  # kept without --delete-branch


def test_teardown_of_a_clean_merged_worktree_needs_no_force(inited):
    repo = inited
    assert repo.run("worktree", "create", "fix").code == 0
    path = wt_path(repo, "fix")
    (path / "fix.txt").write_text("fix\n")
    repo.git("add", "fix.txt", cwd=path)
    repo.git("commit", "-q", "-m", "fix", cwd=path)
    repo.git("merge", "-q", "feature/fix")
    r = repo.run("worktree", "teardown", "fix", "--delete-branch")
    assert r.code == 0, r.err
    assert "Deleted branch feature/fix" in r.out
    assert not repo.git("branch", "--list", "feature/fix")
    assert repo.git("for-each-ref", "refs/thrum/archive/fix/")


def test_a_squash_merged_branch_counts_as_merged(inited):
    repo = inited
    assert repo.run("worktree", "create", "sq").code == 0
    path = wt_path(repo, "sq")
    for n in (1, 2):
        (path / f"f{n}.txt").write_text(f"{n}\n")
        repo.git("add", f"f{n}.txt", cwd=path)
        repo.git("commit", "-q", "-m", f"step {n}", cwd=path)
    audit_before = repo.run("worktree", "teardown", "sq")
    assert audit_before.code == 1 and "2 commit(s) not merged" in audit_before.err
    repo.git("merge", "-q", "--squash", "feature/sq")
    repo.git("commit", "-q", "-m", "squashed sq")
    r = repo.run("worktree", "teardown", "sq")
    assert r.code == 0, r.err


def test_keep_agent_keeps_the_identity_in_the_team(inited):
    repo = inited
    assert repo.run("worktree", "create", "k", "--name", "keeper", "--role", "tester").code == 0
    r = repo.run("worktree", "teardown", "k", "--keep-agent", "--force", "--json")
    assert r.code == 0 and r.json["agents_deleted"] == []
    assert [a["name"] for a in repo.run("agent", "list", "--json").json["agents"]] == ["keeper"]
    # its session went with the worktree: not "online" (contract walk, session 22)
    (member,) = [m for m in repo.json("team", "--all")["members"] if m["name"] == "keeper"]
    assert member["presence"] in ("no session", "offline"), member
    repo.stop()  # and after a restart, which forgets what ended while it ran
    (member,) = [m for m in repo.json("team", "--all")["members"] if m["name"] == "keeper"]
    assert member["presence"] in ("no session", "offline"), member


def test_beads_redirect_when_the_repo_uses_beads(inited):
    repo = inited
    (repo.path / ".beads").mkdir()
    assert repo.run("worktree", "create", "b").code == 0
    assert (wt_path(repo, "b") / ".beads" / "redirect").read_text().strip() == str(
        repo.path.resolve() / ".beads"
    )


def test_teardown_of_an_unknown_worktree(inited):
    r = inited.run("worktree", "teardown", "ghost")
    assert r.code == 1 and "no worktree named ghost" in r.err


def test_thrums_files_never_enter_an_agents_branch(inited):
    """Walk bug 1: `.thrum/` (identities with absolute paths, the redirect) showed as untracked in
    every worktree, `git add -A` committed it, and the panel still said "clean"."""
    repo = inited
    assert repo.git("status", "--porcelain") == ""  # init leaves the user's tree as it was
    assert repo.run("worktree", "create", "auth", "--name", "impl", "--role", "implementer").code == 0
    path = wt_path(repo, "auth")
    assert (path / ".thrum" / "redirect").exists()
    assert repo.git("status", "--porcelain", "--untracked-files=all", cwd=path) == ""
    repo.git("add", "-A", cwd=path)
    assert repo.git("diff", "--cached", "--name-only", cwd=path) == ""
    # The panel is git status: an untracked file of the agent's own is not "clean".
    (path / "notes.txt").write_text("wip\n")
    listed = {w["name"]: w for w in repo.run("worktree", "list", "--json").json}
    assert listed["auth"]["status"] != "clean"


def test_a_repo_initialised_before_the_exclude_rule_gets_it_at_engine_start(inited):
    repo = inited
    assert repo.run("worktree", "create", "old").code == 0
    repo.ok("daemon", "stop")
    exclude = repo.path / ".git" / "info" / "exclude"
    exclude.write_text("# nothing of thrum's\n")  # as an older version left it
    assert "?? .thrum/" in repo.git("status", "--porcelain", cwd=wt_path(repo, "old"))
    repo.ok("daemon", "start")
    assert ".thrum/" in exclude.read_text().split()
    assert repo.git("status", "--porcelain", "--untracked-files=all", cwd=wt_path(repo, "old")) == ""


def test_each_teardown_keeps_its_own_archive_and_any_can_be_restored(inited):
    """Walk bug 8: a name used again overwrote the first archive, leaving its work to `git gc`."""
    repo = inited
    repo.git("update-ref", "refs/thrum/archive/anna", "HEAD")  # an archive of the old one-per-name shape
    firsts = []
    for draft in ("first draft", "second draft"):
        assert repo.run("worktree", "create", "anna").code == 0
        (wt_path(repo, "anna") / "draft.txt").write_text(draft)
        r = repo.run("worktree", "teardown", "anna", "--force", "--json")
        assert r.code == 0, r.err
        firsts.append(r.json["archive_ref"])
        repo.git("branch", "-D", "feature/anna")
    assert firsts[0] != firsts[1]
    listed = repo.run("worktree", "archives", "--json").json
    refs = [a["ref"] for a in listed]
    assert set(firsts) <= set(refs) and len(refs) == 3  # the old-shape one moved under the name
    assert (
        repo.git("for-each-ref", "refs/thrum/archive/anna", "--format=%(refname)").strip()
        != "refs/thrum/archive/anna"
    )
    assert [repo.git("show", f"{ref}:draft.txt") for ref in firsts] == ["first draft", "second draft"]
    # Restore the first one: its commits, and its draft back as an uncommitted file.
    r = repo.run("worktree", "restore", firsts[0], "--name", "anna_again", "--json")
    assert r.code == 0, r.err
    back = Path(r.json["path"])
    assert (back / "draft.txt").read_text() == "first draft"
    assert "?? draft.txt" in repo.git("status", "--porcelain", cwd=back)
    assert repo.run("worktree", "restore", "nothing/here").code == 1


def test_a_branch_checked_out_elsewhere_is_a_clear_error(inited):
    """Walk bug 12: it was "internal error: GitCommandError" with a traceback in the log."""
    repo = inited
    assert repo.run("worktree", "create", "tester").code == 0
    r = repo.run("worktree", "create", "other", "--branch", "feature/tester")
    assert r.code == 1 and r.err.count("\n") == 1
    assert "branch feature/tester is checked out in worktree tester" in r.err and "internal" not in r.err
    assert not wt_path(repo, "other").exists()


def test_committed_instruction_files_name_no_agent(repo):
    """Walk: the coordinator's `init --name lead_a` wrote `You are @lead_a (coordinator)` into
    CLAUDE.md; committed, every later worktree (impl_b's too) told its agent it was @lead_a, while
    impl_b's SessionStart hook said @impl_b. The shared files hold the generic block; the identity
    comes from the hook and `thrum prime`."""
    r = repo.run(
        "init", "--name", "lead_a", "--role", "coordinator", "--runtime", "claude,codex",
        "--no-daemon", "--non-interactive",
    )  # fmt: skip
    assert r.code == 0, r.err
    for rel in ("CLAUDE.md", "AGENTS.md"):
        text = (repo.path / rel).read_text()
        assert "thrum prime" in text and "lead_a" not in text and "You are @" not in text, text
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "w")
    r = repo.run(
        "worktree", "create", "w1", "--name", "impl_b", "--role", "implementer", "--runtime", "claude"
    )
    assert r.code == 0, r.err
    path = wt_path(repo, "w1")
    for rel in ("CLAUDE.md", "AGENTS.md"):
        text = (path / rel).read_text()
        assert "lead_a" not in text and "impl_b" not in text and "You are @" not in text, text
    start = repo.run("hook", "session-start", "--runtime", "claude", cwd=path, input="{}")
    assert start.code == 0, start.err
    assert "You are @impl_b" in start.out, start.out


def test_thrums_runtime_files_leave_a_new_worktree_clean_and_only_they_are_ignored(inited):
    """Walk: `worktree create cleanwt --runtime codex` left AGENTS.md, .codex/... untracked, so
    teardown refused ("4 untracked file(s)") and `git add -A` would commit them. Thrum's files are
    kept out of git status (the common info/exclude) and out of the audits, byte for byte: an edited
    one, or a user's own file at such a path in another worktree, is work again."""
    repo = inited
    r = repo.run("worktree", "create", "cleanwt", "--runtime", "codex")
    assert r.code == 0, r.err
    path = wt_path(repo, "cleanwt")
    assert (path / "AGENTS.md").exists() and (path / ".codex" / "hooks.json").exists()
    assert repo.git("status", "--porcelain", "--untracked-files=all", cwd=path) == ""
    repo.git("add", "-A", cwd=path)
    assert repo.git("diff", "--cached", "--name-only", cwd=path) == ""
    listed = {w["name"]: w for w in repo.run("worktree", "list", "--json").json}
    assert listed["cleanwt"]["status"] == "clean"
    # The user's own file at a path Thrum hides, in a worktree Thrum installed nothing into: work.
    assert repo.run("worktree", "create", "other").code == 0
    other = wt_path(repo, "other")
    (other / "AGENTS.md").write_text("# my own notes\n")
    r = repo.run("worktree", "teardown", "other")
    assert r.code == 1 and "1 untracked file(s)" in r.err, r.err
    # Thrum's file once edited is the user's work too.
    original = (path / "AGENTS.md").read_text()
    (path / "AGENTS.md").write_text(original + "\nmy rule\n")
    r = repo.run("worktree", "teardown", "cleanwt")
    assert r.code == 1 and "1 untracked file(s)" in r.err, r.err
    (path / "AGENTS.md").write_text(original)
    r = repo.run("worktree", "teardown", "cleanwt")
    assert r.code == 0, r.err
    assert not path.exists()


def test_teardown_of_a_git_worktree_thrum_did_not_make_says_so(inited, tmp_path):
    """Walk: `worktree list` showed `ext` (made by `git worktree add`), but `teardown ext` said
    "no worktree named ext": it names the worktree as not Thrum's and how git removes it."""
    repo = inited
    ext = tmp_path / "ext"
    repo.git("worktree", "add", "-q", str(ext), "-b", "extb")
    assert [w["name"] for w in repo.run("worktree", "list", "--json").json] == ["ext"]
    r = repo.run("worktree", "teardown", "ext")
    line = assert_error(r, "ext is a git worktree Thrum did not create", f"git worktree remove {ext}")
    assert "no worktree named" not in line
    assert ext.exists() and repo.git("branch", "--list", "extb")
    assert [w["name"] for w in repo.run("worktree", "list", "--json").json] == ["ext"]


def test_archives_are_listed_newest_teardown_first_and_a_bare_name_restores_the_newest(inited):
    """Walk: `archives` sorted by the archived commit's date (a clean worktree's archive is its
    HEAD, older than any teardown), so the older teardown came first and `restore dup` took it."""
    repo = inited
    commit = repo.path / "second.txt"
    commit.write_text("2\n")
    repo.git("add", "second.txt")
    repo.git("commit", "-q", "-m", "second")
    assert repo.run("worktree", "create", "dup").code == 0
    first = repo.run("worktree", "teardown", "dup", "--delete-branch", "--json")
    assert first.code == 0, first.err
    time.sleep(1.1)  # the stamp in the ref has one-second steps
    assert repo.run("worktree", "create", "dup", "--base", "HEAD~1").code == 0
    second = repo.run("worktree", "teardown", "dup", "--delete-branch", "--force", "--json")
    assert second.code == 0, second.err
    listed = repo.run("worktree", "archives", "--json").json
    assert [a["ref"] for a in listed] == [second.json["archive_ref"], first.json["archive_ref"]]
    # `at` is the teardown's time, the stamp in the ref, not the older commit's date.
    stamp = second.json["archive_ref"].rsplit("/", 1)[1]
    assert listed[0]["at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    assert listed[0]["at"] > listed[1]["at"]
    human = repo.run("worktree", "archives").out.splitlines()
    assert human[0].startswith("dup/" + stamp) and listed[0]["at"] in human[0]
    r = repo.run("worktree", "restore", "dup", "--json")
    assert r.code == 0, r.err
    assert r.json["archive"]["ref"] == second.json["archive_ref"]
    assert repo.git("rev-parse", "HEAD", cwd=Path(r.json["path"])) == repo.git("rev-parse", "HEAD~1")


def ignore(repo, *rules: str) -> None:
    (repo.path / ".gitignore").write_text("".join(r + "\n" for r in rules))
    repo.git("add", ".gitignore")
    repo.git("commit", "-q", "-m", "ignore")


def test_ignored_files_go_into_the_archive_and_ignored_folders_are_named_as_removed(inited):
    """Walk: a teardown (no --force, no warning) deleted a hand-typed, git-ignored `local.env`,
    and restore could not bring it back: the archive was `git add -A`, which skips ignored files."""
    repo = inited
    ignore(repo, "*.env", "node_modules/")
    assert repo.run("worktree", "create", "ig").code == 0
    path = wt_path(repo, "ig")
    (path / "local.env").write_text("API_KEY=typed-by-hand\n")
    (path / "node_modules" / "pkg").mkdir(parents=True)
    (path / "node_modules" / "pkg" / "index.js").write_text("built\n")
    audit = repo.run("worktree", "teardown", "ig", "--json")
    assert audit.code == 0, audit.err  # nothing is lost: no --force needed
    out = audit.json
    assert out["audit"]["ignored"] == ["local.env"] and out["audit"]["ignored_dirs"] == ["node_modules/"]
    assert out["audit"]["ignored_over_cap"] == [] and out["problems"] == []
    assert out["notes"] == [
        "1 ignored file(s) archived (local.env)",
        "1 ignored folder(s) removed, not archived (node_modules/)",
    ]
    ref = out["archive_ref"]
    assert repo.git("show", f"{ref}:local.env") == "API_KEY=typed-by-hand"
    tree = repo.git("ls-tree", "-r", "--name-only", ref).split()
    assert "node_modules/pkg/index.js" not in tree and not any(p.startswith(".thrum/") for p in tree)
    r = repo.run("worktree", "restore", "ig", "--json")
    assert r.code == 0, r.err
    back = Path(r.json["path"])
    assert (back / "local.env").read_text() == "API_KEY=typed-by-hand\n"
    assert repo.git("status", "--porcelain", cwd=back) == ""  # ignored again, as it was
    # The human teardown names both.
    (back / "local.env").write_text("again\n")
    (back / "node_modules").mkdir()
    (back / "node_modules" / "x.js").write_text("x\n")
    human = repo.run("worktree", "teardown", "ig")
    assert human.code == 0, human.err
    assert "1 ignored file(s) archived (local.env)" in human.out
    assert "1 ignored folder(s) removed, not archived (node_modules/)" in human.out


def test_ignored_files_past_the_archive_cap_are_refused_by_name_without_force(inited):
    repo = inited
    ignore(repo, "*.env", "*.dump")
    assert repo.run("worktree", "create", "big").code == 0
    path = wt_path(repo, "big")
    (path / "local.env").write_text("KEY=1\n")
    with open(path / "db.dump", "wb") as fh:
        fh.truncate(11 * 1024 * 1024)
    r = repo.run("worktree", "teardown", "big")
    assert_error(r, "1 ignored file(s) past the 10 MiB", "db.dump", "--force", "archived (local.env)")
    assert path.exists()
    r = repo.run("worktree", "teardown", "big", "--force", "--json")
    assert r.code == 0, r.err
    assert r.json["audit"]["ignored_over_cap"] == ["db.dump"] and r.json["audit"]["ignored"] == ["local.env"]
    tree = repo.git("ls-tree", "-r", "--name-only", r.json["archive_ref"]).split()
    assert "local.env" in tree and "db.dump" not in tree


def test_a_users_file_at_a_runtime_files_path_is_archived_and_thrums_own_are_not(inited):
    """The audit counts a file at a path Thrum hides for its runtime files, once edited, as work;
    the archive (`git add -A`, past which info/exclude kept it) did not have it. Thrum's own
    runtime files, as installed, stay out."""
    repo = inited
    assert repo.run("worktree", "create", "rt", "--runtime", "codex").code == 0
    path = wt_path(repo, "rt")
    (path / "AGENTS.md").write_text((path / "AGENTS.md").read_text() + "\nmy rule\n")
    r = repo.run("worktree", "teardown", "rt", "--force", "--json")
    assert r.code == 0, r.err
    assert r.json["audit"]["untracked"] == ["AGENTS.md"] and r.json["notes"] == []
    ref = r.json["archive_ref"]
    assert "my rule" in repo.git("show", f"{ref}:AGENTS.md")
    tree = repo.git("ls-tree", "-r", "--name-only", ref).split()
    assert ".codex/hooks.json" not in tree and not any(p.startswith(".thrum/") for p in tree)
    r = repo.run("worktree", "restore", "rt", "--json")
    assert r.code == 0, r.err
    assert "my rule" in (Path(r.json["path"]) / "AGENTS.md").read_text()


def status(repo, cwd: Path) -> set[str]:
    """`git status --porcelain` lines as git prints them (a leading space kept)."""
    out = subprocess.run(
        ["git", "status", "--porcelain"], cwd=cwd, env=repo.env, capture_output=True, text=True, check=True
    ).stdout
    return set(out.splitlines())


def test_restore_brings_back_what_was_staged_and_what_was_deleted(inited):
    """Walk: a staged file came back untracked (`A s.txt` became `?? s.txt`): the archive kept the
    working tree only. It keeps the index too, and restore puts both back as `git status` had them."""
    repo = inited
    (repo.path / "gone.txt").write_text("tracked\n")
    repo.git("add", "gone.txt")
    repo.git("commit", "-q", "-m", "gone")
    assert repo.run("worktree", "create", "st").code == 0
    path = wt_path(repo, "st")
    (path / "s.txt").write_text("staged\n")
    repo.git("add", "s.txt", cwd=path)
    (path / "both.txt").write_text("staged version\n")
    repo.git("add", "both.txt", cwd=path)
    (path / "both.txt").write_text("working version\n")
    (path / "new.txt").write_text("untracked\n")
    (path / "gone.txt").unlink()
    before = status(repo, path)
    assert before == {"A  s.txt", "AM both.txt", " D gone.txt", "?? new.txt"}
    r = repo.run("worktree", "teardown", "st", "--force")
    assert r.code == 0, r.err
    r = repo.run("worktree", "restore", "st", "--json")
    assert r.code == 0, r.err
    back = Path(r.json["path"])
    assert status(repo, back) == before
    assert (back / "both.txt").read_text() == "working version\n"
    assert repo.git("show", ":both.txt", cwd=back) == "staged version"
    # An archive written before the index was kept (one parent) comes back with nothing staged.
    ref = r.json["archive"]["ref"]
    old = repo.git(
        "commit-tree", f"{ref}^{{tree}}", "-p", f"{ref}^", "-m", "thrum: archive of worktree old at teardown"
    )
    repo.git("update-ref", "refs/thrum/archive/old/20200101T000000Z", old)
    r = repo.run("worktree", "restore", "old", "--json")
    assert r.code == 0, r.err
    assert status(repo, Path(r.json["path"])) == {
        "?? s.txt",
        "?? both.txt",
        " D gone.txt",
        "?? new.txt",
    }

"""Names are never paths; Thrum's own files are private and never written through a link; text the
CLI reads (bodies, context, identity files) fails with one `Error:` line, not a traceback."""

from __future__ import annotations

import json
import os
import random
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import assert_error
from thrum_engine import names

KINDS = ("agent", "role", "module", "monitor", "session", "runtime", "worktree")
SEED = 20261201


def invalid_names(rng: random.Random, count: int) -> list[str]:
    """Names every rule refuses: traversal, absolute paths, separators, control characters, NUL, shell
    syntax, over-long, empty, leading dot/dash; each a fixed-seed mix of a hostile part and filler."""
    hostile = [
        "../",
        "..",
        "/",
        "\\",
        "\n",
        "\r",
        "\x00",
        "\t",
        " ",
        "$(touch pwned)",
        "`id`",
        ";",
        "*",
        ":",
        "~",
        "é",
        "\x1b[31m",
        "%s",
        "/etc/passwd",
        "../../README",
    ]
    out = ["", ".", "..", "../x", "/tmp/x", "a" * 101, "x" * 300, ".hidden", "-flag", "a\x00b", "a\nb"]
    for _ in range(count):
        filler = "".join(rng.choice("abc_123") for _ in range(rng.randint(0, 6)))
        at = rng.randint(0, len(filler))
        out.append(filler[:at] + rng.choice(hostile) + filler[at:])
    return out


def test_every_name_rule_refuses_paths_and_control_characters():
    rng = random.Random(SEED)
    for kind in KINDS:
        for bad in invalid_names(rng, 40):
            problem = names.problem(kind, bad)
            assert problem is not None, f"{kind} name {bad!r} was accepted"
            assert problem.startswith(f"invalid {kind} name"), problem
            assert "\n" not in problem and "\x00" not in problem
            assert len(problem) < 200
        assert names.problem(kind, "ok_name1") is None
    assert names.agent_name_problem("system") and names.agent_name_problem("dev", "dev")
    assert names.problem("worktree", "feature.x-1") is None and names.problem("session", "Dev-1") is None


# -- the CLI: every command that takes a name ---------------------------------------------------------

# {N} is the name under test; ("env", ...) puts it in THRUM_NAME instead.
COMMANDS = [
    ("env", "whoami"),
    ("env", "context", "save", "--file", "{FILE}"),
    ("env", "context", "clear"),
    ("env", "context", "preamble", "--init"),
    ("env", "send", "hi", "--to", "@bob"),
    ("env", "inbox"),
    ("arg", "context", "show", "--agent={N}"),
    ("arg", "quickstart", "--name={N}", "--role", "dev"),
    ("arg", "quickstart", "--name", "newbie", "--role={N}"),
    ("arg", "quickstart", "--name", "newbie", "--role", "dev", "--module={N}"),
    ("arg", "agent", "register", "--name={N}", "--role", "dev"),
    ("arg", "agent", "delete", "--force", "--", "{N}"),
    ("arg", "agent", "set-status", "idle", "--agent={N}"),
    ("arg", "worktree", "create", "--", "{N}"),
    ("arg", "worktree", "create", "wtok", "--name={N}", "--role", "dev"),
    ("arg", "worktree", "teardown", "--force", "--", "{N}"),
    ("arg", "tmux", "create", "--no-agent", "--", "{N}"),
    ("arg", "tmux", "kill", "--", "{N}"),
    ("arg", "tmux", "send", "--", "{N}", "hi"),
    ("arg", "tmux", "capture", "--", "{N}"),
    ("arg", "tmux", "launch", "--", "{N}"),
    ("arg", "tmux", "queue-status", "--", "{N}"),
    ("arg", "tmux", "launch", "ok", "--runtime={N}"),
    ("arg", "monitor", "watch-pane", "--name=ok", "--session={N}", "--match", "x", "--to", "@alice"),
    ("arg", "runtime", "show", "--", "{N}"),
    ("arg", "runtime", "set-default", "--", "{N}"),
    ("arg", "monitor", "start", "--name={N}", "--match", "x", "--to", "@alice", "--", "/bin/true"),
    ("arg", "ping", "--", "{N}"),
]

# Commands whose name becomes a file name, a ref or a tmux target: these must say "invalid ... name".
PATH_KINDS = {"whoami", "context", "quickstart", "register", "worktree", "tmux", "runtime", "monitor"}


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file (and link) under `roots` except the engine's own churn (db, logs, journal)."""
    skip = (
        os.sep + os.path.join(".thrum", "var"),
        os.sep + os.path.join(".git", "thrum-sync"),
        os.sep + os.path.join(".git", "index"),
        os.sep + os.path.join(".git", "logs"),
        # The journal's own branch (sync commits it in the background): its objects, ref and worktree.
        os.sep + os.path.join(".git", "objects"),
        os.sep + os.path.join(".git", "refs", "heads", "a-sync"),
        os.sep + os.path.join(".git", "worktrees", "a-sync"),
    )
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for f in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                p = os.path.join(dirpath, f)
                if any(s in p for s in skip):
                    continue
                st = os.lstat(p)
                out[p] = (st.st_size, st.st_mtime_ns)
    return out


def test_random_invalid_names_through_every_command_change_nothing(pair, tmp_path):
    repo, alice, _bob = pair
    payload = tmp_path / "payload.md"
    payload.write_text("forged\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.md").write_text("keep me\n")
    rng = random.Random(SEED)
    pool = [n for n in invalid_names(rng, 12) if "\x00" not in n]  # argv and environ cannot carry NUL
    roots = (repo.path.parent, outside)
    before = snapshot(*roots)
    cases = []
    for where, *template in COMMANDS:
        for bad in rng.sample(pool, 3) + ["../../README", str(outside / "victim")]:
            if where == "env" and not bad:
                continue  # an empty THRUM_NAME means "not set"
            args = [a.replace("{N}", bad).replace("{FILE}", str(payload)) for a in template]
            cases.append((where, template, bad, args, {"THRUM_NAME": bad} if where == "env" else {}))

    def check(case) -> None:
        where, template, bad, args, env = case
        line = assert_error(alice.run(*args, **env))
        if bad and (where == "env" or PATH_KINDS & set(template[:2])):  # empty may read as "missing"
            assert "invalid" in line and "name" in line, (args, bad, line)

    # Refused commands change nothing, so they may run side by side (four CLI processes at a time).
    with ThreadPoolExecutor(4) as pool_:
        list(pool_.map(check, cases))
    assert not (alice.cwd / "pwned").exists() and not (repo.path / "pwned").exists()
    after = snapshot(*roots)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert changed == [], changed
    assert (repo.path / "README.md").read_text() == "hello\n"


def test_thrum_name_traversal_neither_deletes_nor_writes_nor_reads(pair, tmp_path):
    """F7: `THRUM_NAME=../../README thrum context clear` deleted the repo's README.md, and any seat
    could rewrite another agent's context."""
    repo, alice, bob = pair
    assert_error(alice.run("context", "clear", THRUM_NAME="../../../repo/README"), "invalid agent name")
    assert (repo.path / "README.md").exists()
    target = tmp_path / "planted"
    assert_error(alice.run("context", "save", input="x\n", THRUM_NAME=str(target)), "invalid agent name")
    assert not target.with_suffix(".md").exists()
    assert_error(alice.run("context", "show", "--agent", "../../README"), "invalid agent name")
    assert_error(alice.run("whoami", THRUM_NAME="$(touch pwned)"), "invalid agent name", "THRUM_NAME")
    bob.ok("context", "save", input="bob's own\n")
    for args in (("context", "save"), ("context", "clear"), ("context", "preamble", "--init")):
        assert_error(alice.run(*args, input="forged\n", THRUM_NAME="bob"), "no identity in this worktree")
    assert bob.json("context", "show")["context"] == "bob's own\n"
    alice.ok("context", "save", input="mine\n")
    assert alice.json("context", "show")["context"] == "mine\n"


# -- files Thrum writes -------------------------------------------------------------------------------


def test_planted_tmp_symlinks_are_never_followed(pair, tmp_path):
    """F14: `<name>.json.tmp` / `<name>.md.tmp` symlinks redirected the identity and context writes."""
    repo, alice, _bob = pair
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    wt = repo.worktree("eve")
    idir = wt / ".thrum" / "identities"
    idir.mkdir(parents=True)
    (idir / "eve.json.tmp").symlink_to(victim)
    ctx_dir = repo.path / ".thrum" / "context"
    (ctx_dir / "alice.md.tmp").symlink_to(victim)
    (ctx_dir / "alice.preamble.md").unlink()
    (ctx_dir / "alice.preamble.md").symlink_to(
        victim
    )  # the file itself a link: replaced, not written through
    repo.ok("quickstart", "--name", "eve", "--role", "dev", cwd=wt)
    alice.ok("context", "save", input="DATA\n")
    alice.ok("context", "preamble", "--init")
    assert victim.read_text() == "untouched\n"
    for f in (idir / "eve.json", ctx_dir / "alice.md", ctx_dir / "alice.preamble.md"):
        assert not f.is_symlink() and f.is_file(), f
    assert json.loads((idir / "eve.json").read_text())["name"] == "eve"
    assert (ctx_dir / "alice.md").read_text() == "DATA\n"


def test_identity_and_context_files_are_private_whatever_the_umask(make_repo):
    repo = make_repo()
    old = os.umask(0)
    try:
        agent = repo.agent("alice", "dev")
        agent.ok("context", "save", input="secret\n")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(os.lstat(p).st_mode)
    state = repo.path / ".thrum"
    assert mode(agent.cwd / ".thrum" / "identities" / "alice.json") == 0o600
    assert mode(agent.cwd / ".thrum" / "identities") == 0o700
    assert mode(state / "context" / "alice.md") == 0o600
    assert mode(state / "context" / "alice.preamble.md") == 0o600
    assert mode(state / "context") == 0o700
    assert mode(state / "config.json") == 0o600
    assert not list((state / "context").glob("*.tmp")) and not list((state / "context").glob(".*"))


# -- one error line for bad text ----------------------------------------------------------------------


def test_bad_text_inputs_give_one_error_line(pair, tmp_path):
    """F15: invalid UTF-8 in --body-file / context --file, and `--structured '{bad'`, printed tracebacks."""
    repo, alice, bob = pair
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok \xff bad")
    assert_error(alice.run("send", "--body-file", str(bad), "--to", "@bob"), "--body-file", "UTF-8")
    assert_error(alice.run("context", "save", "--file", str(bad)), "--file", "UTF-8")
    assert_error(alice.run("context", "preamble", "--file", str(bad)), "UTF-8")
    assert_error(
        repo.run(
            "quickstart",
            "--name",
            "zed",
            "--role",
            "dev",
            "--preamble-file",
            str(bad),
            cwd=repo.worktree("zed"),
        ),
        "--preamble-file",
        "UTF-8",
    )
    for structured in ("{bad", "[1,", "nul", "{", '{"a": [}'):
        assert_error(alice.run("send", "hi", "--to", "@bob", "--structured", structured), "--structured")
    assert_error(alice.run("send", "--body-file", str(tmp_path / "missing"), "--to", "@bob"), "cannot read")
    assert alice.json("inbox")["total"] == 0 and bob.json("inbox")["total"] == 0


def test_stdin_that_is_not_utf8_is_one_error_line(pair):
    _repo, alice, bob = pair
    import subprocess

    from conftest import THRUM

    for args in (["send", "--stdin", "--to", "@bob"], ["context", "save"]):
        proc = subprocess.run(
            THRUM + args,
            check=False,
            cwd=alice.cwd,
            env=alice.env,
            input=b"ok \xff bad",
            capture_output=True,
            timeout=60,
        )
        err = proc.stderr.decode()
        assert proc.returncode == 1 and err.startswith("Error: ") and len(err.splitlines()) == 1, err
        assert "UTF-8" in err
    assert bob.json("inbox")["total"] == 0


@pytest.mark.parametrize("content", [b"", b"garbage", b"[1, 2]", b"{", b"\xff\xfe"])
def test_a_broken_identity_file_is_an_error_naming_it(pair, content):
    _repo, alice, _bob = pair
    path = alice.cwd / ".thrum" / "identities" / "alice.json"
    path.write_bytes(content)
    for args in (("send", "hi", "--to", "@bob"), ("whoami",), ("inbox",)):
        assert_error(alice.run(*args), str(path))
        assert_error(alice.run(*args, THRUM_NAME="alice"), str(path))
    # quickstart --force repairs it.
    alice.ok("quickstart", "--name", "alice", "--role", "implementer", "--force")
    assert alice.json("whoami")["name"] == "alice"


@pytest.mark.parametrize("address", ["", "@", "  ", " @ "])
def test_an_empty_address_has_one_problem_and_is_never_looked_up(address):
    problem = names.empty_name_problem(address, "--from")
    assert problem == f"invalid --from {address!r}: the agent name must not be empty (use @name)"
    from thrum_engine.errors import InvalidName

    with pytest.raises(InvalidName, match="the agent name must not be empty"):
        names.named(address)


@pytest.mark.parametrize(
    ("address", "name"), [("bob", "bob"), ("@bob", "bob"), (" @bob ", "bob"), ("@@x", "@x")]
)
def test_an_address_names_the_agent_after_its_at(address, name):
    assert names.empty_name_problem(address) is None
    assert names.named(address) == name

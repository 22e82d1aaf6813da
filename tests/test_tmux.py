"""Agents in tmux as a user drives them: create, launch and prime, pane state read from the
stream, literal typing, kill/restart, sessions of other repos, teardown of a worktree with a
live pane, and a daemon restart. Real tmux on a private socket (`-L`), real daemon, and the
fake agent runtime from tests/fake_agent.py (one preset per builtin runtime)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Repo, Result, RunsThrum, fake_runtime, write_runtimes
from conftest import wait_for as _wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

FAKE_AGENT = Path(__file__).resolve().with_name("fake_agent.py")
STYLES = ("claude", "codex", "gemini", "opencode", "cursor", "auggie", "amp")
# What launch types: the prime entries the installer writes (integrations.entries, one table).
PRIME = {
    "claude": "/thrum-prime",
    "codex": "$thrum-prime",
    "gemini": "/thrum:prime",
    "opencode": "/thrum-prime",
    "cursor": "/thrum-prime",
    "auggie": "/thrum-prime",
    "amp": "Run `thrum prime` and follow what it says.",
}
DEADLINE = 20.0  # upper bound for any one condition; the usual wait is well under a second
STATUS_KEYS = {"name", "agent", "runtime", "state", "pane_state", "branch"}


# -- helpers -------------------------------------------------------------------------------


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(("THRUM_", "TMUX"))}


def tmux(sock: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["tmux", "-L", sock, *args], env=clean_env(), capture_output=True, text=True, timeout=30
    )


def tmux_sessions(sock: str) -> list[str]:
    """Every session on the private server ([] when no server runs)."""
    r = tmux(sock, "list-sessions", "-F", "#{session_name}")
    return r.stdout.split() if r.returncode == 0 else []


def has_session(sock: str, name: str) -> bool:
    return tmux(sock, "has-session", "-t", f"={name}").returncode == 0


def wait_for(cond, what: str, timeout: float = DEADLINE, interval: float = 0.1, last=None):
    """conftest's wait_for, with `what` first as these tests read best."""
    return _wait_for(cond, timeout, what, interval, last=last)


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def is_error(r: Result) -> bool:
    """The CLI convention for bad input: exit 1 and one `Error: ...` line on stderr."""
    lines = r.err.strip().splitlines()
    return r.code == 1 and len(lines) == 1 and lines[0].startswith("Error: ")


@dataclass
class TmuxRepo(RunsThrum):
    """A repo whose daemon drives the private tmux server `sock`, with fake runtime presets."""

    repo: Repo
    sock: str
    logs: Path

    @property
    def path(self) -> Path:
        return self.repo.path

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 90) -> Result:
        return self.repo.run(*args, cwd=cwd, timeout=timeout)

    def log(self, preset: str = "fake_claude") -> Path:
        return self.logs / f"{preset}.log"

    def log_lines(self, preset: str = "fake_claude") -> list[str]:
        return read_lines(self.log(preset))

    def wait_log(self, line: str, preset: str = "fake_claude", count: int = 1) -> list[str]:
        """Wait until `line` was typed into the fake runtime `count` times; returns its whole log."""

        def check():
            lines = self.log_lines(preset)
            return lines if lines.count(line) >= count else None

        return wait_for(check, f"{line!r} x{count} in the {preset} log", last=lambda: self.log_lines(preset))

    def sessions(self) -> list[dict]:
        return self.json("tmux", "status")["sessions"]

    def session(self, name: str) -> dict | None:
        return next((s for s in self.sessions() if s["name"] == name), None)

    def wait_state(self, name: str, state: str, timeout: float = DEADLINE) -> dict:
        seen: list = []

        def check():
            s = self.session(name)
            seen[:] = [s and s["pane"]]
            return s["pane"] if s and s["pane_state"] == state else None

        return wait_for(check, f"session {name} to be {state}", timeout=timeout, last=lambda: seen)

    def agents(self) -> dict[str, dict]:
        return {a["name"]: a for a in self.json("agent", "list")["agents"]}

    def create_and_launch(
        self,
        session: str,
        *,
        name: str,
        role: str = "impl",
        preset: str = "fake_claude",
        cwd: Path | None = None,
    ) -> Result:
        self.ok(
            "tmux",
            "create",
            session,
            "--cwd",
            str(cwd or self.path),
            "--name",
            name,
            "--role",
            role,
            "--runtime",
            preset,
        )
        r = self.ok("tmux", "launch", session)
        assert f"✓ Launched {preset} in session {session} and primed it" in r.out
        self.wait_log(PRIME[preset.removeprefix("fake_")], preset)
        self.wait_state(session, "idle")
        return r


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def kill_server(sock: str) -> None:
    """Kill the private server and wait (bounded) until its panes' processes have exited."""
    pids = [int(x) for x in tmux(sock, "list-panes", "-a", "-F", "#{pane_pid}").stdout.split() if x.isdigit()]
    tmux(sock, "kill-server")
    deadline = time.monotonic() + 10
    while any(not _gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for path in {Path(os.environ.get("TMUX_TMPDIR") or "/tmp"), Path("/tmp")}:
        try:
            (path / f"tmux-{os.getuid()}" / sock).unlink()
        except FileNotFoundError:
            pass


@pytest.fixture
def sock():
    """A private tmux server name; the server (if any was started) is killed and its socket removed."""
    name = f"thrum-test-{uuid.uuid4().hex}"
    yield name
    kill_server(name)


def tmux_repo(repo: Repo, sock: str) -> TmuxRepo:
    """`repo` initialised, its daemon driving the tmux server `sock`, with a fake preset per style."""
    repo.env.update(
        {
            "THRUM_TMUX__SOCKET_NAME": sock,
            "THRUM_TMUX__SHELL": "bash --norc --noprofile",
            "THRUM_TMUX__SILENCE_SECONDS": "0.5",
            "THRUM_TMUX__LAUNCH_TIMEOUT_SECONDS": "10",
            "HISTFILE": "/dev/null",  # pane shells neither read nor leave a history file
        }
    )
    r = repo.run("init")
    assert r.code == 0, r.err
    logs = repo.path.parent / "logs"
    logs.mkdir()
    presets = {
        f"fake_{style}": fake_runtime(logs / f"fake_{style}.log", style, "--style", style) for style in STYLES
    }
    write_runtimes(repo, presets)
    return TmuxRepo(repo, sock, logs)


@pytest.fixture
def make_trepo(sock, make_repo):
    """Repos (initialised, daemon env pointing at the private socket) on one shared tmux server.

    Set up after `sock`, so this teardown (which stops the daemons) runs before the server is killed.
    """
    made: list[TmuxRepo] = []

    def make(name: str = "repo") -> TmuxRepo:
        t = tmux_repo(make_repo(name), sock)
        made.append(t)
        return t

    yield make
    for t in made:
        t.repo.stop()
    kill_server(sock)  # before make_repo removes the temp dirs the panes' shells live in


@pytest.fixture(scope="module")
def trepo_once(make_module_repo):
    """One TmuxRepo (on its repo's own private server) for cases that each use sessions of their
    own and check only those."""
    repo = make_module_repo()
    t = tmux_repo(repo, repo.env["THRUM_TMUX__SOCKET_NAME"])
    yield t
    t.repo.stop()
    kill_server(t.sock)


@pytest.fixture
def trepo(make_trepo) -> TmuxRepo:
    return make_trepo()


# -- 1. create: identity first, clean environment, status ---------------------------------


def test_create_registers_the_identity_before_anything_runs(trepo):
    wt = trepo.repo.worktree("w1")
    r = trepo.ok(
        "tmux", "create", "s1", "--cwd", str(wt), "--name", "n1", "--role", "impl", "--runtime", "fake_claude"
    )
    assert "✓ Session created: s1" in r.out and "agent: @n1" in r.out
    # Right after create, before any launch: the identity is there, the runtime is not.
    ident = wt / ".thrum" / "identities" / "n1.json"
    assert ident.exists()
    record = json.loads(ident.read_text())
    assert record["name"] == "n1" and record["role"] == "impl" and record["runtime"] == "fake_claude"
    assert Path(record["worktree"]).resolve() == wt.resolve()
    agent = trepo.agents()["n1"]
    assert agent["role"] == "impl" and Path(agent["worktree"]).resolve() == wt.resolve()
    assert agent["runtime"] == "fake_claude"
    assert not trepo.log().exists(), "the runtime must not run before `tmux launch`"
    assert has_session(trepo.sock, "s1")
    s = trepo.session("s1")
    assert s["agent"] == "n1" and s["runtime"] == "fake_claude" and s["branch"] == "feature/w1"


def _pane_thrum_env(trepo: TmuxRepo, tmp_path: Path) -> list[str]:
    """Create a shell-runtime session after THRUM_ROLE was planted in the server's global env,
    and return the THRUM_* lines of the pane shell's environment."""
    # The server must be running to plant a variable in it: a first session starts it.
    trepo.ok("tmux", "create", "first", "--cwd", str(trepo.path), "--no-agent", "--runtime", "shell")
    assert tmux(trepo.sock, "set-environment", "-g", "THRUM_ROLE", "leaked").returncode == 0
    assert tmux(trepo.sock, "set-environment", "-g", "THRUM_MODULE", "leaked").returncode == 0
    trepo.ok(
        "tmux",
        "create",
        "envs",
        "--cwd",
        str(trepo.path),
        "--name",
        "envy",
        "--role",
        "impl",
        "--runtime",
        "shell",
    )
    out = tmp_path / "thrum-env.txt"
    trepo.ok("tmux", "send", "envs", f"env | grep ^THRUM_ > {out}.tmp; mv {out}.tmp {out}")
    wait_for(out.exists, f"{out} written by the pane's shell")
    return sorted(out.read_text().splitlines())


def test_the_pane_shell_has_its_own_thrum_name_and_not_the_servers(trepo, tmp_path):
    lines = _pane_thrum_env(trepo, tmp_path)
    assert "THRUM_NAME=envy" in lines
    assert not any(ln.startswith(("THRUM_ROLE=", "THRUM_MODULE=")) for ln in lines), lines


def test_the_pane_shell_inherits_no_thrum_variable_but_its_name(trepo, tmp_path):
    """CLI.md: a 'clean env'; the pane's only THRUM_* is its THRUM_NAME (the daemon's own THRUM_* settings,
    e.g. THRUM_TMUX__SOCKET_NAME, must not leak into the agent's shell either)."""
    assert _pane_thrum_env(trepo, tmp_path) == ["THRUM_NAME=envy"]


def test_status_lists_only_this_repos_sessions_with_the_documented_keys(trepo):
    trepo.ok(
        "tmux",
        "create",
        "mine",
        "--cwd",
        str(trepo.path),
        "--name",
        "me1",
        "--role",
        "impl",
        "--runtime",
        "fake_claude",
    )
    # A session on the same server that Thrum did not create.
    assert tmux(trepo.sock, "new-session", "-d", "-s", "stranger", "sh").returncode == 0
    sessions = trepo.sessions()
    assert [s["name"] for s in sessions] == ["mine"]
    s = sessions[0]
    assert set(s) >= STATUS_KEYS
    assert s["agent"] == "me1" and s["runtime"] == "fake_claude" and s["state"] == "alive"
    assert s["branch"] == "main"
    assert {"state", "source", "age_seconds"} <= set(s["pane"])
    assert s["pane_state"] == s["pane"]["state"]  # CLI.md: a word of its own (contract check, session 22)
    assert has_session(trepo.sock, "stranger")  # untouched
    human = trepo.ok("tmux", "status").out
    assert "mine" in human and "@me1" in human and "stranger" not in human


def test_status_works_from_a_checkout_holding_several_agents_sessions(trepo):
    """`tmux create` may register several agents in one checkout (here the main one, where the human sits);
    listing and killing sessions from there must not need an agent identity."""
    for n in ("one", "two"):
        trepo.ok(
            "tmux",
            "create",
            n,
            "--cwd",
            str(trepo.path),
            "--name",
            f"ag_{n}",
            "--role",
            "impl",
            "--runtime",
            "shell",
        )
    r = trepo.run("tmux", "status", "--json")
    assert r.code == 0, r.err
    assert [s["name"] for s in r.json["sessions"]] == ["one", "two"]
    r = trepo.run("tmux", "kill", "two")
    assert r.code == 0, r.err
    assert not has_session(trepo.sock, "two")


# -- 2. launch primes each runtime with its own text ---------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_launch_primes_each_runtime_with_its_own_text(trepo_once, style):
    """One engine for every style (each has its own session, agent and log): launching and
    priming one runtime is what each case checks, not the engine's start."""
    trepo, preset, session = trepo_once, f"fake_{style}", f"agent_{style}"
    trepo.ok(
        "tmux",
        "create",
        session,
        "--cwd",
        str(trepo.path),
        "--name",
        f"a1_{style}",
        "--role",
        "impl",
        "--runtime",
        preset,
    )
    r = trepo.json("tmux", "launch", session)
    assert r["launched"] is True and r["primed"] is True and r["runtime"] == preset
    lines = trepo.wait_log(PRIME[style], preset)
    assert lines == [PRIME[style]]
    trepo.wait_state(session, "idle")
    assert trepo.log_lines(preset) == [PRIME[style]]


def _typed_into_shell(trepo: TmuxRepo, session: str, tmp_path: Path) -> list[str]:
    """What the pane's shell received as commands: its history, read by one last command."""
    out = tmp_path / f"{session}-history.txt"
    trepo.ok("tmux", "send", session, f"history > {out}.tmp; mv {out}.tmp {out}")
    wait_for(out.exists, f"{out} written by the pane's shell")
    return [ln.split(None, 1)[1] for ln in out.read_text().splitlines() if ln.strip()][:-1]


def test_launching_the_shell_runtime_types_nothing(trepo, tmp_path):
    trepo.ok(
        "tmux",
        "create",
        "sh1",
        "--cwd",
        str(trepo.path),
        "--name",
        "shy",
        "--role",
        "impl",
        "--runtime",
        "shell",
    )
    r = trepo.json("tmux", "launch", "sh1", "--runtime", "shell")
    assert r["launched"] is False and r["primed"] is False
    assert (
        "Nothing to launch for runtime shell." in trepo.ok("tmux", "launch", "sh1", "--runtime", "shell").out
    )
    assert _typed_into_shell(trepo, "sh1", tmp_path) == []
    assert trepo.session("sh1")["runtime"] == "shell"


def test_launching_a_shell_session_without_a_runtime_flag_keeps_it_a_shell(trepo, tmp_path):
    """A session created with --runtime shell is a shell: `tmux launch S` must not type the default
    runtime (claude) into it."""
    trepo.ok(
        "tmux",
        "create",
        "sh2",
        "--cwd",
        str(trepo.path),
        "--name",
        "shy2",
        "--role",
        "impl",
        "--runtime",
        "shell",
    )
    r = trepo.json("tmux", "launch", "sh2")
    assert r["runtime"] == "shell" and r["launched"] is False, r
    assert _typed_into_shell(trepo, "sh2", tmp_path) == []
    assert trepo.session("sh2")["runtime"] == "shell"


# -- 3. pane state from the stream ----------------------------------------------------------


def test_pane_state_follows_the_runtime_busy_dialog_and_back(trepo):
    trepo.create_and_launch("ps", name="pst")
    idle = trepo.session("ps")["pane"]
    assert idle["state"] == "idle" and "prompt" in idle["source"]
    assert isinstance(idle["age_seconds"], (int, float)) and idle["age_seconds"] >= 0

    trepo.ok("tmux", "send", "ps", "busy 3")
    working = trepo.wait_state("ps", "working")
    assert "busy" in working["source"] or "output" in working["source"]
    trepo.wait_state("ps", "idle")
    assert trepo.log_lines()[-1] == "busy 3"

    trepo.ok("tmux", "send", "ps", "dialog")
    blocked = trepo.wait_state("ps", "blocked")
    assert "permission dialog" in blocked["source"]
    human = trepo.ok("tmux", "status").out
    assert "blocked" in human and "(pane: permission dialog)" in human
    member = next(m for m in trepo.json("team")["members"] if m["name"] == "pst")
    assert member["session"] == "ps" and member["presence"] == "blocked"
    assert (
        member["pane_state"]["state"] == "blocked" and "permission dialog" in member["pane_state"]["source"]
    )
    assert member["pane_state"]["age_seconds"] >= 0

    trepo.ok("tmux", "send", "ps", "1")
    trepo.wait_log("answer: 1")
    back = trepo.wait_state("ps", "idle")
    assert "prompt" in back["source"]
    assert trepo.log_lines() == ["/thrum-prime", "busy 3", "dialog", "answer: 1"]


def test_a_dialog_erased_in_place_is_not_read_as_still_open(trepo):
    """A TUI erases its answered dialog in place and draws nothing after it: the stream still ends
    with the dialog, the screen does not (walk A 4: blocked long after the answer)."""
    trepo.create_and_launch("po", name="pot")
    trepo.wait_state("po", "idle")
    trepo.ok("tmux", "send", "po", "dialog-over")
    assert "permission dialog" in trepo.wait_state("po", "blocked")["source"]
    trepo.ok("tmux", "send", "po", "1")
    trepo.wait_log("answer: 1")
    back = trepo.wait_state("po", "idle")
    assert "on screen" in back["source"]
    trepo.ok("daemon", "restart", timeout=60)  # an engine adopting the pane reads it the same way
    trepo.wait_state("po", "idle")


# -- 4. typing is literal --------------------------------------------------------------------


def _send_all(trepo: TmuxRepo, session: str, texts: list[str]) -> list[str]:
    """Type each text into the fake runtime; return what it received (its log after the prime)."""
    for text in texts:
        r = trepo.ok("tmux", "send", session, text)
        assert f"✓ Sent {len(text)} characters to {session}" in r.out
    want = 1 + len(texts)
    wait_for(
        lambda: len(trepo.log_lines()) >= want, f"{want} lines in the fake agent's log", last=trepo.log_lines
    )
    return trepo.log_lines()[1:]


def test_send_types_shell_metacharacters_literally(trepo, tmp_path):
    trepo.create_and_launch("lit", name="literal")
    p = tmp_path / "pwned"
    texts = [
        f"$(touch {p}1)",
        f"`touch {p}2`",
        f"hello; touch {p}3",
        f"say \"double\" and 'single' && touch {p}4 | cat > /dev/null",
        f"a \\; b ; \\\\; c {{}} ${{HOME}} $HOME * ~ # touch {p}5",
    ]
    assert _send_all(trepo, "lit", texts) == texts
    assert not list(tmp_path.glob("pwned*")), "a typed text was executed"
    assert not list(trepo.path.glob("pwned*"))


def test_send_keeps_a_semicolon_that_ends_the_text_or_a_typed_piece(trepo, tmp_path):
    """tmux reads an argument ending in ';' as a command separator: the typed text must still arrive whole."""
    trepo.create_and_launch("semi", name="semi")
    p = tmp_path / "pwned"
    texts = [
        f"touch {p}1;",
        "x" * 511
        + f"; touch {p}2; "
        + "y" * 100,  # long text is typed in 512-char pieces; ';' ends the first
        "wait;",
        "ends with a backslash-semicolon \\;",
        ";",
    ]
    assert _send_all(trepo, "semi", texts) == texts
    assert not list(tmp_path.glob("pwned*"))


def test_capture_prints_the_last_lines_of_the_screen(trepo):
    trepo.create_and_launch("cap", name="cap")
    for i in range(8):  # each answer takes three screen lines: rule, echoed input, "ok: ..."
        trepo.ok("tmux", "send", "cap", f"line {i}")
    trepo.wait_log("line 7")

    def screen():
        r = trepo.ok("tmux", "capture", "cap", "--lines", "20")
        return r.out.splitlines() if "ok: line 7" in r.out else None

    lines = wait_for(screen, "the fake agent's last answer on the captured screen")
    assert len(lines) == 20, lines
    assert lines[-1].strip() == "❯" and lines[-2].startswith("──") and "ok: line 7" in lines[-3]
    assert lines[-4].rstrip().endswith("❯ line 7")
    assert not any("fake claude agent ready" in ln for ln in lines)  # scrolled out of the last 20
    assert trepo.json("tmux", "capture", "cap", "--lines", "3")["lines"] == lines[-3:]


# -- 5. kill, and sessions of another repo on the same server -----------------------------


def _plant_log_link(trepo: TmuxRepo, session: str, tmp_path: Path) -> tuple[Path, Path]:
    """`.thrum/var/panes/<session>.log` made a link to a file of the user's; (the link, that file)."""
    victim = tmp_path / "victim"
    victim.write_text("the user's own file\n")
    link = trepo.path / ".thrum" / "var" / "panes" / f"{session}.log"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(victim)
    return link, victim


@pytest.mark.parametrize("agent", [["--no-agent"], ["--name", "ev1", "--role", "impl"]])
def test_a_planted_pane_log_link_is_refused_before_anything_is_created(trepo, tmp_path, agent):
    """R8: the link made `tmux create` fail with `internal error: OSError` after the tmux session
    existed, and every listing failed after it. Refused up front: no session, no agent, one line."""
    link, victim = _plant_log_link(trepo, "evep", tmp_path)
    r = trepo.run("tmux", "create", "evep", "--cwd", str(trepo.path), "--runtime", "shell", *agent)
    assert is_error(r), r.err
    assert f"{link} is a symlink: remove it" in r.err
    assert not has_session(trepo.sock, "evep")
    assert "ev1" not in trepo.agents()
    assert victim.read_text() == "the user's own file\n" and link.is_symlink()
    assert trepo.json("tmux", "list")["sessions"] == []
    link.unlink()
    trepo.ok("tmux", "create", "evep", "--cwd", str(trepo.path), "--runtime", "shell", *agent)
    assert trepo.session("evep") is not None


def test_a_link_planted_under_a_live_session_is_listed_as_a_problem_not_a_failed_listing(trepo, tmp_path):
    for name in ("kept", "taken"):
        trepo.ok("tmux", "create", name, "--cwd", str(trepo.path), "--no-agent", "--runtime", "shell")
    trepo.repo.stop()  # the next engine discovers both sessions anew
    link, victim = _plant_log_link(trepo, "taken", tmp_path)
    r = trepo.ok("tmux", "list")
    assert "kept" in r.out and f"! taken: not watched: {link} is a symlink: remove it" in r.out
    listed = trepo.json("tmux", "list")
    assert [s["name"] for s in listed["sessions"]] == ["kept"]
    assert listed["problems"] == [
        {
            "session": "taken",
            "problem": f"{link} is a symlink: remove it (Thrum never writes its files through a link)",
        }
    ]
    assert tmux(trepo.sock, "send-keys", "-t", "taken", "echo through-the-link", "Enter").returncode == 0
    time.sleep(0.5)
    assert victim.read_text() == "the user's own file\n"  # the pipe was not started again through it
    link.unlink()
    wait_for(lambda: trepo.session("taken"), "the session watched again once the link is gone")


def test_kill_removes_the_session(trepo):
    trepo.ok(
        "tmux",
        "create",
        "doomed",
        "--cwd",
        str(trepo.path),
        "--name",
        "dd",
        "--role",
        "impl",
        "--runtime",
        "shell",
    )
    assert trepo.session("doomed") is not None
    r = trepo.ok("tmux", "kill", "doomed")
    assert "✓ Killed session doomed" in r.out
    assert trepo.session("doomed") is None
    assert not has_session(trepo.sock, "doomed")
    assert is_error(trepo.run("tmux", "kill", "doomed"))


def test_another_repos_session_is_neither_shown_nor_taken_over(make_trepo):
    mine = make_trepo("mine")
    other = make_trepo("other")
    other.ok(
        "tmux",
        "create",
        "shared",
        "--cwd",
        str(other.path),
        "--name",
        "bob",
        "--role",
        "rev",
        "--runtime",
        "shell",
    )
    mine.ok(
        "tmux",
        "create",
        "own",
        "--cwd",
        str(mine.path),
        "--name",
        "al",
        "--role",
        "impl",
        "--runtime",
        "shell",
    )
    assert [s["name"] for s in mine.sessions()] == ["own"]
    assert [s["name"] for s in other.sessions()] == ["shared"]

    for extra in ([], ["--force"]):
        r = mine.run(
            "tmux",
            "create",
            "shared",
            "--cwd",
            str(mine.path),
            "--name",
            "carol",
            "--role",
            "impl",
            "--runtime",
            "shell",
            *extra,
        )
        assert is_error(r) and "not this repo's" in r.err, r.err
    assert "carol" not in mine.agents()
    for args in (["tmux", "kill", "shared"], ["tmux", "send", "shared", "hi"], ["tmux", "capture", "shared"]):
        assert is_error(mine.run(*args)), args
    # The other repo's session lives on, still its own.
    assert has_session(mine.sock, "shared")
    s = other.session("shared")
    assert s["agent"] == "bob" and s["state"] == "alive"


# -- 6. restart -------------------------------------------------------------------------------


def test_restart_relaunches_and_reprimes_but_not_while_working(trepo):
    trepo.create_and_launch("rs", name="rst")
    r = trepo.ok("tmux", "restart", "rs")
    assert "✓ Launched fake_claude in session rs and primed it" in r.out
    assert trepo.wait_log("/thrum-prime", count=2) == ["/thrum-prime", "/thrum-prime"]
    trepo.wait_state("rs", "idle")

    trepo.ok("tmux", "send", "rs", "busy 8")  # long enough to still be busy when restart is asked
    trepo.wait_log("busy 8")
    trepo.wait_state("rs", "working")
    r = trepo.run("tmux", "restart", "rs")
    assert is_error(r) and "working" in r.err and "--force" in r.err
    assert trepo.log_lines().count("/thrum-prime") == 2

    r = trepo.ok("tmux", "restart", "rs", "--force")
    assert "primed it" in r.out
    trepo.wait_log("/thrum-prime", count=3)
    trepo.wait_state("rs", "idle")


# -- 7. start from inside a worktree -------------------------------------------------------


def test_start_creates_and_launches_in_the_current_worktree(trepo):
    wt = trepo.repo.worktree("w7")
    r = trepo.ok("tmux", "start", "--name", "n7", "--role", "impl", "--runtime", "fake_claude", cwd=wt)
    assert "✓ Session created: n7" in r.out and "✓ Launched fake_claude in session n7 and primed it" in r.out
    trepo.wait_log("/thrum-prime")
    s = trepo.session("n7")
    assert s["agent"] == "n7" and s["runtime"] == "fake_claude" and s["branch"] == "feature/w7"
    assert Path(s["cwd"]).resolve() == wt.resolve()
    assert Path(trepo.agents()["n7"]["worktree"]).resolve() == wt.resolve()
    assert (wt / ".thrum" / "identities" / "n7.json").exists()
    trepo.wait_state("n7", "idle")


def test_a_session_is_not_started_beside_an_agent_that_relies_on_being_the_only_identity(trepo):
    """`tmux start --name X` (and `tmux create`) in a worktree whose agent has no THRUM_NAME (it is
    found as the worktree's only identity file) added a second identity there: the pane's agent
    resolved by its THRUM_NAME, but the agent already there no longer did (walk C, A3)."""
    wt = trepo.repo.worktree("w9")
    trepo.ok("quickstart", "--name", "solo", "--role", "impl", "--no-agent-pid", cwd=wt)
    assert trepo.ok("whoami", "--field", "name", cwd=wt).out == "solo\n"
    for args in (
        ("tmux", "start", "--name", "st1", "--role", "impl", "--runtime", "fake_claude"),
        ("tmux", "create", "st1", "--cwd", str(wt), "--name", "st1", "--role", "impl", "--runtime", "claude"),
    ):
        r = trepo.run(*args, cwd=wt)
        assert is_error(r) and "@solo" in r.err and "--force" in r.err, r.err + r.out
    assert trepo.sessions() == []
    assert "st1" not in trepo.agents()
    assert [p.name for p in (wt / ".thrum" / "identities").glob("*.json")] == ["solo.json"]
    assert not (wt / "CLAUDE.md").exists(), "no runtime files for a refused session"
    assert trepo.ok("whoami", "--field", "name", cwd=wt).out == "solo\n"

    # Sessions' agents carry THRUM_NAME: a second session beside the first one's agent is fine.
    other = trepo.repo.worktree("w10")
    trepo.ok(
        "tmux", "create", "p1", "--cwd", str(other), "--name", "p1", "--role", "impl", "--runtime", "shell"
    )
    trepo.ok(
        "tmux", "create", "p2", "--cwd", str(other), "--name", "p2", "--role", "impl", "--runtime", "shell"
    )
    assert sorted(p.name for p in (other / ".thrum" / "identities").glob("*.json")) == ["p1.json", "p2.json"]


# -- 8. bad input ----------------------------------------------------------------------------


# (case, session, flags over the good ones, what the error says)
BAD_CREATE = [
    ("session a.b", "a.b", {}, "invalid session name"),
    ("session a:b", "a:b", {}, "invalid session name"),
    ("session x;y", "x;y", {}, "invalid session name"),
    ("session $(...)", "$(touch {pwned})", {}, "invalid session name"),
    ("runtime x;y", "s8", {"--runtime": "x;y"}, "invalid runtime name"),
    ("runtime ../x", "s8", {"--runtime": "../x"}, "invalid runtime name"),
    ("unknown runtime", "s8", {"--runtime": "nosuch"}, "unknown runtime"),
    ("missing cwd", "s8", {"--cwd": "{tmp}/does-not-exist"}, "not a directory"),
    ("cwd in another repo", "s8", {"--cwd": "{other_repo}"}, "not inside a worktree"),
    ("cwd outside any repo", "s8", {"--cwd": "{plain_dir}"}, "not inside a worktree"),
    ("name equals role", "s8", {"--name": "impl"}, "must differ from its role"),
]
BAD_COMMANDS = [
    ["tmux", "start", "--name", "a.b", "--role", "impl", "--runtime", "shell"],
    ["tmux", "start", "--name", "n8", "--role", "impl", "--runtime", "../x"],
    ["tmux", "start", "--name", "n8", "--role", "impl", "--runtime", "nosuch"],
    ["tmux", "launch", "x;y"],
    ["tmux", "launch", "nope"],
    ["tmux", "send", "a:b", "hello"],
    ["tmux", "capture", "$(x)"],
    ["tmux", "kill", "a.b"],
    ["tmux", "restart", "nope"],
]


def test_bad_input_is_refused_with_one_error_line_and_nothing_is_created(trepo, tmp_path):
    other_repo, plain_dir = tmp_path / "other-repo", tmp_path / "plain"
    plain_dir.mkdir()
    subprocess.run(["git", "init", "-q", str(other_repo)], check=True, env=trepo.repo.env)
    pwned = tmp_path / "pwned"
    fmt = {"pwned": pwned, "tmp": tmp_path, "other_repo": other_repo, "plain_dir": plain_dir}
    problems = []
    for case, session, over, says in BAD_CREATE:
        flags = {"--cwd": str(trepo.path), "--name": "n8", "--role": "impl", "--runtime": "shell", **over}
        args = ["tmux", "create", session.format(**fmt)]
        for k, v in flags.items():
            args += [k, v.format(**fmt)]
        r = trepo.run(*args)
        if not (is_error(r) and says in r.err):
            problems.append(f"{case}: exit {r.code}, stderr {r.err!r} (wanted 'Error: ...{says}...')")
    for args in BAD_COMMANDS:
        r = trepo.run(*args)
        if not is_error(r):
            problems.append(f"{' '.join(args)}: exit {r.code}, stderr {r.err!r}")
    assert not problems, "\n".join(problems)
    assert trepo.sessions() == []
    assert tmux_sessions(trepo.sock) == []
    assert not {"n8", "impl", "a_b"} & set(trepo.agents())
    assert not list((trepo.path / ".thrum" / "identities").glob("*.json"))
    assert not pwned.exists() and not (trepo.path / "x").exists()


def test_launch_with_a_bad_runtime_is_refused_and_types_nothing(trepo, tmp_path):
    trepo.ok(
        "tmux",
        "create",
        "bl",
        "--cwd",
        str(trepo.path),
        "--name",
        "bl",
        "--role",
        "impl",
        "--runtime",
        "shell",
    )
    for rt in ("x;y", "../x", "nosuch"):
        assert is_error(trepo.run("tmux", "launch", "bl", "--runtime", rt)), rt
    assert trepo.session("bl")["runtime"] == "shell"
    assert _typed_into_shell(trepo, "bl", tmp_path) == []


# -- 9. worktree teardown and live panes ----------------------------------------------------


def _worktree(trepo: TmuxRepo, name: str) -> dict | None:
    return next((w for w in trepo.json("worktree", "list") if w["name"] == name), None)


def test_worktree_teardown_refuses_a_live_pane_and_force_kills_it(trepo):
    trepo.ok("worktree", "create", "w", "--name", "wa", "--role", "impl")
    path = Path(_worktree(trepo, "w")["path"])
    trepo.ok(
        "tmux",
        "create",
        "w",
        "--cwd",
        str(path),
        "--name",
        "wa",
        "--role",
        "impl",
        "--runtime",
        "shell",
        "--force",
    )
    assert trepo.session("w")["agent"] == "wa"

    r = trepo.run("worktree", "teardown", "w")
    assert is_error(r) and "live pane" in r.err and "w" in r.err, r.err
    assert path.is_dir() and _worktree(trepo, "w") is not None
    assert has_session(trepo.sock, "w")

    r = trepo.ok("worktree", "teardown", "w", "--force")
    assert not path.exists()
    assert _worktree(trepo, "w") is None
    assert trepo.session("w") is None and not has_session(trepo.sock, "w")
    assert trepo.sessions() == [] and tmux_sessions(trepo.sock) == []  # every pane working there went too


def test_worktree_create_with_an_identity_creates_the_agents_session(trepo):
    """CLI.md: `worktree create NAME --name --role ...` 'with an identity also creates the agent's tmux session'."""
    trepo.ok("worktree", "create", "wt2", "--name", "wb", "--role", "impl", "--runtime", "shell")
    path = Path(_worktree(trepo, "wt2")["path"]).resolve()
    mine = [s for s in trepo.sessions() if s["agent"] == "wb"]
    assert len(mine) == 1, trepo.sessions()
    assert Path(mine[0]["cwd"]).resolve() == path and mine[0]["state"] == "alive"


def test_a_worktree_create_refused_for_another_repos_session_name_leaves_nothing_behind(make_trepo):
    """Walk bug 4: the agent's session name was taken by another repo's agent of the same name (tmux
    names sessions per server): the create failed after the worktree, its branch and the agent
    were made, and left them. Refused before anything is made; and a tmux create likewise."""
    x, y = make_trepo("x"), make_trepo("y")
    x.ok("worktree", "create", "wt2", "--name", "zz", "--role", "worker", "--runtime", "shell")
    branches_before = y.repo.git("branch", "--list")
    r = y.run("worktree", "create", "other2", "--name", "zz", "--role", "worker", "--runtime", "shell")
    assert is_error(r) and "tmux session zz exists and is not this repo's" in r.err, r.err
    assert _worktree(y, "other2") is None
    assert y.repo.git("branch", "--list") == branches_before and "feature/other2" not in branches_before
    assert "zz" not in y.agents()
    assert y.sessions() == [] and x.session("zz")["agent"] == "zz"
    # the same name again, once free, works: nothing half-made is in the way
    y.ok("worktree", "create", "other2", "--name", "zz2", "--role", "worker", "--runtime", "shell")
    wt = y.repo.worktree("w4")
    r = y.run(
        "tmux", "create", "zz", "--cwd", str(wt), "--name", "yy", "--role", "w", "--runtime", "fake_claude"
    )
    assert is_error(r) and "not this repo's" in r.err, r.err
    assert "yy" not in y.agents() and not (wt / "CLAUDE.md").exists() and not (wt / ".claude").exists()


# -- 10. daemon restart ------------------------------------------------------------------------


def test_sessions_survive_a_daemon_restart_and_state_still_updates(trepo):
    trepo.create_and_launch("dr", name="drr")
    trepo.ok(
        "tmux",
        "create",
        "drs",
        "--cwd",
        str(trepo.repo.worktree("w10")),
        "--name",
        "drs",
        "--role",
        "impl",
        "--runtime",
        "shell",
    )
    pid = trepo.repo.daemon_pid()
    trepo.ok("daemon", "restart", timeout=60)
    assert trepo.repo.daemon_pid() not in (None, pid)

    by_name = {s["name"]: s for s in trepo.sessions()}
    assert set(by_name) == {"dr", "drs"}
    assert (by_name["dr"]["agent"], by_name["dr"]["runtime"], by_name["dr"]["state"]) == (
        "drr",
        "fake_claude",
        "alive",
    )
    assert (by_name["drs"]["agent"], by_name["drs"]["runtime"]) == ("drs", "shell")
    trepo.wait_state("dr", "idle")

    trepo.ok("tmux", "send", "dr", "busy 2")
    trepo.wait_log("busy 2")
    working = trepo.wait_state("dr", "working")
    assert "busy" in working["source"] or "output" in working["source"]
    trepo.wait_state("dr", "idle")
    trepo.ok("tmux", "send", "dr", "dialog")
    trepo.wait_state("dr", "blocked")
    trepo.ok("tmux", "send", "dr", "1")
    trepo.wait_log("answer: 1")
    trepo.wait_state("dr", "idle")


def test_attach_commands_for_each_placement(tmp_path):
    """Outside tmux: attach. Inside another server: attach nested, told the doubled prefix. Inside
    the agents' server: the CLI switches its client, the console opens a popup (walk bug 2)."""
    from thrum_engine.tmux.attach import attach_command

    env = {"TMUX_TMPDIR": str(tmp_path), "PATH": "/usr/bin"}
    own = f"{tmp_path}/tmux-{os.getuid()}/agents,123,0"
    outside = attach_command("agents", "s1", env)
    assert outside.argv[:5] == ["tmux", "-L", "agents", "attach-session", "-t"] and not outside.popup
    nested = attach_command("agents", "s1", {**env, "TMUX": "/tmp/other,1,0"})
    assert "TMUX" not in nested.env and nested.argv[-1] == "thrum: C-b C-b d returns to the console"
    switched = attach_command("agents", "s1", {**env, "TMUX": own})
    assert switched.argv[3] == "switch-client" and not switched.popup
    popup = attach_command("agents", "s1", {**env, "TMUX": own}, keep_screen=True)
    assert popup.argv[3] == "display-popup" and popup.popup
    assert "env -u TMUX -u TMUX_PANE tmux -L agents attach-session -t =s1" in popup.argv[-1]


# -- 12. runtime health (walk bugs 6, 9, 22) ----------------------------------------------------


def _add_preset(trepo: TmuxRepo, name: str, entry: dict) -> None:
    path = trepo.path / ".thrum" / "runtimes.json"
    data = json.loads(path.read_text())
    data["presets"][name] = entry
    path.write_text(json.dumps(data))


def test_a_runtime_missing_from_the_panes_path_fails_at_once_and_types_nothing(trepo, tmp_path):
    _add_preset(trepo, "ghost", {"extends": "claude", "command": ["thrum-no-such-runtime"]})
    trepo.ok(
        "tmux",
        "create",
        "gh",
        "--cwd",
        str(trepo.path),
        "--name",
        "gh",
        "--role",
        "impl",
        "--runtime",
        "shell",
    )
    r = trepo.run("tmux", "launch", "gh", "--runtime", "ghost")
    assert is_error(r) and "thrum-no-such-runtime: command not found" in r.err, r.err
    assert trepo.session("gh")["runtime"] == "shell"
    assert is_error(trepo.run("tmux", "restart", "gh", "--runtime", "ghost"))
    r = trepo.run("tmux", "start", "--name", "gh2", "--role", "impl", "--runtime", "ghost")
    assert is_error(r) and "command not found" in r.err
    assert not has_session(trepo.sock, "gh2") and "gh2" not in trepo.agents()
    assert _typed_into_shell(trepo, "gh", tmp_path) == []


def rpc(trepo: TmuxRepo, method: str, params: dict) -> dict:
    """An engine method with no CLI command of its own (the console calls it), from the repo (the
    engine knows a caller by its working directory)."""
    code = (
        "import json, sys; from thrum_engine.rpc.client import Client; c = Client(sys.argv[1], timeout=60);"
        " print(json.dumps(c.call(sys.argv[2], json.loads(sys.argv[3]))))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(trepo.repo.var / "thrum.sock"), method, json.dumps(params)],
        cwd=trepo.path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip().splitlines()[-1])
    return json.loads(r.stdout)


def test_interrupt_sends_the_runtimes_own_key(trepo):
    trepo.create_and_launch("ik", name="ik")  # claude-like: Escape (a double C-c quits claude)
    r = rpc(trepo, "tmux.interrupt", {"session": "ik"})
    assert r["keys"] == "Escape"
    trepo.ok("tmux", "send", "ik", "after")
    assert trepo.wait_log("\x1bafter")[-1] == "\x1bafter"  # the Escape reached the runtime as a key


def _presence(trepo: TmuxRepo, name: str) -> str:
    return next(m for m in trepo.json("team", "--all")["members"] if m["name"] == name)["presence"]


def test_a_session_that_ended_while_no_engine_watched_is_no_session_after_a_restart(trepo):
    """The engine learned of an ended session only by watching it end: one that ended while it was
    stopped (killed by hand, the server gone, a hand-over) stayed "online" in `team` (walk A, 9)."""
    trepo.create_and_launch("hz", name="hz")
    assert _presence(trepo, "hz") == "idle"
    trepo.repo.stop()
    subprocess.run(["tmux", "-L", trepo.sock, "kill-session", "-t", "hz"], check=True)
    assert _presence(trepo, "hz") == "no session"  # the next engine reads the agent's identity file


def test_team_shows_exited_and_no_session_and_the_agent_relaunches_in_place(trepo):
    trepo.create_and_launch("hx", name="hx")
    assert _presence(trepo, "hx") == "idle"
    trepo.ok("tmux", "send", "hx", "exit")  # the runtime quits: the pane is its shell again
    wait_for(lambda: _presence(trepo, "hx") == "exited", "hx exited", last=lambda: _presence(trepo, "hx"))
    trepo.ok("tmux", "kill", "hx")
    assert _presence(trepo, "hx") == "no session"
    before = trepo.agents()["hx"]

    r = trepo.json("tmux", "launch", "hx")  # the agent, not a session: a new session in its worktree
    assert r["relaunched"] is True and r["launched"] is True and r["primed"] is True
    s = trepo.session("hx")
    assert s["agent"] == "hx" and s["runtime"] == "fake_claude" and s["cwd"] == before["worktree"]
    assert trepo.log_lines().count(PRIME["claude"]) == 2
    after = trepo.agents()["hx"]
    assert (after["worktree"], after["role"], after["runtime"]) == (before["worktree"], "impl", "fake_claude")
    trepo.wait_state("hx", "idle")
    assert _presence(trepo, "hx") == "idle"
    assert is_error(trepo.run("tmux", "launch", "nobody"))


def test_a_runtime_that_exits_at_start_is_told_at_once_not_after_the_launch_timeout(trepo):
    _add_preset(
        trepo,
        "broken",
        {"extends": "claude", "command": ["sh", "-c", "echo 'Please run /login: not logged in'; exit 1"]},
    )
    trepo.ok(
        "tmux",
        "create",
        "br",
        "--cwd",
        str(trepo.path),
        "--name",
        "br",
        "--role",
        "impl",
        "--runtime",
        "shell",
    )
    started = time.monotonic()
    r = trepo.run("tmux", "launch", "br", "--runtime", "broken")  # the fixture's launch timeout: 10 s
    # walkC B7: a runtime back at the shell was not launched: one Error line with what the pane
    # said, exit 1, and no success line for a script to grep.
    assert is_error(r), (r.code, r.out, r.err)
    assert "broken exited at once in session br: Please run /login: not logged in" in r.err, r.err
    assert "Launched" not in r.out
    assert time.monotonic() - started < 8
    assert _presence(trepo, "br") == "exited"


def test_answer_types_the_runtimes_keys_only_while_the_dialog_is_open(trepo):
    _add_preset(trepo, "fake_numbered", {"extends": "fake_claude", "approve": "1 Enter", "deny": "3 Enter"})
    trepo.ok(
        "tmux",
        "create",
        "an",
        "--cwd",
        str(trepo.path),
        "--name",
        "an",
        "--role",
        "impl",
        "--runtime",
        "fake_numbered",
    )
    trepo.ok("tmux", "launch", "an")
    trepo.wait_state("an", "idle")
    with pytest.raises(RuntimeError, match="no longer shows a permission dialog"):
        rpc(trepo, "tmux.answer", {"session": "an", "approve": True})
    assert "1" not in trepo.log_lines()  # nothing typed into an idle runtime
    trepo.ok("tmux", "send", "an", "dialog")
    trepo.wait_state("an", "blocked")
    assert rpc(trepo, "tmux.answer", {"session": "an", "approve": False})["keys"] == "3 Enter"
    trepo.wait_log("answer: 3")
    trepo.wait_state("an", "idle")


def test_read_only_commands_never_start_the_engine(repo):
    """Walk bug 17: `runtime list` after `init --no-daemon` started a daemon (the console then
    attached to it instead of hosting)."""
    from conftest import daemon_pids

    repo.ok("init", "--no-daemon")
    assert daemon_pids(repo) == []
    (repo.path / ".thrum" / "runtimes.json").write_text(
        '{"presets": {"mine": {"command": ["mine-cli"], "description": "a preset of this repo"}}}'
    )
    listed = repo.json("runtime", "list")
    assert {"claude", "shell", "mine"} <= {r["name"] for r in listed["runtimes"]} and listed["default"]
    assert repo.json("runtime", "show", "mine")["runtime"]["command"] == ["mine-cli"]
    assert repo.run("config", "show").code == 0
    assert repo.run("runtime", "show", "nosuch").code == 1
    assert daemon_pids(repo) == []


def test_thrum_resolves_in_a_pane_whose_server_path_lacks_it(trepo, tmp_path):
    """Walk bug 11: installed the README's way (a venv never activated) or with a tmux server
    started earlier, panes got `thrum: command not found` and the nudge's command failed."""
    # The engine started by a `thrum` run by its full path, from a shell whose PATH lacks its venv.
    trepo.repo.ok("daemon", "stop")
    bare = {
        **trepo.repo.env,
        "PATH": os.pathsep.join(
            d for d in ("/usr/local/bin", "/usr/bin", "/bin") if d != str(Path(sys.executable).parent)
        ),
    }
    thrum = str(Path(sys.executable).parent / "thrum")
    assert (
        subprocess.run(
            [thrum, "daemon", "start"], cwd=trepo.path, env=bare, capture_output=True, timeout=60
        ).returncode
        == 0
    )
    made = subprocess.run(
        [
            thrum,
            "tmux",
            "create",
            "agentp",
            "--cwd",
            str(trepo.path),
            "--name",
            "pathy",
            "--role",
            "impl",
            "--runtime",
            "shell",
        ],
        cwd=trepo.path,
        env=bare,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    out = tmp_path / "which-thrum.txt"
    trepo.ok("tmux", "send", "agentp", f"command -v thrum > {out}.tmp; mv {out}.tmp {out}")
    wait_for(out.exists, f"{out} written by the pane's shell")
    found = out.read_text().strip()
    assert found and Path(found).resolve() == (Path(sys.executable).parent / "thrum").resolve()


# -- the pane watcher runs only while there are panes to watch -----------------------------


def _wakeups_per_second(pid: int, seconds: float = 1.0) -> float:
    """The engine's voluntary context switches per second, all threads (a sleeping thread that
    polls wakes a hundred times a second; an idle event loop a few)."""

    def switches() -> int:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
            except OSError:  # a thread that ended while we looked
                continue
            total += int(status.split("voluntary_ctxt_switches:")[1].split()[0])
        return total

    before = switches()
    time.sleep(seconds)
    return (switches() - before) / seconds


def test_an_engine_without_panes_sleeps_and_the_watcher_comes_and_goes_with_sessions(trepo):
    trepo.ok("tmux", "status")  # the engine is up
    pid = trepo.repo.daemon_pid()
    assert pid is not None
    time.sleep(1.0)  # start-up's own work (the first sync cycle, discovery) is over
    idle = _wakeups_per_second(pid)
    trepo.create_and_launch("wt", name="watched")  # its pane's output is followed to "idle"
    trepo.ok("tmux", "kill", "wt")
    time.sleep(0.5)
    after = _wakeups_per_second(pid)
    # Before, the watcher's thread woke every 10 ms from the engine's start: ~100 times a second.
    assert idle < 30, f"idle engine woke {idle:.0f} times a second"
    assert after < 30, f"the watcher outlived the last session ({after:.0f}/s)"

"""The real console (`python -m thrum_tui`) in a real terminal: a pane of a private tmux server of
its own, driven with `send-keys` and read with `capture-pane`, exactly as a user's keyboard and
eyes would. The agents' tmux sessions live on the repo's other private server
(THRUM_TMUX__SOCKET_NAME), so attaching from the console nests one tmux client in another.

Covered: compose and send (checked with the agents' real CLI), mail arriving on screen without a
keypress, attach to an agent's pane and detach back to the same state, and quitting: the hand-over
to a headless daemon, or (`--stop-engine`) no engine left at all."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import daemon_pids, is_alive, kill_tmux, wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

OPERATOR = "ada_lovelace"  # from `git config user.name "Ada Lovelace"`
DEADLINE = 30.0  # upper bound for any one condition; the usual wait is well under a second
WIDTH, HEIGHT = 160, 45
TEAM_ROW = re.compile(r"^│ (\S)\s+(you \(@\w+\)|\w+)\s")  # "│ ●  bob   online 2s ..." (not the header)
CONVERSATION_TITLE = re.compile(r"╭─ (@\w+|you \(inbox\))")
PLACEHOLDER = "@name message"
EXITED = re.compile(r"\[console exited: (\d+)\]")


def tmux_env(env: dict) -> dict:
    """The environment for our own tmux commands: no $TMUX (we are nobody's client), UTF-8."""
    env = {k: v for k, v in env.items() if not k.startswith("TMUX")}
    if not any(env.get(k) for k in ("LC_ALL", "LC_CTYPE", "LANG")):
        env["LANG"] = "C.UTF-8"
    return env


def wait_until(cond, what: str, *, timeout: float = DEADLINE, last=None, interval: float = 0.1):
    """conftest's wait_for, with `what` first as these tests read best."""
    return wait_for(cond, timeout, what, interval, last=last)


def first_child(pid: int) -> int | None:
    """The first child process of `pid` (the command a pane's shell runs), or None yet."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            kids = fh.read().split()
    except OSError:
        kids = []
    return int(kids[0]) if kids else None


class Console:
    """`python -m thrum_tui` in the only pane of a private tmux server (not the agents' one)."""

    def __init__(self, repo, workdir: Path) -> None:
        self.repo = repo
        self.sock = f"thrum-ui-{uuid.uuid4().hex[:12]}"
        self.env = tmux_env(repo.env)
        self.conf = workdir / "console-tmux.conf"
        # The pane outlives the console (its exit status and last words stay readable); no status
        # line, so the console gets the whole 160x45; a POSIX shell runs the command line.
        self.conf.write_text(
            "set -g remain-on-exit on\nset -g status off\nset -g history-limit 2000\n"
            "set -g default-shell /bin/sh\n"
        )
        self.pid: int | None = None
        self.inner: str | None = None  # the agents' server, when the console runs in one of its sessions

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(
            ["tmux", "-u", "-L", self.sock, "-f", str(self.conf), *args],
            check=False,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {r.stderr}")
        return r

    def start(
        self, *args: str, tmux_client: bool = False, python: tuple[str, ...] = ("-m", "thrum_tui")
    ) -> None:
        """`tmux_client`: the console knows it runs in tmux (our server, not the agents' one);
        `python`: what the interpreter runs, `args` after it."""
        env = {**self.repo.env, "TERM": "xterm-256color", "PYTHONFAULTHANDLER": "1"}
        # No $TMUX: the console is nobody's tmux client. No COLUMNS/LINES (pytest-xdist workers
        # have 80x24): Textual would believe them over the terminal's real size.
        for key in ("TMUX", "TMUX_PANE", "COLUMNS", "LINES"):
            env.pop(key, None)
        if not any(env.get(k) for k in ("LC_ALL", "LC_CTYPE", "LANG")):
            env["LANG"] = "C.UTF-8"
        # `env -i`: exactly the repo's environment (HOME, THRUM_*, PATH), not tmux's $TMUX & co.
        # The pane's shell then prints the console's exit status (tmux's own #{pane_dead_status}
        # is not always filled in).
        command = [
            "env",
            "-i",
            *(f"{k}={v}" for k, v in sorted(env.items())),
            sys.executable,
            *python,
            *args,
        ]
        line = shlex.join(command)
        if tmux_client:
            line = line.replace("env -i ", 'env -i TMUX="$TMUX" TMUX_PANE="$TMUX_PANE" ', 1)
        self.tmux(
            "new-session",
            "-d",
            "-x",
            str(WIDTH),
            "-y",
            str(HEIGHT),
            "-s",
            "ui",
            "-c",
            str(self.repo.path),
            line + '; echo "[console exited: $?]"',
        )
        shell = int(self.tmux("display-message", "-p", "-t", "ui", "#{pane_pid}").stdout.strip())
        self._seen_start(shell)

    def _seen_start(self, shell: int) -> None:
        """`pid`: the process the pane's shell runs, once seen; None when it ended before a poll saw
        it (a console refused at once, a config that is not JSON, prints its error and exits)."""
        found = wait_until(
            lambda: first_child(shell) or self.exit_status() is not None,
            "the console's process",
            last=self.screen,
        )
        self.pid = None if isinstance(found, bool) else found

    def start_on_agents_server(self, *args: str) -> None:
        """The console in a session of the agents' own tmux server (the default placement: the user
        runs tmux and the agents share its server), seen through a real client of that server
        running in our pane, so popups and detaches happen to a client as they would for the user."""
        inner = self.repo.env["THRUM_TMUX__SOCKET_NAME"]
        env = {**self.repo.env, "TERM": "xterm-256color", "PYTHONFAULTHANDLER": "1"}
        for key in ("TMUX", "TMUX_PANE", "COLUMNS", "LINES"):
            env.pop(key, None)
        env.setdefault("LANG", "C.UTF-8")
        # $TMUX and $TMUX_PANE are the pane's own (expanded by its shell): the console is a client
        # of the agents' server.
        command = (
            "env -i "
            + " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(env.items()))
            + ' TMUX="$TMUX" TMUX_PANE="$TMUX_PANE" '
            + shlex.join([sys.executable, "-m", "thrum_tui", *args])
            + '; echo "[console exited: $?]"; sleep 600'
        )
        subprocess.run(
            [
                "tmux",
                "-u",
                "-L",
                inner,
                "new-session",
                "-d",
                "-x",
                str(WIDTH),
                "-y",
                str(HEIGHT),
                "-s",
                "thrum-console",
                "-c",
                str(self.repo.path),
                command,
            ],
            env=tmux_env(self.repo.env),
            check=True,
            timeout=30,
        )
        self.tmux(
            "new-session",
            "-d",
            "-x",
            str(WIDTH),
            "-y",
            str(HEIGHT),
            "-s",
            "ui",
            "-c",
            str(self.repo.path),
            shlex.join(["tmux", "-u", "-L", inner, "attach-session", "-t", "=thrum-console"]),
        )
        self.inner = inner
        shell = int(
            subprocess.run(
                ["tmux", "-L", inner, "display-message", "-p", "-t", "=thrum-console:", "#{pane_pid}"],
                env=tmux_env(self.repo.env),
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout.strip()
        )
        self._seen_start(shell)

    def screen(self) -> str:
        r = self.tmux("capture-pane", "-p", "-t", "ui", check=False)
        return r.stdout if r.returncode == 0 else f"(capture failed: {r.stderr.strip()})"

    def transcript(self) -> str:
        """Everything the terminal showed, scrollback included: what the console printed on its way
        out may have been scrolled off by then (tmux keeps a cleared screen in the history)."""
        r = self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "ui", check=False)
        return r.stdout if r.returncode == 0 else f"(capture failed: {r.stderr.strip()})"

    def wait_screen(self, cond, what: str, timeout: float = DEADLINE) -> str:
        """Wait until `cond(screen)` holds (a string means: the screen contains it); returns that screen."""
        test = (lambda s: cond in s) if isinstance(cond, str) else cond
        seen: list[str] = [""]

        def check():
            seen[0] = self.screen()
            return seen[0] if test(seen[0]) else None

        return wait_until(check, what, timeout=timeout, last=lambda: seen[0] + self.console_log_tail())

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "ui", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "ui", "-l", text)

    def exit_status(self) -> int | None:
        """The console's exit status once its process has ended (the pane keeps the shell's note)."""
        m = EXITED.search(self.transcript())
        return int(m.group(1)) if m else None

    def wait_exit(self) -> int:
        def check():
            status = self.exit_status()
            return None if status is None else [status]

        return wait_until(check, "the console to exit", last=self.stacks)[0]

    def holders(self) -> list[str]:
        """Processes holding the console's terminal open (the pane ends only when all let go)."""
        tty = self.tmux("display-message", "-p", "-t", "ui", "#{pane_tty}", check=False).stdout.strip()
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if any(os.readlink(f"/proc/{pid}/fd/{fd}") == tty for fd in os.listdir(f"/proc/{pid}/fd")):
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        args = fh.read().replace(b"\0", b" ").decode(errors="replace")
                    found.append(f"{pid}: {args[:200]}")
            except OSError:
                continue
        return found

    def stacks(self) -> str:
        """For a console that hangs: who holds its terminal, and (SIGABRT with PYTHONFAULTHANDLER)
        every thread's stack, printed on the terminal the pane keeps."""
        holders = self.holders()
        if self.pid and is_alive(self.pid):
            os.kill(self.pid, signal.SIGABRT)
            time.sleep(1)
        return (
            "holding the terminal: " + "; ".join(holders) + "\n" + self.transcript() + self.console_log_tail()
        )

    def console_log_tail(self, n: int = 30) -> str:
        try:
            lines = (self.repo.var / "console.log").read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n--- console.log (tail) ---\n" + "\n".join(lines[-n:])

    def close(self) -> None:
        """Kill the console's server; wait (bounded) for the console process to be gone, so
        whatever it does on the way out happens before the repo's teardown stops daemons."""
        kill_tmux(self.sock)
        if self.inner:  # the console's own session on the agents' server: its terminal goes too
            subprocess.run(
                ["tmux", "-L", self.inner, "kill-session", "-t", "=thrum-console"],
                env=tmux_env(self.repo.env),
                capture_output=True,
                timeout=30,
                check=False,
            )
        deadline = time.monotonic() + 15
        while self.pid and is_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)


# -- reading the screen ----------------------------------------------------------------------


def team_rows(screen: str) -> list[str]:
    """The team table's names, top to bottom (the operator as OPERATOR)."""
    names = []
    for line in screen.splitlines():
        if "WORKTREES" in line:
            break
        m = TEAM_ROW.match(line)
        if m:
            name = m.group(2)
            names.append(OPERATOR if name.startswith("you (") else name)
    return names


def conversation_title(screen: str) -> str | None:
    """Whose conversation the right side shows: an agent's name, or OPERATOR for your inbox."""
    for line in screen.splitlines():
        if "TEAM" in line:
            m = CONVERSATION_TITLE.search(line.split("TEAM", 1)[1])
            if m:
                return OPERATOR if m.group(1).startswith("you") else m.group(1)[1:]
    return None


def conversation_block(screen: str) -> list[str]:
    """The conversation box (title to bottom border), cut out of the right column."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if "TEAM" in line:
            col = line.find("╭─", line.find("TEAM"))
            if col < 0:
                return []
            block = []
            for ln in lines[i:]:
                block.append(ln[col:].rstrip())
                if ln[col : col + 1] == "╰":
                    break
            return block
    return []


def select(console: Console, name: str) -> str:
    """Move the team table's cursor (arrow keys; the operator is row 0) until `name` is shown."""
    deadline = time.monotonic() + DEADLINE
    while True:
        screen = console.screen()
        current, rows = conversation_title(screen), team_rows(screen)
        if current == name:
            return screen
        if time.monotonic() > deadline:
            pytest.fail(f"could not select {name} (showing {current}, rows {rows})\n{screen}")
        if current in rows and name in rows:
            delta = rows.index(name) - rows.index(current)
            console.keys(*(["Down"] * delta if delta > 0 else ["Up"] * -delta))
            if delta:
                wait_until(
                    lambda was=current: conversation_title(console.screen()) != was,
                    "the selection to move",
                    timeout=5,
                    last=console.screen,
                )
        else:
            time.sleep(0.1)


def compose_line(screen: str) -> str:
    """The compose bar's text (or its placeholder): the line under its top border."""
    lines = screen.splitlines()
    tops = [i for i, ln in enumerate(lines) if ln.startswith("▊▔")]
    return lines[tops[-1] + 1].strip("▊▎ ") if tops and tops[-1] + 1 < len(lines) else ""


def typed_at(line: str) -> bool:
    return line.startswith("@") and PLACEHOLDER not in line


def compose(console: Console, text: str) -> None:
    """`i`, then type `text` into the compose bar (not sent). Textual moves the focus on its next
    turn, so letters sent at once could still reach the team table and its shortcuts: type the
    first character (an unbound `@`) until the bar shows it, then the rest."""
    assert text.startswith("@")
    console.keys("i")
    deadline = time.monotonic() + DEADLINE
    while True:
        console.type("@")
        try:
            wait_until(lambda: typed_at(compose_line(console.screen())), "@ in the compose bar", timeout=3)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
    console.type(text[1:])
    console.wait_screen(lambda s: compose_line(s).startswith(text), f"{text!r} in the compose bar")


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def team(repo):
    """A repo with alice and bob (registered by the CLI in their own worktrees) and the operator's
    git name set. The daemon the CLI started is left running: each test decides."""
    alice = repo.agent("alice", "implementer", module="auth")
    bob = repo.agent("bob", "reviewer")
    repo.git("config", "user.name", "Ada Lovelace")
    return repo, alice, bob


@pytest.fixture
def console(repo, tmp_path):
    c = Console(repo, tmp_path)
    yield c
    c.close()


def agents_tmux(repo, *args: str) -> subprocess.CompletedProcess:
    """tmux on the agents' private server (the one the engine drives)."""
    return subprocess.run(
        ["tmux", "-u", "-L", repo.env["THRUM_TMUX__SOCKET_NAME"], *args],
        check=False,
        env=tmux_env(repo.env),
        capture_output=True,
        text=True,
        timeout=30,
    )


def give_alice_a_shell(repo, alice) -> str:
    """A tmux session for alice (a plain shell) with a marker printed in it; returns the marker."""
    repo.ok(
        "tmux",
        "create",
        "s-alice",
        "--cwd",
        str(alice.cwd),
        "--name",
        "alice",
        "--role",
        "implementer",
        "--runtime",
        "shell",
    )
    agents_tmux(repo, "send-keys", "-t", "=s-alice:", "-l", "echo alice-pane-$((6*7))")
    agents_tmux(repo, "send-keys", "-t", "=s-alice:", "Enter")
    marker = "alice-pane-42"  # only the command's output reads like this, not the typed line
    wait_until(
        lambda: marker in agents_tmux(repo, "capture-pane", "-p", "-t", "=s-alice:").stdout,
        "the marker in alice's pane",
    )
    return marker


def stop_daemon(repo) -> None:
    """`thrum daemon stop` (the CLI started one) and wait until it is gone, so the console hosts
    the engine itself rather than attaching to a daemon on its way out."""
    repo.ok("daemon", "stop")
    repo.stop()  # waits for the pid to exit
    wait_until(lambda: daemon_pids(repo) == [], "no daemon for the repo")


def start_and_wait_for_team(console: Console, *args: str, tmux_client: bool = False) -> str:
    console.start(*args, tmux_client=tmux_client)
    return console.wait_screen(
        lambda s: (
            all(w in s for w in ("alice", "bob", f"@{OPERATOR}", "engine: in-process"))
            and {OPERATOR, "alice", "bob"} <= set(team_rows(s))
        ),
        "the team on screen with the engine in-process",
    )


# -- tests -----------------------------------------------------------------------------------


def test_compose_sends_and_mail_appears_without_a_keypress(team, console):
    repo, _alice, bob = team
    stop_daemon(repo)  # the console hosts the engine in-process
    screen = start_and_wait_for_team(console)
    assert team_rows(screen)[0] == OPERATOR
    compose(console, "@bob hello from tmux")
    console.keys("Enter")

    inbox = wait_until(
        lambda: bob.json("inbox", "--all")["messages"], "the message in bob's inbox", last=console.screen
    )
    assert [(m["author"], m["body"]["content"]) for m in inbox] == [(OPERATOR, "hello from tmux")]
    console.wait_screen(lambda s: PLACEHOLDER in compose_line(s), "the compose bar cleared after sending")

    bob.ok("send", "hi boss, all reviewed", "--to", f"@{OPERATOR}")
    console.wait_screen("hi boss, all reviewed", "bob's message on screen, no key pressed")
    console.wait_screen("needs you: 1", "needs you: 1 in the header")
    assert console.exit_status() is None  # still running


@pytest.mark.parametrize("tmux_client", [False, True], ids=["outside-tmux", "in-another-tmux-server"])
def test_attach_and_detach_returns_to_the_same_state(team, console, tmux_client):
    repo, alice, _bob = team
    marker = give_alice_a_shell(repo, alice)
    stop_daemon(repo)
    start_and_wait_for_team(console, tmux_client=tmux_client)
    alice.ok("send", "ready for review", "--to", f"@{OPERATOR}")  # served by the console's engine

    select(console, "alice")
    before = console.wait_screen(
        lambda s: (
            conversation_title(s) == "alice"
            and "ready for review" in s
            and marker in s
            and "pane · s-alice" in s
        ),
        "alice's conversation and pane preview",
    )
    conversation = conversation_block(before)
    assert any("ready for review" in ln for ln in conversation)

    console.keys("a")
    inner = repo.env["THRUM_TMUX__SOCKET_NAME"]
    wait_until(
        lambda: agents_tmux(repo, "list-clients", "-t", "=s-alice").stdout.strip(),
        f"a client attached to s-alice on {inner}",
        last=console.screen,
    )
    console.wait_screen(
        lambda s: marker in s and "engine: in-process" not in s and "TEAM" not in s,
        "alice's shell in the console's terminal",
    )
    # The keyboard now belongs to alice's shell (through the nested client).
    console.type("echo attached-$((40+2))")
    console.keys("Enter")
    console.wait_screen("attached-42", "the command's output in the attached pane")
    wait_until(
        lambda: "attached-42" in agents_tmux(repo, "capture-pane", "-p", "-t", "=s-alice:").stdout,
        "the command run in alice's own pane",
    )

    console.keys("C-b", "d")  # the prefix goes through the outer pane to the nested client
    wait_until(
        lambda: not agents_tmux(repo, "list-clients", "-t", "=s-alice").stdout.strip(),
        "the nested client to detach",
        last=console.screen,
    )
    console.wait_screen(
        lambda s: (
            "engine: in-process" in s
            and conversation_title(s) == "alice"
            and conversation_block(s) == conversation
        ),
        "the console back with alice selected and the same conversation",
    )
    console.wait_screen("pane · s-alice", "alice's pane preview")
    assert console.exit_status() is None

    # Live again: new mail shows up, and keys go to the console (not to alice's shell).
    alice.ok("send", "second note after detach", "--to", f"@{OPERATOR}")
    console.wait_screen("second note after detach", "alice's second message on screen")
    console.keys("Up")
    console.wait_screen(lambda s: conversation_title(s) != "alice", "the arrow key moving the selection")


def test_a_multi_line_paste_in_the_terminal_is_sent_whole(team, console):
    """Walk bug 4, in a real terminal: tmux pastes with bracketed-paste markers, as a terminal does."""
    repo, _alice, bob = team
    stop_daemon(repo)
    start_and_wait_for_team(console)
    compose(console, "@bob")
    console.type(" ")
    console.tmux("set-buffer", "-b", "thrum-paste", "line one\nline two\nline three")
    console.tmux("paste-buffer", "-p", "-b", "thrum-paste", "-t", "ui")
    console.wait_screen("ctrl+s sends", "the big compose box")
    console.keys("C-s")
    inbox = wait_until(
        lambda: bob.json("inbox", "--all")["messages"], "the message in bob's inbox", last=console.screen
    )
    assert [m["body"]["content"] for m in inbox] == ["line one\nline two\nline three"]


def test_attach_from_a_console_inside_the_agents_tmux_server_returns_to_it(team, console):
    """Walk bug 2: there `a` switched the user's own client, so detaching left tmux altogether. Now
    the session opens in a popup over the console; detaching closes the popup, and the user's client
    is still on the console, in the same state."""
    repo, alice, _bob = team
    marker = give_alice_a_shell(repo, alice)
    stop_daemon(repo)
    console.start_on_agents_server()
    console.wait_screen(
        lambda s: "engine: in-process" in s and {"alice", "bob"} <= set(team_rows(s)),
        "the console on the agents' server",
    )
    select(console, "alice")
    console.wait_screen(lambda s: marker in s and "pane · s-alice" in s, "alice's pane preview")
    before = conversation_block(console.screen())

    console.keys("a")
    wait_until(
        lambda: agents_tmux(repo, "list-clients", "-t", "=s-alice").stdout.strip(),
        "a client attached to s-alice (in the popup)",
        last=console.screen,
    )
    console.type("echo popup-$((40+2))")
    console.keys("Enter")
    wait_until(
        lambda: "popup-42" in agents_tmux(repo, "capture-pane", "-p", "-t", "=s-alice:").stdout,
        "the command run in alice's own pane",
        last=console.screen,
    )

    console.keys("C-b", "d")  # detach the popup's client, not the user's
    wait_until(
        lambda: not agents_tmux(repo, "list-clients", "-t", "=s-alice").stdout.strip(),
        "the popup's client to detach",
        last=console.screen,
    )
    assert agents_tmux(repo, "list-clients", "-t", "=thrum-console").stdout.strip(), "the user's client left"
    console.wait_screen(
        lambda s: (
            "engine: in-process" in s
            and conversation_title(s) == "alice"
            and conversation_block(s) == before
            and "popup-42" not in compose_line(s)
        ),
        "the console back as it was",
    )
    alice.ok("send", "after the popup", "--to", f"@{OPERATOR}")
    console.wait_screen("after the popup", "the console live again")


def test_quit_hands_the_engine_over_to_a_daemon(team, console):
    repo, alice, bob = team
    give_alice_a_shell(repo, alice)
    stop_daemon(repo)
    start_and_wait_for_team(console)
    console.keys("q")
    assert console.wait_exit() == 0
    screen = console.transcript()
    assert "handed over to a headless daemon" in screen, screen + console.console_log_tail()

    info = json.loads((repo.var / "thrum.pid").read_text())
    assert info["host"] == "daemon" and is_alive(info["pid"]), info
    assert info["pid"] != console.pid
    assert f"pid {info['pid']}" in screen
    assert daemon_pids(repo) == [info["pid"]]
    status = repo.json("daemon", "status")
    assert (status["running"], status["host"], status["pid"]) == (True, "daemon", info["pid"])

    # The agents keep working against it: sends are stored and delivered, alice's pane lives on.
    bob.ok("send", "still here after the hand-over", "--to", "@alice")
    inbox = alice.json("inbox")["messages"]
    assert [m["body"]["content"] for m in inbox] == ["still here after the hand-over"]
    assert agents_tmux(repo, "has-session", "-t", "=s-alice").returncode == 0
    assert repo.daemon_pid() == info["pid"]  # the same daemon served them, none was started anew


def test_quit_with_stop_engine_leaves_no_engine(team, console):
    repo, alice, _bob = team
    give_alice_a_shell(repo, alice)  # a live agent: without the flag this would hand over
    stop_daemon(repo)
    start_and_wait_for_team(console, "--stop-engine")
    console.keys("q")
    assert console.wait_exit() == 0
    screen = console.transcript()
    assert "handed over" not in screen
    assert "Error" not in screen and "Traceback" not in screen
    assert daemon_pids(repo) == []
    assert repo.daemon_pid() is None or not is_alive(repo.daemon_pid())
    status = repo.run("daemon", "status", "--json")
    assert status.json["running"] is False, status.out


# `ThrumApp.start_up` runs once the first frame is out (`call_after_refresh`): what is imported by
# then, the first paint waited for. This probe is the real `python -m thrum_tui` but for that one
# method, which writes the modules down and quits.
FIRST_FRAME_PROBE = """
import sys
from thrum_tui import __main__ as console
from thrum_tui.app import ThrumApp

def first_frame(self):
    with open(sys.argv[1], "w", encoding="utf-8") as fh:
        fh.write("\\n".join([f"theme={self.theme}", *sorted(sys.modules)]))
    self.exit()

ThrumApp.start_up = first_frame
sys.exit(console.main(["--stop-engine"]))
"""


@pytest.mark.parametrize("host", ["in-process", "attached"])
def test_the_first_frame_waits_for_neither_the_settings_validation_nor_libtmux(team, console, tmp_path, host):
    """pydantic's import (the settings are validated after the first frame) and libtmux's (the
    engine's) were ~150 ms of the console's first paint (bench/console.py)."""
    repo, _alice, _bob = team
    if host == "in-process":
        stop_daemon(repo)
    modules = tmp_path / "modules.txt"
    console.start(str(modules), python=("-c", FIRST_FRAME_PROBE))
    assert console.wait_exit() == 0, console.transcript()
    loaded = set(modules.read_text(encoding="utf-8").split())
    assert "thrum_tui.app" in loaded  # the probe ran where the console paints
    heavy = {
        m for m in loaded if m.split(".")[0] in ("pydantic", "pydantic_core", "pydantic_settings", "libtmux")
    }
    assert not heavy, sorted(heavy)
    assert "thrum_engine.settings" not in loaded


@pytest.mark.parametrize("source", ["config", "env"])
def test_the_first_frame_is_drawn_in_the_configured_theme(team, console, tmp_path, source):
    """The theme is read before the settings are validated (`settings_sources`): from the same
    places, in the same order, as the settings would have it."""
    repo, _alice, _bob = team
    stop_daemon(repo)
    if source == "env":
        repo.env["THRUM_CONSOLE__THEME"] = "thrum-light"
    else:
        config = repo.path / ".thrum" / "config.json"
        data = json.loads(config.read_text(encoding="utf-8")) if config.exists() else {}
        data.setdefault("console", {})["theme"] = "thrum-light"
        config.write_text(json.dumps(data), encoding="utf-8")
    modules = tmp_path / "modules.txt"
    console.start(str(modules), python=("-c", FIRST_FRAME_PROBE))
    assert console.wait_exit() == 0, console.transcript()
    assert modules.read_text(encoding="utf-8").split()[0] == "theme=thrum-light"


CRASH_PROBE = """
import sys
from thrum_tui import __main__ as console
from thrum_tui.app import ThrumApp

def crash(self):
    raise RuntimeError("probe: the console crashed")

ThrumApp.start_up = crash
sys.exit(console.main(["--stop-engine"]))
"""


def test_a_crash_ends_the_console_with_a_non_zero_status(team, console):
    """Walk, bug 3: after a traceback the console exited 0, so a script could not tell."""
    repo, _alice, _bob = team
    stop_daemon(repo)
    console.start(python=("-c", CRASH_PROBE))
    assert console.wait_exit() == 1, console.transcript()
    assert "probe: the console crashed" in console.transcript()


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("THRUM_CONSOLE__PREVIEW_LINES", "3", "invalid setting console.preview_lines"),
        ("THRUM_ENGINE__IDLE_TIMEOUT_SECONDS", "soon", "invalid setting engine.idle_timeout_seconds"),
    ],
)
@pytest.mark.parametrize("host", ["in-process", "attached"])
def test_a_bad_setting_ends_the_console_with_one_line_naming_it(team, console, setting, value, said, host):
    """Validated after the first frame, a bad value still ends the console the way a bad
    command-line does: `Error: ...` naming it, exit 1; hosting, no engine is left behind, and
    attached, the daemon (started with good settings) is left as it was."""
    repo, _alice, _bob = team
    if host == "in-process":
        stop_daemon(repo)
    daemons = daemon_pids(repo)
    repo.env[setting] = value
    console.start()
    assert console.wait_exit() == 1, console.transcript()
    screen = console.transcript()
    errors = [ln for ln in screen.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1 and said in errors[0], screen
    assert "Traceback" not in screen
    assert daemon_pids(repo) == daemons


def test_a_config_file_that_is_not_json_ends_the_console_before_it_draws(team, console):
    repo, _alice, _bob = team
    stop_daemon(repo)
    config = repo.path / ".thrum" / "config.json"
    config.write_text('{"console": {"theme": ', encoding="utf-8")
    console.start()
    assert console.wait_exit() == 1, console.transcript()
    screen = console.transcript()
    assert f"Error: {config} is not valid JSON" in screen, screen
    assert "thrum ·" not in screen and "Traceback" not in screen

"""The headless daemon's lifecycle: start/stop/restart/status/logs, auto-start,
the single-engine lock, stale state left by `kill -9`, signals, and a stampede of
CLI commands against a stopped engine. Real processes, real sockets, real files."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import THRUM, daemon_pids, is_alive, layout_of, run_daemon, run_thrum
from conftest import wait_for as wait_until
from thrum_engine.version import __version__

STATUS_KEYS = {"running", "pid", "repo_path", "uptime", "version", "host", "sync", "sync_status"}


# -- helpers -----------------------------------------------------------------------------------------------------


def wait_dead(pid: int, timeout: float = 20.0) -> None:
    wait_until(lambda: not is_alive(pid), timeout, f"pid {pid} to exit")


def rpc(path: str, method: str, params: dict | None = None, timeout: float = 10.0) -> dict:
    """One raw JSON-RPC call over the socket (no auto-start, no CLI)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}).encode() + b"\n"
        )
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def serving_pid(repo) -> int:
    reply = rpc(layout_of(repo).socket_path, "engine.info")
    assert "result" in reply, reply
    return reply["result"]["pid"]


def lock_is_held(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one error line, got: {err!r}"
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0]


@pytest.fixture
def solo(repo):
    """A repo with one registered agent (quickstart auto-starts the engine)."""
    alice = repo.agent("alice", "implementer", module="auth")
    wait_until(lambda: repo.daemon_pid(), what="the pid file")
    return repo, alice


# -- start / stop / restart / status / logs ----------------------------------------------------------------------


def test_status_json_while_running_has_the_documented_keys(solo):
    repo, alice = solo
    r = alice.ok("daemon", "status", "--json")
    st = r.json
    assert set(st) == STATUS_KEYS
    assert st["running"] is True
    assert st["pid"] == repo.daemon_pid() == serving_pid(repo)
    assert st["repo_path"] == os.path.realpath(repo.path)
    assert st["version"] == __version__
    assert st["host"] == "daemon"
    assert isinstance(st["uptime"], (int, float)) and st["uptime"] >= 0
    assert isinstance(st["sync"], str) and st["sync"]
    human = alice.ok("daemon", "status")
    assert str(st["pid"]) in human.out


def test_stop_then_status_exits_1_and_start_brings_it_back(solo):
    repo, alice = solo
    lay = layout_of(repo)
    pid = repo.daemon_pid()

    r = alice.ok("daemon", "stop")
    assert str(pid) in r.out
    wait_dead(pid)
    assert not os.path.exists(lay.socket_path)
    assert not os.path.exists(lay.pid_path)

    r = alice.run("daemon", "status")
    assert r.code == 1
    assert "not running" in r.out.lower()
    r = alice.run("daemon", "status", "--json")
    assert r.code == 1
    st = r.json
    assert set(st) == STATUS_KEYS
    assert st["running"] is False and st["pid"] is None
    assert st["repo_path"] == os.path.realpath(repo.path)
    # status never starts the engine
    assert daemon_pids(repo) == []

    # stopping a stopped engine is fine and starts nothing
    r = alice.ok("daemon", "stop", "--json")
    assert r.json["stopped"] is False
    assert daemon_pids(repo) == []

    r = alice.ok("daemon", "start", "--json")
    new_pid = r.json["pid"]
    assert r.json["started"] is True
    assert new_pid != pid
    assert serving_pid(repo) == new_pid == repo.daemon_pid()
    assert daemon_pids(repo) == [new_pid]
    assert alice.ok("daemon", "status").code == 0


def test_start_when_running_is_idempotent(solo):
    repo, alice = solo
    pid = repo.daemon_pid()
    r = alice.ok("daemon", "start", "--json")
    assert r.json["started"] is False
    assert r.json["pid"] == pid
    assert "already running" in alice.ok("daemon", "start").out
    assert daemon_pids(repo) == [pid]


def test_restart_replaces_the_engine(solo):
    repo, alice = solo
    old = repo.daemon_pid()
    r = alice.ok("daemon", "restart", "--json")
    new = r.json["pid"]
    assert r.json["previous_pid"] == old
    assert new != old
    wait_dead(old)
    assert serving_pid(repo) == new
    assert daemon_pids(repo) == [new]
    # state survives the restart
    assert [m["name"] for m in alice.json("team", "--all")["members"]] == ["alice"]


@pytest.mark.parametrize(
    ("config", "fragment"),
    [('{"messages": {"max_body_bytes": -5}}', "max_body_bytes"), ('{"messages": ', "config")],
)
def test_restart_with_bad_settings_keeps_the_running_engine(solo, config, fragment):
    repo, alice = solo
    old = repo.daemon_pid()
    (repo.path / ".thrum" / "config.json").write_text(config)
    r = alice.run("daemon", "restart")
    assert r.code == 1 and r.out == ""
    assert fragment in one_error_line(r.err) and "left running" in r.err
    assert serving_pid(repo) == old and daemon_pids(repo) == [old]
    assert alice.ok("send", "still here", "--to", "@alice").out.startswith("✓")


def test_restart_when_stopped_starts_it(solo):
    repo, alice = solo
    alice.ok("daemon", "stop")
    wait_until(lambda: daemon_pids(repo) == [], what="no daemon")
    r = alice.ok("daemon", "restart", "--json")
    assert r.json["previous_pid"] is None
    assert serving_pid(repo) == r.json["pid"]


def test_logs(solo):
    repo, alice = solo
    pid = repo.daemon_pid()
    r = alice.ok("daemon", "logs")
    assert f"pid {pid}" in r.out and "listening on" in r.out
    j = alice.json("daemon", "logs", "--lines", "2")
    assert j["path"] == str(layout_of(repo).log_path)
    assert 1 <= len(j["lines"]) <= 2
    assert j["lines"] == alice.json("daemon", "logs")["lines"][-len(j["lines"]) :]
    assert alice.json("daemon", "logs", "--since", "1h")["lines"]
    r = alice.run("daemon", "logs", "--lines", "many")
    assert r.code == 1
    one_error_line(r.err)
    # logs never need (or start) the engine
    alice.ok("daemon", "stop")
    wait_until(lambda: daemon_pids(repo) == [], what="no daemon")
    assert "stopped" in alice.ok("daemon", "logs").out
    assert daemon_pids(repo) == []


def test_start_in_an_uninitialized_repo_is_a_clean_error(repo):
    r = repo.run("daemon", "start")
    assert r.code == 1
    assert "init" in one_error_line(r.err)
    assert daemon_pids(repo) == []
    assert not (repo.path / ".thrum").exists()


def test_daemon_commands_outside_a_git_repo_are_clean_errors(tmp_path, repo):
    outside = tmp_path / "nowhere"
    outside.mkdir()
    for args in (["daemon", "status"], ["daemon", "start"], ["daemon", "stop"]):
        r = repo.run(*args, cwd=outside)
        assert r.code == 1, args
        one_error_line(r.err)


# -- auto-start ---------------------------------------------------------------------------------------------------


def test_a_command_that_needs_the_engine_starts_it(solo):
    repo, alice = solo
    alice.ok("daemon", "stop")
    wait_until(lambda: daemon_pids(repo) == [], what="no daemon")
    # these never start it
    for args in (["whoami"], ["version"], ["daemon", "status"], ["daemon", "stop"]):
        alice.run(*args)
        assert daemon_pids(repo) == [], args
    team = alice.json("team", "--all")
    assert [m["name"] for m in team["members"]] == ["alice"]
    pids = daemon_pids(repo)
    assert len(pids) == 1
    assert pids[0] == repo.daemon_pid() == serving_pid(repo)


def test_auto_start_from_a_subdirectory_of_a_worktree(solo):
    repo, alice = solo
    alice.ok("daemon", "stop")
    wait_until(lambda: daemon_pids(repo) == [], what="no daemon")
    sub = alice.cwd / "deep" / "er"
    sub.mkdir(parents=True)
    r = run_thrum(["team", "--all", "--json"], sub, alice.env)
    assert r.code == 0, r.err
    assert daemon_pids(repo) == [serving_pid(repo)]


# -- one engine per repo -------------------------------------------------------------------------------------------


def test_a_second_daemon_refuses_and_the_first_keeps_serving(solo):
    repo, alice = solo
    lay = layout_of(repo)
    first = repo.daemon_pid()
    proc = run_daemon(repo, "--repo", str(repo.path))
    assert proc.returncode == 1
    line = one_error_line(proc.stderr)
    assert "already running" in line
    assert proc.stdout == ""
    # the first is untouched: same pid file, same socket, still answering
    assert repo.daemon_pid() == first
    assert os.path.exists(lay.socket_path)
    assert serving_pid(repo) == first
    assert daemon_pids(repo) == [first]
    alice.ok("session", "set-intent", "still here")


def test_a_second_daemon_from_a_linked_worktree_refuses_too(solo):
    repo, alice = solo
    first = repo.daemon_pid()
    proc = run_daemon(repo, cwd=alice.cwd)
    assert proc.returncode == 1
    one_error_line(proc.stderr)
    assert serving_pid(repo) == first


def test_the_lock_file_is_what_decides(solo):
    repo, alice = solo
    lock = repo.var / "thrum.lock"
    assert lock == Path(layout_of(repo).lock_path)
    assert lock.exists()
    assert lock_is_held(lock)
    alice.ok("daemon", "stop")
    wait_until(lambda: daemon_pids(repo) == [], what="no daemon")
    wait_until(lambda: not lock_is_held(lock), 10, "the lock released")
    # while someone else holds the lock, a daemon refuses to start and touches nothing
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = run_daemon(repo, "--repo", str(repo.path))
        assert proc.returncode == 1
        one_error_line(proc.stderr)
        assert not os.path.exists(layout_of(repo).socket_path)
        assert not os.path.exists(layout_of(repo).pid_path)
    finally:
        os.close(fd)
    alice.ok("daemon", "start")
    assert lock_is_held(lock)


def test_daemon_rejects_unknown_flags(solo):
    repo, _ = solo
    proc = run_daemon(repo, "--bogus")
    assert proc.returncode == 1
    assert "unknown flag: --bogus" in one_error_line(proc.stderr)


# -- kill -9 leaves stale state; the next start cleans it up -------------------------------------------------------


@pytest.mark.parametrize("restart_with", [["daemon", "start"], ["team", "--all"], ["daemon", "status"]])
def test_stale_socket_and_pid_file_after_kill_9(solo, restart_with):
    repo, alice = solo
    lay = layout_of(repo)
    pid = repo.daemon_pid()
    os.kill(pid, signal.SIGKILL)
    wait_dead(pid)
    # kill -9 leaves both behind; the lock dies with the process (the kernel may drop a killed
    # process's last file references a moment after its threads are gone: wait, bounded)
    assert os.path.exists(lay.socket_path)
    assert os.path.exists(lay.pid_path)
    wait_until(lambda: not lock_is_held(Path(lay.lock_path)), 10, "the killed engine's lock released")
    with pytest.raises(ConnectionRefusedError):
        rpc(lay.socket_path, "engine.info")

    r = alice.run(*restart_with)
    if restart_with == ["daemon", "status"]:
        # status reports "not running", starts nothing, and clears the stale files
        assert r.code == 1
        assert daemon_pids(repo) == []
        assert not os.path.exists(lay.socket_path)
        assert not os.path.exists(lay.pid_path)
        alice.ok("daemon", "start")
    else:
        assert r.code == 0, r.err
    new = serving_pid(repo)
    assert new != pid
    assert repo.daemon_pid() == new
    assert daemon_pids(repo) == [new]


def test_stale_pid_file_naming_a_live_unrelated_process(solo):
    repo, alice = solo
    lay = layout_of(repo)
    pid = repo.daemon_pid()
    os.kill(pid, signal.SIGKILL)
    wait_dead(pid)
    # The pid was recycled by something else that is very much alive: this test process.
    Path(lay.pid_path).write_text(json.dumps({"pid": os.getpid(), "host": "daemon", "started_at": 0}))
    r = alice.ok("daemon", "start", "--json")
    assert r.json["pid"] != os.getpid()
    assert serving_pid(repo) == r.json["pid"] == repo.daemon_pid()
    # and `daemon stop` stops the engine, not the process named in a stale file
    alice.ok("daemon", "stop")
    wait_until(lambda: daemon_pids(repo) == [], what="no daemon")
    assert is_alive(os.getpid())


def test_a_leftover_regular_file_at_the_socket_path(solo):
    repo, alice = solo
    lay = layout_of(repo)
    alice.ok("daemon", "stop")
    wait_until(lambda: daemon_pids(repo) == [], what="no daemon")
    Path(lay.socket_path).write_text("junk")
    alice.ok("daemon", "start")
    assert serving_pid(repo) == repo.daemon_pid()


# -- signals ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_signal_shuts_down_gracefully(solo, sig):
    repo, alice = solo
    lay = layout_of(repo)
    alice.ok("session", "set-intent", "before the signal")
    pid = repo.daemon_pid()
    os.kill(pid, sig)
    wait_dead(pid)
    assert not os.path.exists(lay.socket_path)
    assert not os.path.exists(lay.pid_path)
    assert os.path.exists(lay.lock_path)
    wait_until(lambda: not lock_is_held(Path(lay.lock_path)), 10, "the lock released")
    log = Path(lay.log_path).read_text()
    assert "stopped" in log.splitlines()[-1]
    assert "Traceback" not in log
    # nothing was lost, and the next start needs no repair
    alice.ok("daemon", "start")
    doctor = alice.json("doctor")
    assert doctor["ok"] is True, doctor["problems"]
    assert doctor["torn_tails_at_start"] == []
    [me] = alice.json("team", "--all")["members"]
    assert me["intent"] == "before the signal"


@pytest.mark.parametrize("via", ["sigterm", "daemon-stop"])
def test_shutdown_does_not_hang_on_a_blocked_wait(pair, monkeypatch, via):
    """A `wait` may block for up to engine.max_wait_seconds; stopping the engine must not wait it out."""
    repo, alice, bob = pair
    lay = layout_of(repo)
    pid = repo.daemon_pid()
    monkeypatch.chdir(bob.cwd)  # this process is bob, in bob's worktree
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(60)
        s.connect(lay.socket_path)
        wait_req = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "message.wait",
            "params": {"caller": "bob", "timeout": 60},
        }
        info_req = {"jsonrpc": "2.0", "id": 2, "method": "engine.info", "params": {}}
        s.sendall(json.dumps(wait_req).encode() + b"\n" + json.dumps(info_req).encode() + b"\n")
        # frames on one connection are read in order: once engine.info answers, the wait is in flight
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, "the engine closed the connection"
            buf += chunk
        first, _, buf = buf.partition(b"\n")
        assert json.loads(first)["id"] == 2
        monkeypatch.chdir(repo.path)
        if via == "sigterm":
            os.kill(pid, signal.SIGTERM)
        else:
            assert alice.run("daemon", "stop", timeout=90).code == 0
        wait_dead(pid, 20)
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
        # the interrupted wait never reports success: at most an error reply, then the connection closes
        for line in buf.splitlines():
            if line.strip():
                reply = json.loads(line)
                assert reply["id"] == 1 and "error" in reply, reply
        assert not os.path.exists(lay.socket_path)
        assert not os.path.exists(lay.pid_path)
        assert "Traceback" not in Path(lay.log_path).read_text()
    finally:
        s.close()


def connections_to(path: str) -> int:
    """Accepted (server-side) connections on the Unix socket at `path`, from /proc/net/unix."""
    n = 0
    with open("/proc/net/unix", encoding="utf-8") as fh:
        next(fh)
        for row in fh:
            parts = row.split()
            if len(parts) >= 8 and parts[7] == path and parts[5] == "03":
                n += 1
    return n


# -- deep repo paths: the socket falls back to a short path --------------------------------------------------------


def test_socket_path_falls_back_when_the_repo_path_is_deep(make_repo):
    repo = make_repo("d" * 120)
    alice = repo.agent("alice", "implementer")
    lay = layout_of(repo)
    default = os.path.join(lay.var, "thrum.sock")
    assert len(default.encode()) > 107
    assert lay.socket_path != default
    assert len(lay.socket_path.encode()) <= 107
    pid = repo.daemon_pid()
    assert pid and serving_pid(repo) == pid
    st = alice.json("daemon", "status")
    assert st["running"] is True and st["pid"] == pid
    assert oct(os.stat(lay.socket_path).st_mode & 0o777) == oct(0o600)
    alice.ok("daemon", "stop")
    wait_dead(pid)
    assert not os.path.exists(lay.socket_path)
    assert alice.run("daemon", "status").code == 1


# -- a stampede against a stopped engine ---------------------------------------------------------------------------


def test_eight_concurrent_commands_start_exactly_one_engine(pair):
    """Three stampedes on one team (the race is what repeats, not the team's set-up)."""
    repo, alice, bob = pair
    for round_ in range(3):
        stampede(repo, alice, bob, round_)


def stampede(repo, alice, bob, round_: int) -> None:
    alice.ok("daemon", "stop")
    wait_until(lambda: daemon_pids(repo) == [], what="no daemon")
    commands = [
        (alice, ["send", f"stampede {round_} 1", "--to", "@bob", "--json"]),
        (bob, ["send", f"stampede {round_} 2", "--to", "@alice", "--json"]),
        (alice, ["team", "--all", "--json"]),
        (bob, ["team", "--all", "--json"]),
        (alice, ["status", "--json"]),
        (bob, ["sent", "--json"]),
        (alice, ["daemon", "start", "--json"]),
        (bob, ["session", "list", "--json"]),
    ]
    procs = [
        subprocess.Popen(
            THRUM + args, cwd=a.cwd, env=a.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for a, args in commands
    ]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=90)
            results.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for (a, args), (code, out, err) in zip(commands, results):
        assert code == 0, f"{a.name}: thrum {' '.join(args)} -> {code}: {err}"
        json.loads(out)
    # losers may still be on their way out: exactly one survives
    wait_until(lambda: len(daemon_pids(repo)) == 1, 30, "exactly one daemon")
    pids = daemon_pids(repo)
    assert len(pids) == 1
    assert pids[0] == repo.daemon_pid() == serving_pid(repo)
    assert f"stampede {round_} 1" in [m["body"]["content"] for m in bob.json("inbox")["messages"]]
    assert f"stampede {round_} 2" in [m["body"]["content"] for m in alice.json("inbox")["messages"]]


def test_an_engine_started_on_another_thrum_socket_is_found_by_every_caller(solo, tmp_path):
    """One command with THRUM_SOCKET set started the engine on that socket, and every other caller
    (and `daemon start`, the advised repair) said "holds the lock but does not answer" (contract
    walk, session 22): callers find the engine through the socket its pid file names; a caller whose
    THRUM_SOCKET names nothing finds the running engine the same way, and never starts a second."""
    repo, alice = solo
    alice.ok("daemon", "stop")
    wait_until(lambda: daemon_pids(repo) == [], what="no daemon")
    other = tmp_path / "elsewhere.sock"
    assert alice.run("team", THRUM_SOCKET=str(other)).code == 0
    assert other.is_socket()
    pid = repo.daemon_pid()
    for r in (alice.run("team"), alice.run("daemon", "start"), alice.run("daemon", "status", "--json")):
        assert r.code == 0, r.err
    assert json.loads(alice.ok("daemon", "status", "--json").out)["pid"] == pid
    r = alice.run("send", "hi", "--to", "@alice", THRUM_SOCKET=str(tmp_path / "nothing.sock"))
    assert r.code == 0, r.err
    assert daemon_pids(repo) == [pid]
    hook = alice.run("hook", "session-start", "--runtime", "claude", input="{}")
    assert hook.code == 0 and "alice" in hook.out, hook.out
    alice.ok("daemon", "stop")
    wait_until(lambda: daemon_pids(repo) == [], what="stopped through the other socket")


def test_a_stale_pid_file_never_sends_calls_to_another_repos_engine(make_repo):
    """A review of session 22: the pid file of an engine killed -9 named a socket another repo's
    engine took since; callers went there (`daemon status` showed the other repo). Only the engine
    whose pid the file names counts."""
    a, b = make_repo(), make_repo()
    a.agent("alice", "implementer")
    b.agent("bob", "implementer")
    a.stop()
    b_socket = layout_of(b).socket_path
    Path(layout_of(a).pid_path).write_text(json.dumps({"pid": 999_999, "socket": b_socket}))
    r = a.run("daemon", "status", "--json")
    assert r.code == 1 and r.json["running"] is False, r.out
    assert a.run("team").code == 0  # starts a's own engine
    assert json.loads(a.ok("daemon", "status", "--json").out)["repo_path"] == str(a.path)

"""Issue #9, the socket and the daemon's life: a private socket directory and a client that checks
who serves it (F4), private state files (F6), idle and crowding connections (F8), a vanished socket
or lock file (F12), a stopped engine (F17), and the error texts around them (F15, F16).

Real engines, real sockets, a real second Unix user where we are root, real SIGSTOP."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pwd
import random
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import THRUM, assert_error, daemon_pids, is_alive, layout_of, run_daemon, wait_for
from thrum_engine.layout import Layout
from thrum_engine.rpc import client as rpc_client

PROBE_USER = "thrum-probe"


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def inbox(agent) -> list[str]:
    return [m["body"]["content"] for m in agent.json("inbox")["messages"]]


def second_user() -> pwd.struct_passwd:
    """A throwaway Unix user to play the attacker (created once; we must be root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as a second Unix user")
    try:
        return pwd.getpwnam(PROBE_USER)
    except KeyError:
        pass
    r = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PROBE_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0 and "already exists" not in r.stderr:
        pytest.skip(f"cannot create a second user: {r.stderr.strip()}")
    return pwd.getpwnam(PROBE_USER)


@pytest.fixture
def attacker_dir():
    """A directory under /tmp that the second user owns and anyone may enter."""
    user = second_user()
    d = tempfile.mkdtemp(prefix="thrum-attacker-", dir="/tmp")
    os.chmod(d, 0o755)
    os.chown(d, user.pw_uid, user.pw_gid)
    yield user, Path(d)
    shutil.rmtree(d, ignore_errors=True)


# -- F4: the fallback socket directory and the server's uid -------------------------------------------------------


def test_a_fallback_socket_dir_owned_by_another_user_is_refused(make_repo, attacker_dir):
    user, d = attacker_dir
    os.chmod(d, 0o777)  # the attack: the victim's engine would bind in here
    repo = make_repo("d" * 120)
    repo.env["XDG_RUNTIME_DIR"] = str(d)
    assert os.path.dirname(Layout(str(repo.path)).socket_path) != str(repo.var)
    r = repo.run("quickstart", "--name", "alice", "--role", "dev")
    line = assert_error(r, "owned by uid", str(user.pw_uid))
    assert str(d) in line
    assert os.listdir(d) == []
    assert daemon_pids(repo) == []


def test_a_fallback_socket_dir_writable_by_others_is_refused(make_repo, tmp_path):
    shared = tmp_path / "run"
    shared.mkdir()
    os.chmod(shared, 0o777)
    repo = make_repo("d" * 120)
    repo.env["XDG_RUNTIME_DIR"] = str(shared)
    assert_error(repo.run("quickstart", "--name", "alice", "--role", "dev"), "writable by other users")
    assert os.listdir(shared) == []
    # the engine itself refuses it too, when started by hand
    repo.env.pop("XDG_RUNTIME_DIR")
    repo.ok("init")
    repo.stop()
    repo.env["XDG_RUNTIME_DIR"] = str(shared)
    proc = run_daemon(repo, "--repo", str(repo.path))
    assert proc.returncode == 1
    assert "writable by other users" in proc.stderr
    assert os.listdir(shared) == []


def test_a_missing_fallback_socket_dir_is_created_0700_and_a_loose_own_one_tightened(make_repo, tmp_path):
    base = tmp_path / "run"
    base.mkdir()
    old = os.umask(0o000)
    try:
        repo = make_repo("d" * 120)
        repo.env["XDG_RUNTIME_DIR"] = str(base / "new")
        alice = repo.agent("alice", "dev", worktree=False)
        repo.agent("bob", "dev", worktree=False)
    finally:
        os.umask(old)
    assert mode(base / "new") == 0o700
    alice.ok("send", "hi", "--to", "@bob")
    repo.stop()
    os.chmod(base / "new", 0o755)  # what older versions left: ours, and never writable by others
    alice.ok("daemon", "start")
    assert mode(base / "new") == 0o700
    assert [mode(sock) for sock in (base / "new").glob("*.sock")] == [0o600]


_FAKE_ENGINE = textwrap.dedent("""
    import os, socket, sys
    path, log = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    os.chmod(path, 0o777)
    s.listen(16)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        c.settimeout(2)
        got = b""
        try:
            while b"\\n" not in got:
                chunk = c.recv(65536)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
        with open(log, "ab") as fh:
            fh.write(got)
        try:
            c.sendall(b'{"jsonrpc":"2.0","id":1,"result":{"message_id":"msg_FAKE","recipients":["bob"]}}\\n')
        except OSError:
            pass
        c.close()
""")


def test_the_client_sends_nothing_to_a_socket_served_by_another_user(pair, attacker_dir):
    _repo, alice, bob = pair
    user, d = attacker_dir
    if not os.stat("/tmp").st_mode & 0o001:  # the second user must reach its own directory in /tmp
        pytest.skip("/tmp cannot be entered by other users on this machine (mode 0700)")
    sock, log = d / "hijack.sock", d / "got.log"
    proc = subprocess.Popen(
        ["/usr/bin/python3", "-c", _FAKE_ENGINE, str(sock), str(log)],
        stdout=subprocess.PIPE,
        text=True,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        r = alice.run("send", "the secret", "--to", "@bob", THRUM_SOCKET=str(sock))
        assert_error(r, "another user", f"uid {user.pw_uid}")
        r = alice.run("daemon", "status", THRUM_SOCKET=str(sock))
        assert_error(r, "another user")
    finally:
        proc.kill()
        proc.wait()
    assert not log.exists() or log.read_bytes() == b""
    assert "the secret" not in inbox(bob)


# -- F6: private state files ----------------------------------------------------------------------------------------


def test_engine_state_and_pane_logs_are_private_whatever_the_umask(make_repo):
    repo = make_repo()
    old = os.umask(0o022)
    try:
        repo.env["THRUM_NAME"] = "alice"
        repo.ok("quickstart", "--name", "alice", "--role", "dev")
        # an older install's loose modes are tightened as the engine starts
        repo.stop()
        os.chmod(repo.var, 0o755)
        os.chmod(repo.var / "daemon.log", 0o644)
        repo.ok("daemon", "start")
        repo.ok("tmux", "create", "s1", "--cwd", str(repo.path), "--no-agent", "--runtime", "shell")
        repo.ok("tmux", "send", "s1", "echo private-output")
        logs = wait_for(lambda: list((repo.var / "panes").glob("*.log")), what="a pane log")
    finally:
        os.umask(old)
    assert mode(repo.var) == 0o700
    assert mode(repo.var / "panes") == 0o700
    for name in ("daemon.log", "thrum.pid", "thrum.lock"):
        assert mode(repo.var / name) == 0o600, name
    for log in logs:
        assert mode(log) == 0o600, log


# -- F8: idle and crowding connections -------------------------------------------------------------------------------


def _hold(path: str, n: int) -> list[socket.socket]:
    held = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX)
        for _attempt in range(2000):
            try:
                s.connect(path)
                break
            except BlockingIOError:
                time.sleep(0.002)
        held.append(s)
    return held


@pytest.fixture
def many_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low to hold 1,000 connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 4096, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_thousand_idle_connections_from_one_process_do_not_lock_agents_out(pair, many_fds):
    repo, alice, bob = pair
    held = _hold(layout_of(repo).socket_path, 1000)
    try:
        r = alice.run("send", "still here", "--to", "@bob")
        assert r.code == 0, r.err
    finally:
        for s in held:
            s.close()
    assert "still here" in inbox(bob)


_FILL_BACKLOG = textwrap.dedent("""
    import resource, socket, sys
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    queued = []
    while len(queued) < 5000:
        s = socket.socket(socket.AF_UNIX)
        s.setblocking(False)
        try:
            s.connect(sys.argv[1])
        except BlockingIOError:
            break
        queued.append(s)
    print(len(queued), flush=True)
    sys.stdin.read()
""")


def test_a_full_listen_backlog_is_retried_not_taken_for_a_dead_engine(stopped_engine, many_fds):
    repo, _alice, _bob, pid = stopped_engine
    path = layout_of(repo).socket_path
    # another process fills the stopped engine's listen backlog: a connect now gets EAGAIN
    filler = subprocess.Popen(
        [sys.executable, "-c", _FILL_BACKLOG, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert 0 < int(filler.stdout.readline()) < 5000
        probe = socket.socket(socket.AF_UNIX)
        probe.setblocking(False)
        with pytest.raises(BlockingIOError):
            probe.connect(path)
        probe.close()
        resume = threading.Timer(0.3, os.kill, (pid, signal.SIGCONT))
        resume.start()
        try:
            c = rpc_client.Client(path, 10.0).connect()
            try:
                assert c.call("engine.info", {})["pid"] == pid
            finally:
                c.close()
        finally:
            resume.join()
    finally:
        filler.kill()
        filler.wait()


def test_at_the_global_cap_the_longest_idle_connection_makes_room(make_repo):
    repo = make_repo()
    repo.env["THRUM_ENGINE__MAX_CONNECTIONS"] = "8"
    alice = repo.agent("alice", "dev")
    bob = repo.agent("bob", "dev")
    held = _hold(layout_of(repo).socket_path, 20)  # under the per-process cap, over the global one
    try:
        time.sleep(0.5)
        assert alice.run("send", "room", "--to", "@bob").code == 0
    finally:
        for s in held:
            s.close()
    assert "room" in inbox(bob)


# Opens N connections, each a `message.wait` of bob's (oldest first), says "ready", then on a line
# from stdin prints the answer each got within a few seconds (null: none), as one JSON list.
_WAIT_FLOOD = textwrap.dedent("""
    import json, socket, sys, time
    path, n = sys.argv[1], int(sys.argv[2])
    frame = {"jsonrpc": "2.0", "id": 1, "method": "message.wait", "params": {"caller": "bob", "timeout": 300}}
    held = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(json.dumps(frame).encode() + b"\\n")
        held.append(s)
        time.sleep(0.02)
    print("ready", flush=True)
    sys.stdin.readline()
    answers = []
    for s in held:
        s.settimeout(10)
        data = b""
        try:
            while not data.endswith(b"\\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (TimeoutError, OSError):
            pass
        answers.append(json.loads(data) if data.endswith(b"\\n") else None)
    print(json.dumps(answers), flush=True)
""")


def test_busy_waits_of_one_caller_cannot_fill_the_connection_cap(make_repo):
    """A wait holds its connection busy, and a busy one is never closed for room: a script opening
    waits past the per-process cap (forked) filled the engine. One caller's waits past eight end the
    oldest, with an error saying why, so the cap always has room and the newest waits keep waiting."""
    repo = make_repo()
    repo.env["THRUM_ENGINE__MAX_CONNECTIONS"] = "16"
    alice = repo.agent("alice", "dev")
    bob = repo.agent("bob", "dev")
    flood = subprocess.Popen(  # bob's own worktree: a wait needs a verified identity
        [sys.executable, "-c", _WAIT_FLOOD, str(layout_of(repo).socket_path), "16"],  # the global cap
        cwd=bob.cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert flood.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        r = alice.run("send", "room", "--to", "@bob")
        assert r.code == 0, r.err
        out, _ = flood.communicate("collect\n", timeout=120)
    finally:
        flood.kill()
        flood.wait()
    answers = json.loads(out)
    for ended in answers[:8]:
        assert ended is not None and "this wait was ended" in ended["error"]["message"], ended
        assert "at most 8 waits open" in ended["error"]["message"]
    for woken in answers[8:]:  # the newest eight were still waiting: "room" woke them
        assert woken is not None and woken["result"]["status"] == "received", woken
    assert "room" in inbox(bob)


def _closed_by_server(s: socket.socket, within: float = 30.0) -> bool:
    s.settimeout(within)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except TimeoutError:
        return False


def test_silent_and_idle_connections_are_closed_but_a_long_wait_is_not(make_repo):
    repo = make_repo()
    repo.env["THRUM_ENGINE__FIRST_FRAME_TIMEOUT_SECONDS"] = "1"
    repo.env["THRUM_ENGINE__IDLE_TIMEOUT_SECONDS"] = "1"
    alice = repo.agent("alice", "dev")
    path = layout_of(repo).socket_path
    silent = _hold(path, 1)[0]
    half = _hold(path, 1)[0]
    half.sendall(b'{"jsonrpc":"2.0",')
    idle = _hold(path, 1)[0]
    idle.sendall(b'{"jsonrpc":"2.0","id":1,"method":"engine.info"}\n')
    try:
        for s in (silent, half, idle):
            assert _closed_by_server(s)
    finally:
        for s in (silent, half, idle):
            s.close()
    # a `wait` blocked longer than the idle limit is not idle: it ends with its own timeout
    r = alice.run("wait", "--timeout", "3s", "--json")
    assert r.err == "" and r.json["status"] == "timeout"


# -- F12: a vanished socket, a deleted lock file ------------------------------------------------------------------------


def test_a_deleted_socket_is_bound_again_and_commands_keep_working(pair):
    repo, alice, bob = pair
    pid = repo.daemon_pid()
    os.unlink(layout_of(repo).socket_path)
    r = alice.run("send", "after rm", "--to", "@bob", timeout=30)
    assert r.code == 0, r.err
    assert alice.json("daemon", "status")["pid"] == pid
    assert daemon_pids(repo) == [pid]
    assert "after rm" in inbox(bob)


def test_a_deleted_lock_file_does_not_allow_a_second_engine(pair):
    repo, alice, bob = pair
    pid = repo.daemon_pid()
    os.unlink(layout_of(repo).lock_path)
    proc = run_daemon(repo, "--repo", str(repo.path))
    assert proc.returncode == 1
    assert "another engine is already running" in proc.stderr
    assert daemon_pids(repo) == [pid]
    assert alice.run("send", "one engine", "--to", "@bob").code == 0
    assert "one engine" in inbox(bob)
    # and the engine makes its lock file again, held
    lock = layout_of(repo).lock_path
    wait_for(lambda: os.path.exists(lock), what="thrum.lock made again")
    fd = os.open(lock, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


@pytest.fixture
def stopped_engine(pair):
    """The engine, SIGSTOP'd (SIGCONT at teardown whatever happens)."""
    repo, alice, bob = pair
    pid = repo.daemon_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        yield repo, alice, bob, pid
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def test_status_and_stop_when_the_engine_neither_answers_nor_has_a_socket(stopped_engine):
    repo, alice, _bob, pid = stopped_engine
    os.unlink(layout_of(repo).socket_path)
    assert_error(alice.run("daemon", "status"), f"running (pid {pid}) but not answering on its socket")
    r = alice.run("daemon", "stop", timeout=60)
    assert r.code == 0, r.err
    assert f"pid {pid}" in r.out
    wait_for(lambda: not is_alive(pid), what="the engine to exit")


# -- F17: a stopped engine --------------------------------------------------------------------------------------------


def test_a_stopped_engine_is_reported_and_queued_requests_do_not_run_later(stopped_engine):
    repo, alice, bob, pid = stopped_engine
    # Four clients at once (each gives up after two liveness probes, ~10 s): the same answers as
    # one after another, in a quarter of the time.
    commands = {
        "send": ("send", "while stopped", "--to", "@bob"),
        "wait": ("wait", "--timeout", "5s"),
        "status": ("daemon", "status"),
        "prime": ("prime",),
    }
    results: dict = {}
    threads = [
        threading.Thread(target=lambda k=k, a=a: results.__setitem__(k, alice.run(*a, timeout=40)))
        for k, a in commands.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_error(results["send"], f"the engine (pid {pid}) is not answering")
    assert_error(results["wait"], "is not answering", code=2)  # wait's exit code for "no answer"
    assert_error(results["status"], f"(pid {pid}) is not answering")
    assert results["prime"].code == 0 and "not answering" in results["prime"].out
    os.kill(pid, signal.SIGCONT)
    # what the client gave up on never happens behind its back
    assert "while stopped" not in inbox(bob)
    assert is_alive(pid) and alice.json("daemon", "status")["pid"] == pid
    log = (repo.var / "daemon.log").read_text()
    assert "dropped message.send" in log


def test_stop_stops_a_stopped_engine(stopped_engine):
    _repo, alice, _bob, pid = stopped_engine
    r = alice.run("daemon", "stop", timeout=60)
    assert r.code == 0, r.err
    wait_for(lambda: not is_alive(pid), what="the engine to exit")


# -- F15 / F16: error texts -------------------------------------------------------------------------------------------

_BAD_JSON = [
    "",
    " ",
    "garbage",
    "{bad",
    "{",
    "[1,",
    "nul",
    '{"a":',
    '{"a":1',
    '"abc',
    "[1,]",
    "{}x",
    "\x00",
    "-",
    "1e",
    '{"a" 1}',
    "[" * 100000,
]


@pytest.mark.parametrize("text", _BAD_JSON, ids=range(len(_BAD_JSON)))
def test_the_light_json_reader_raises_only_value_error(text):
    with pytest.raises(ValueError):
        rpc_client.loads(text)


def test_the_light_json_reader_on_random_input_agrees_with_json():
    rnd = random.Random(9)
    alphabet = '{}[]:,"\\ 0123456789.eE+-truefalsnul\n\t\x00é'
    for _ in range(5000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 12)))
        try:
            expected = json.loads(text)
        except (ValueError, RecursionError):
            with pytest.raises(ValueError):
                rpc_client.loads(text)
        else:
            assert rpc_client.loads(text) == expected


@pytest.mark.parametrize("content", ["garbage\n", "", '{"pid": ', "[1,2]"])
def test_a_garbage_pid_file_is_harmless_to_status_and_stop(pair, content):
    repo, alice, _bob = pair
    pid = repo.daemon_pid()
    (repo.var / "thrum.pid").write_text(content)
    assert alice.json("daemon", "status")["pid"] == pid
    r = alice.run("daemon", "stop")
    assert r.code == 0 and f"pid {pid}" in r.out, r.err
    wait_for(lambda: not is_alive(pid), what="the engine to exit")
    (repo.var / "thrum.pid").write_text(content)
    r = alice.run("daemon", "status")
    assert r.code == 1 and r.err == "" and "not running" in r.out
    r = alice.run("daemon", "stop")
    assert r.code == 0 and r.err == "" and "not running" in r.out


def test_garbage_structured_data_and_identity_files_are_one_error_line(pair):
    _repo, alice, _bob = pair
    assert_error(alice.run("send", "hi", "--to", "@bob", "--structured", "{bad"), "--structured must be JSON")
    ident = alice.cwd / ".thrum" / "identities" / "alice.json"
    for content in ("garbage", ""):
        ident.write_text(content)
        r = alice.run("send", "hi", "--to", "@bob")
        assert "Traceback" not in r.err and "StopIteration" not in r.err, r.err


def test_a_directory_at_the_socket_path_is_a_clear_error(pair):
    repo, alice, _bob = pair
    repo.stop()
    os.mkdir(layout_of(repo).socket_path)
    assert_error(alice.run("send", "hi", "--to", "@bob"), "is a directory")
    assert_error(alice.run("daemon", "status"), "is a directory")


def test_a_body_over_the_frame_limit_is_too_large_not_a_lost_engine(pair, tmp_path):
    _repo, alice, bob = pair
    big = tmp_path / "big.txt"
    big.write_text("x" * (10 * 1024 * 1024))
    line = assert_error(alice.run("send", "--body-file", str(big), "--to", "@bob"), "message too large (")
    assert "limit 1048576 bytes" in line
    assert alice.run("send", "after big", "--to", "@bob").code == 0
    assert "after big" in inbox(bob)


def test_an_answer_too_large_for_the_client_says_so(pair, monkeypatch):
    repo, _alice, _bob = pair
    monkeypatch.setattr(rpc_client, "MAX_RESPONSE", 64)
    c = rpc_client.Client(layout_of(repo).socket_path, 10.0).connect()
    try:
        with pytest.raises(rpc_client.RpcError) as info:
            c.call("engine.info", {})
    finally:
        c.close()
    assert info.value.kind == "too_large" and "larger than this client accepts" in info.value.message


def test_eight_concurrent_daemon_starts_print_the_one_real_pid(pair):
    repo, alice, _bob = pair
    alice.ok("daemon", "stop")
    wait_for(lambda: daemon_pids(repo) == [], what="no daemon")
    procs = [
        subprocess.Popen(
            THRUM + ["daemon", "start", "--json"],
            cwd=alice.cwd,
            env=alice.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outs = [p.communicate(timeout=90) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    pids = {json.loads(out)["pid"] for out, _ in outs}
    started = [json.loads(out)["started"] for out, _ in outs]
    wait_for(lambda: len(daemon_pids(repo)) == 1, 30, "exactly one daemon")
    assert pids == {repo.daemon_pid()} == set(daemon_pids(repo))
    assert started.count(True) == 1


async def test_a_console_hosted_engine_keeps_a_second_engine_out_past_a_deleted_lock_file(team):
    from thrum_engine.settings import load_settings
    from thrum_tui.engine_handle import InProcess, open_engine

    repo, _alice, _bob = team
    repo.stop()  # the agents' commands started a daemon: the console hosts the engine instead
    layout = Layout.discover(str(repo.path))
    async with open_engine(layout, load_settings(layout.config_file), "ada_lovelace") as engine:
        assert isinstance(engine, InProcess)
        os.unlink(layout.lock_path)
        proc = await asyncio.to_thread(run_daemon, repo, "--repo", str(repo.path))
        assert proc.returncode == 1, proc.stderr
        assert "another engine is already running" in proc.stderr

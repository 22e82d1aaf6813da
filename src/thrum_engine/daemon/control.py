"""Start, stop and inspect the engine from the CLI. Stdlib only; `subprocess` is
imported only when a daemon must actually be spawned."""

from __future__ import annotations

import os
import sys
import time

from thrum_engine.daemon import lock
from thrum_engine.files import open_append_private as private_file
from thrum_engine.files import private_dir, write_private
from thrum_engine.layout import Layout, NotARepo, socket_fallback_dir
from thrum_engine.private_fs import NotPrivate, ensure_socket_dir
from thrum_engine.rpc.client import EngineUnavailable, ForeignServer, connect_engine

START_TIMEOUT = 15.0


class StartFailed(Exception):
    pass


def read_pid_file(layout: Layout) -> dict | None:
    from thrum_engine.rpc.lightjson import loads

    try:
        with open(layout.pid_path, encoding="utf-8") as fh:
            data = loads(fh.read())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def anchor(layout: Layout) -> str | None:
    """What the engine lock is anchored on (see daemon.lock): the repo's git directory."""
    try:
        return layout.git_dir
    except (OSError, NotARepo):
        return None


def lock_held(layout: Layout) -> bool:
    return lock.held(layout.lock_path, anchor(layout))


def engine_pid(layout: Layout) -> int | None:
    """The pid of the engine holding this repo's lock (from the kernel's lock table), or None."""
    return lock.holder(layout.lock_path, anchor(layout))


def cleanup_stale(layout: Layout) -> bool:
    """Remove a pid file and socket left by a dead engine. Only when no engine holds the lock."""
    if lock_held(layout):
        return False
    removed = False
    for path in (layout.pid_path, layout.socket_path):
        try:
            os.unlink(path)
            removed = True
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise StartFailed(
                f"{path} is a directory, where the engine's socket or pid file belongs: remove it"
            ) from None
        except OSError as exc:
            raise StartFailed(f"cannot remove the stale {path}: {exc.strerror or exc}") from None
    return removed


def _log_tail(layout: Layout, since: int) -> str:
    try:
        with open(layout.log_path, "rb") as fh:
            fh.seek(since)
            lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    ours = [ln[len("Error: ") :] for ln in lines if ln.startswith("Error: ")]
    errors = [ln for ln in lines if "ERROR" in ln or "Error" in ln]
    return (ours or errors or lines or [""])[-1]


def spawn(layout: Layout, *, local: bool = False) -> int:
    import subprocess

    private_dir(layout.var)
    # The engine has no identity of its own; settings overrides (THRUM_ENGINE__..., etc.) do pass.
    env = {k: v for k, v in os.environ.items() if k not in ("THRUM_NAME", "THRUM_ROLE", "THRUM_MODULE")}
    env.pop("TMUX", None)
    env.pop("TMUX_PANE", None)
    # Make the daemon importable exactly as this CLI is, editable install or not.
    pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    args = [sys.executable, "-m", "thrum_engine.daemon", "--repo", layout.repo]
    if local:
        args.append("--local")
    with open(private_file(layout.log_path), "ab") as logf:
        proc = subprocess.Popen(
            args,
            cwd=layout.repo,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            start_new_session=True,
            close_fds=True,
        )
    return proc.pid


def _serving(layout: Layout) -> int | None:
    """The pid of the engine answering connections on the socket (its peer credentials), or None."""
    client = connect_engine(layout, 5.0)
    if client is None:
        return None
    client.close()
    return client.peer_pid


def _wait_serving(layout: Layout, deadline: float, give_up=None) -> int | None:
    delay = 0.005
    while time.monotonic() < deadline:
        pid = _serving(layout)
        if pid is not None:
            return pid
        if give_up is not None and give_up():
            return _serving(layout)
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    return None


def local_session(layout: Layout) -> bool:
    """Whether the engine was last started `--local` and not stopped since (`Layout.local_session_path`)."""
    return os.path.exists(layout.local_session_path)


def start(layout: Layout, *, local: bool = False, timeout: float = START_TIMEOUT) -> tuple[int | None, bool]:
    """Ensure an engine serves this repo. Returns (pid of the engine serving it, started_by_us).
    `local`: a local-only engine, until `stop`; an engine started after a `--local` one that was
    never stopped (a crash, a reboot) is local-only too, or it would push what was meant to stay."""
    local = local or local_session(layout)
    try:
        pid = _serving(layout)
        if pid is not None:
            return pid, False
        if not layout.initialized():
            raise StartFailed(
                f"thrum is not initialized in {layout.repo}: run `thrum init` (or `thrum quickstart`)"
            )
        deadline = time.monotonic() + timeout
        holder = engine_pid(layout)
        while holder is not None or lock_held(layout):
            # An engine runs but its socket did not answer: it binds its socket again when the file goes
            # missing (a second engine could never take over: the lock is held).
            pid = _wait_serving(layout, deadline, lambda: not lock_held(layout))
            if pid is not None:
                return pid, False
            if not lock_held(layout):
                break  # it let go of the lock: start one
            if time.monotonic() < deadline:
                # It let go and another starting engine (a concurrent command's) took the lock
                # before binding its socket: wait for that one.
                holder = engine_pid(layout)
                continue
            who = f"the engine (pid {holder})" if holder else "an engine"
            raise StartFailed(
                f"{who} holds the lock but does not answer on {layout.socket_path}: "
                "`thrum daemon stop` stops it"
            )
        cleanup_stale(layout)
        ensure_socket_dir(layout.socket_path, socket_fallback_dir())
        log_start = os.path.getsize(layout.log_path) if os.path.exists(layout.log_path) else 0
        if local:
            write_private(layout.local_session_path, "")
        child = spawn(layout, local=local)

        def child_failed() -> bool:
            try:
                done, _ = os.waitpid(child, os.WNOHANG)
            except ChildProcessError:
                done = child
            return done == child and not lock_held(layout)

        pid = _wait_serving(layout, deadline, child_failed)
        if pid is not None:
            return pid, pid == child
        if child_failed():
            raise StartFailed(
                f"the engine did not start: {_log_tail(layout, log_start) or 'see daemon logs'}"
            )
        raise StartFailed(f"the engine did not come up within {timeout:g}s: see `thrum daemon logs`")
    except (NotPrivate, ForeignServer) as exc:
        raise StartFailed(str(exc)) from None
    except OSError as exc:  # .thrum/var or the log cannot be made (a symlink, read-only, full)
        raise StartFailed(f"cannot start the engine: {exc}") from None


def is_our_engine(pid: int, layout: Layout) -> bool:
    """Whether `pid` is the process holding this repo's engine lock (never signal anything else)."""
    return engine_pid(layout) == pid


def stop(layout: Layout, timeout: float = 10.0) -> int | None:
    """Stop the engine (`_stop_engine`); a `--local` session ends with it."""
    pid = _stop_engine(layout, timeout)
    try:
        os.remove(layout.local_session_path)
    except FileNotFoundError:
        pass
    return pid


def _stop_engine(layout: Layout, timeout: float) -> int | None:
    """Ask the engine to stop and wait for it to exit. Returns its pid, or None if none ran.

    When the socket does not answer (gone, or the engine is stopped or wedged), the engine is
    found through its lock and signalled: SIGTERM (with SIGCONT for a stopped one), SIGKILL last."""
    import signal

    try:
        client = connect_engine(layout, 5.0)
    except ForeignServer as exc:
        raise StartFailed(str(exc)) from None
    pid = client.peer_pid if client is not None else None
    asked = False
    if client is not None:
        try:
            result = client.call("daemon.stop", {})
            pid = result.get("pid", pid) if isinstance(result, dict) else pid
            asked = True
        except (EngineUnavailable, TimeoutError, OSError):
            pass  # stopped or wedged: found through its lock below
        finally:
            client.close()
    holder = engine_pid(layout)
    if not asked:
        if holder is None:
            if not lock_held(layout):
                cleanup_stale(layout)
                return None
            raise StartFailed("an engine holds the lock but cannot be found: see `thrum daemon logs`")
        pid = holder
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not lock_held(layout):
            return pid
        time.sleep(0.02)
    holder = engine_pid(layout)
    if holder is not None:
        os.kill(holder, signal.SIGKILL)
        kill_deadline = time.monotonic() + 5.0
        while lock_held(layout) and time.monotonic() < kill_deadline:
            time.sleep(0.02)
    return pid

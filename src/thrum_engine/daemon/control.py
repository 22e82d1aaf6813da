"""Start, stop and inspect the engine from the CLI. Stdlib only; `subprocess` is
imported only when a daemon must actually be spawned."""

from __future__ import annotations

import os
import sys
import time

from thrum_engine.daemon import lock
from thrum_engine.layout import Layout
from thrum_engine.rpc.client import Client, EngineUnavailable

START_TIMEOUT = 15.0


class StartFailed(Exception):
    pass


def read_pid_file(layout: Layout) -> dict | None:
    from thrum_engine.rpc.client import loads

    try:
        with open(layout.pid_path, encoding="utf-8") as fh:
            data = loads(fh.read())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale(layout: Layout) -> bool:
    """Remove a pid file and socket left by a dead engine. Only when no engine holds the lock."""
    if lock.held(layout.lock_path):
        return False
    removed = False
    for path in (layout.pid_path, layout.socket_path):
        try:
            os.unlink(path)
            removed = True
        except FileNotFoundError:
            pass
    return removed


def try_connect(layout: Layout, timeout: float | None = 60.0) -> Client | None:
    try:
        return Client(layout.socket_path, timeout).connect()
    except EngineUnavailable:
        return None


def _log_tail(layout: Layout, since: int) -> str:
    try:
        with open(layout.log_path, "rb") as fh:
            fh.seek(since)
            lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    ours = [ln[len("Error: "):] for ln in lines if ln.startswith("Error: ")]
    errors = [ln for ln in lines if "ERROR" in ln or "Error" in ln]
    return (ours or errors or lines or [""])[-1]


def spawn(layout: Layout, *, local: bool = False) -> int:
    import subprocess

    os.makedirs(layout.var, exist_ok=True)
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
    with open(layout.log_path, "ab") as logf:
        proc = subprocess.Popen(
            args, cwd=layout.repo, env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
            start_new_session=True, close_fds=True,
        )
    return proc.pid


def start(layout: Layout, *, local: bool = False, timeout: float = START_TIMEOUT) -> tuple[int | None, bool]:
    """Ensure an engine serves this repo. Returns (pid, started_by_us)."""
    client = try_connect(layout, 5.0)
    if client is not None:
        client.close()
        info = read_pid_file(layout) or {}
        return info.get("pid"), False
    if not layout.initialized():
        raise StartFailed(f"thrum is not initialized in {layout.repo}: run `thrum init` (or `thrum quickstart`)")
    cleanup_stale(layout)
    log_start = os.path.getsize(layout.log_path) if os.path.exists(layout.log_path) else 0
    pid = spawn(layout, local=local)
    deadline = time.monotonic() + timeout
    delay = 0.005
    while time.monotonic() < deadline:
        client = try_connect(layout, 5.0)
        if client is not None:
            client.close()
            return pid, True
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done == pid and not lock.held(layout.lock_path):
            # Ours exited and nobody else holds the lock: a real start failure.
            client = try_connect(layout, 5.0)
            if client is not None:
                client.close()
                return None, False
            raise StartFailed(f"the engine did not start: {_log_tail(layout, log_start) or 'see daemon logs'}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    raise StartFailed(f"the engine did not come up within {timeout:g}s: see `thrum daemon logs`")


def stop(layout: Layout, timeout: float = 10.0) -> int | None:
    """Ask the engine to stop and wait for it to exit. Returns its pid, or None if none ran."""
    info = read_pid_file(layout) or {}
    pid = info.get("pid")
    client = try_connect(layout, 5.0)
    if client is None:
        cleanup_stale(layout)
        return None
    try:
        result = client.call("daemon.stop", {})
        pid = result.get("pid", pid)
    except EngineUnavailable:
        pass
    finally:
        client.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not lock.held(layout.lock_path):
            return pid
        time.sleep(0.02)
    if pid:
        import signal

        os.kill(pid, signal.SIGTERM)
    return pid

"""`python -m thrum_engine.daemon --repo PATH`: run the engine headless until told to stop."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys
import time

from thrum_engine.daemon import lock
from thrum_engine.errors import SchemaTooNew
from thrum_engine.files import open_append_private as private_file
from thrum_engine.files import private_dir
from thrum_engine.layout import Layout
from thrum_engine.private_fs import NotPrivate

log = logging.getLogger("thrum.daemon")

DRAIN_SECONDS = 2.0


def setup_logging(path: str, level: str) -> None:
    private_dir(os.path.dirname(path))
    os.close(private_file(path))  # born 0600: FileHandler would follow the umask
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    set_log_level(level)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it logs every change at INFO


def set_log_level(level: str) -> None:
    logging.getLogger().setLevel(getattr(logging, level.upper(), logging.INFO))


def write_pid_file(layout: Layout, host: str) -> None:
    tmp = layout.pid_path + ".tmp"
    try:
        os.unlink(tmp)  # a leftover (or a planted symlink): never written through
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with open(fd, "w", encoding="utf-8") as fh:
        json.dump(
            {"pid": os.getpid(), "host": host, "started_at": time.time(), "socket": layout.socket_path}, fh
        )
    os.replace(tmp, layout.pid_path)


def remove_pid_file(layout: Layout) -> None:
    try:
        with open(layout.pid_path, encoding="utf-8") as fh:
            if json.load(fh).get("pid") != os.getpid():
                return
        os.unlink(layout.pid_path)
    except (OSError, ValueError):
        pass


async def serve(
    layout: Layout,
    settings,
    *,
    host: str = "daemon",
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    on_engine=None,
) -> None:
    """Run engine + socket until `stop` is set (signals and `daemon stop` set it).

    `on_engine(engine)` is called once it serves and `on_engine(None)` before it stops: the
    console uses the Engine itself (direct calls, the push bus)."""
    from thrum_engine.engine.assemble import build
    from thrum_engine.rpc.server import RpcServer

    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    stopping = stop

    def request_stop() -> None:  # `daemon stop` over the socket: answered first, then stopped
        loop.call_later(0.05, stopping.set)

    engine = build(layout, settings, host=host, request_stop=request_stop)
    await engine.start()
    server = RpcServer(engine, layout.socket_path)
    try:
        await server.start()
    except BaseException:
        await engine.stop()
        raise
    write_pid_file(layout, host)
    if host == "daemon":
        tune_gc()
    log.info("listening on %s (pid %d)", layout.socket_path, os.getpid())
    if on_engine is not None:
        on_engine(engine)
    if ready is not None:
        ready.set()

    async def keep_lock() -> None:
        while True:
            await asyncio.sleep(server.CHECK_SOCKET_SECONDS)
            lock.restore()  # a deleted thrum.lock is made again, and held

    keeper = asyncio.create_task(keep_lock(), name="thrum-lock-keeper")
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        keeper.cancel()
        if on_engine is not None:
            on_engine(None)
        await server.close()
        await engine.stop()
        remove_pid_file(layout)
        log.info("stopped")


def tune_gc() -> None:
    """Fewer cyclic collections for a daemon that allocates a few dozen containers per message:
    what start-up built (settings, caches, modules) is frozen out of every collection, and the young
    generation is collected every 20,000 net allocations instead of 700. At the defaults the
    collector was ~10 % of the daemon's CPU per message (perf, 4 pipelined senders); with these,
    pipelined CPU per message fell 9-11 % (bench/README, session 12). Reference cycles are still collected,
    just in bigger, rarer passes. The console keeps Python's defaults."""
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def raise_fd_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard one: each connection costs the engine an fd, and the
    common soft default (1,024) is what a crowd of idle connections would exhaust first."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else max(soft, 65536), hard)
            )
    except (ImportError, ValueError, OSError):
        pass


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    repo = None
    local = False
    while argv:
        a = argv.pop(0)
        if a == "--repo" and argv:
            repo = argv.pop(0)
        elif a == "--local":
            local = True
        else:
            print(f"Error: unknown flag: {a}", file=sys.stderr)
            return 1
    layout = Layout.discover(repo) if repo else Layout.discover()
    from thrum_engine.errors import ThrumError
    from thrum_engine.settings import load_settings

    try:
        settings = load_settings(layout.config_file, local=local or None)
    except ThrumError as exc:  # not JSON, or a bad value (named)
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    try:
        setup_logging(layout.log_path, settings.engine.log_level)
    except OSError as exc:
        print(f"Error: cannot write the engine log {layout.log_path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    raise_fd_limit()
    fd = lock.acquire(layout.lock_path, anchor=layout.git_dir)
    if fd is None:
        msg = f"another engine is already running for {layout.repo}"
        log.info("refusing to start: %s", msg)
        print(f"Error: {msg}", file=sys.stderr)
        return 1
    try:
        os.write(fd, b"")  # keep fd referenced for the process lifetime
        stop = asyncio.Event()

        async def run() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.add_signal_handler(sig, stop.set)
            await serve(layout, settings, stop=stop)

        asyncio.run(run())
    except (NotPrivate, SchemaTooNew) as exc:  # refusals with their own words: the one Error line
        log.error("refusing to start: %s", exc)
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except Exception:
        log.exception("engine crashed")
        return 1
    finally:
        lock.release(fd)
    return 0

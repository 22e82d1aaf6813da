"""Running monitors: match lines, debounce, deliver, log; command restarts, cron runs, and the
shared watchers for files and panes (one per file or pane, however many rules read it).

A delivery that fails is logged in the engine log and in the monitor's own log (`monitor logs`)
and shown as `last_error` — never swallowed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field

from thrum_engine.durations import iso
from thrum_engine.monitors.sources import FileFollower, LineSplitter, command_output, minimal_env

log = logging.getLogger("thrum.monitors")

QUICK_CRASH_SECONDS = 10.0  # a continuous command that dies sooner than this counts as a crash
LOG_KEEP = 500  # events kept per monitor


@dataclass
class Monitor:
    row: dict
    regex: re.Pattern
    spec: dict
    window_until: float = 0.0  # leading-edge debounce: matches before this are counted, not sent
    suppressed: int = 0
    last_suppressed: str = ""
    flush: asyncio.TimerHandle | None = None
    task: asyncio.Task | None = None
    proc: asyncio.subprocess.Process | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    sender: asyncio.Task | None = None
    chunk_regex: re.Pattern | None = None

    @property
    def id(self) -> str:
        return self.row["id"]

    @property
    def name(self) -> str:
        return self.row["name"]


class MonitorService:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.settings = engine.settings.monitors
        self.running: dict[str, Monitor] = {}
        self._files: dict[str, tuple[FileFollower, set[str]]] = {}  # path -> follower, monitor ids
        self._dir_watchers: dict[str, tuple[asyncio.Task, asyncio.Event]] = {}
        self._panes: dict[str, dict[str, LineSplitter]] = {}  # session -> monitor id -> splitter
        self._listening_panes = False
        self.permissions = None

    # -- lifecycle --
    async def start(self) -> None:
        if self.engine.tmux is not None:
            from thrum_engine.monitors.permissions import PermissionWatch

            self.permissions = PermissionWatch(self.engine)
            self.permissions.start()
        for row in await self.engine.store.all("SELECT * FROM monitors WHERE status = 'running' ORDER BY created_at"):
            try:
                await self.run(row)
            except Exception as exc:
                log.exception("monitor %s could not start", row["name"])
                await self.set_status(row["id"], "failed", f"could not start after restart: {exc}")

    async def stop_all(self) -> None:
        if self.permissions is not None:
            self.permissions.stop()
        for mid in list(self.running):
            await self.halt(mid)
        for task, stop in self._dir_watchers.values():
            stop.set()
            task.cancel()
        self._dir_watchers.clear()

    # -- persistence --
    async def write(self, sql: str, params: tuple) -> None:
        async with self.engine.writer.lock:
            await self.engine.store.write_local(sql, [params])

    async def event(self, mid: str, kind: str, line: str = "", message_id: str | None = None,
                    detail: str = "") -> None:
        await self.write("INSERT INTO monitor_events(monitor_id, at, kind, line, message_id, detail)"
                         " VALUES (?,?,?,?,?,?)", (mid, iso(), kind, line[:2000], message_id, detail[:2000]))

    async def set_status(self, mid: str, status: str, error: str | None = None) -> None:
        if error is None:
            await self.write("UPDATE monitors SET status=?, updated_at=? WHERE id=?", (status, iso(), mid))
        else:
            await self.write("UPDATE monitors SET status=?, updated_at=?, last_error=? WHERE id=?",
                             (status, iso(), error, mid))

    # -- running one rule --
    async def run(self, row: dict) -> Monitor:
        spec = json.loads(row["spec"])
        m = Monitor(row=row, regex=re.compile(row["pattern"]), spec=spec)
        if not any(a in row["pattern"] for a in ("\\A", "\\Z", "\\z")):
            m.chunk_regex = re.compile(row["pattern"], re.MULTILINE)
        self.running[m.id] = m
        m.sender = asyncio.create_task(self._sender(m), name=f"monitor-send-{m.name}")
        source = row["source"]
        if source == "command":
            m.task = asyncio.create_task(self._command_loop(m), name=f"monitor-{m.name}")
        elif source == "file":
            self._attach_file(m)
        elif source == "pane":
            self._attach_pane(m)
        await self.event(m.id, "start", detail=f"{source} source")
        return m

    async def halt(self, mid: str) -> None:
        m = self.running.pop(mid, None)
        if m is None:
            return
        m.stop.set()
        if m.flush:
            m.flush.cancel()
        if m.proc is not None and m.proc.returncode is None:
            try:
                os.killpg(m.proc.pid, 15)
            except (ProcessLookupError, PermissionError):
                pass
        for t in (m.task, m.sender):
            if t is not None:
                t.cancel()
                try:
                    await t
                except (asyncio.CancelledError, Exception):
                    pass
        self._detach_file(m)
        for splitters in self._panes.values():
            splitters.pop(mid, None)

    # -- matching and debounce --
    def feed_text(self, m: Monitor, split: LineSplitter, text: str) -> None:
        """A chunk of output. Most chunks match nothing: one search over the chunk skips the
        per-line work for them (the chunk-wide pattern can only err towards searching)."""
        text = text.replace("\r\n", "\n")  # so `$` sees line ends the same in both passes
        if m.chunk_regex is not None and not m.chunk_regex.search(split.partial + text):
            split.feed(text)
            return
        for line in split.feed(text):
            self.feed(m, line)

    def feed(self, m: Monitor, line: str) -> None:
        line = line[: self.settings.max_line_chars]
        if not m.regex.search(line):
            return
        now = time.monotonic()
        debounce = m.row["debounce"]
        if now < m.window_until:
            m.suppressed += 1
            m.last_suppressed = line
            return
        m.window_until = now + debounce
        m.outbox.put_nowait(("match", line))
        if debounce > 0:
            m.flush = asyncio.get_running_loop().call_later(debounce, self._flush, m)

    def _flush(self, m: Monitor) -> None:
        """End of a debounce window: one summary for what was held back."""
        m.flush = None
        if m.suppressed:
            n, last = m.suppressed, m.last_suppressed
            m.suppressed, m.last_suppressed = 0, ""
            m.outbox.put_nowait(("suppressed", f"{n} more match{'es' if n != 1 else ''} suppressed"
                                               f" in the last {m.row['debounce']:g}s (last: {last})"))

    async def _sender(self, m: Monitor) -> None:
        while True:
            kind, text = await m.outbox.get()
            await self.deliver(m, kind, text)

    async def deliver(self, m: Monitor, kind: str, text: str) -> str | None:
        from thrum_engine.messaging import create_message

        body = f"[{m.name}] {text}"
        try:
            ev = await create_message(self.engine, f"monitor:{m.name}", body, to=[m.row["target"]], fmt="plain",
                                      scopes=[f"monitor:{m.name}"], refs=[f"monitor:{m.id}"])
        except Exception as exc:
            reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            log.error("monitor %s could not deliver to %s: %s", m.name, m.row["target"], reason)
            await self.event(m.id, "error", text, detail=f"delivery failed: {reason}")
            await self.write("UPDATE monitors SET last_error=?, matches=matches+?, updated_at=? WHERE id=?",
                             (f"delivery failed: {reason}", 1 if kind == "match" else 0, iso(), m.id))
            return None
        mid = ev["data"]["message_id"]
        await self.event(m.id, kind, text, message_id=mid)
        await self.write("UPDATE monitors SET matches=matches+?, delivered=delivered+1, last_match_at=?,"
                         " updated_at=? WHERE id=?", (1 if kind == "match" else 0, iso(), iso(), m.id))
        await self.write("DELETE FROM monitor_events WHERE monitor_id=? AND seq <= (SELECT MAX(seq) FROM"
                         " monitor_events WHERE monitor_id=?) - ?", (m.id, m.id, LOG_KEEP))
        return mid

    async def notify_target(self, m: Monitor, text: str) -> None:
        await self.deliver(m, "notice", text)

    # -- command source --
    async def _command_loop(self, m: Monitor) -> None:
        spec = m.spec
        env = minimal_env(spec.get("env") or {})
        schedule = m.row["schedule"]
        crashes = 0
        backoff = 1.0
        while not m.stop.is_set():
            if schedule:
                from croniter import croniter

                wait = croniter(schedule, time.time()).get_next(float) - time.time()
                try:
                    await asyncio.wait_for(m.stop.wait(), max(wait, 0))
                    return
                except asyncio.TimeoutError:
                    pass
            started = time.monotonic()
            code = None
            split = LineSplitter(self.settings.max_line_chars)
            try:
                async for text in command_output(spec["argv"], spec["cwd"], env, lambda p: setattr(m, "proc", p)):
                    self.feed_text(m, split, text)
                if split.partial:
                    self.feed(m, split.partial)
                code = m.proc.returncode if m.proc else None
            except (FileNotFoundError, PermissionError) as exc:
                code = 127
                await self.event(m.id, "error", detail=f"cannot run {spec['argv'][0]}: {exc}")
            await self.event(m.id, "exit", detail=f"exit status {code}")
            if schedule or m.stop.is_set():
                continue  # a scheduled command runs once per tick
            quick = time.monotonic() - started < QUICK_CRASH_SECONDS
            crashes = crashes + 1 if quick else 0
            if crashes >= self.settings.give_up_after_crashes:
                msg = f"gave up after {crashes} quick exits in a row (last exit status {code})"
                await self.set_status(m.id, "failed", msg)
                await self.notify_target(m, f"monitor stopped: {msg}")
                self.running.pop(m.id, None)
                return
            await self.write("UPDATE monitors SET restarts=restarts+1, updated_at=? WHERE id=?", (iso(), m.id))
            delay = backoff if quick else 1.0
            backoff = min(backoff * 2, self.settings.restart_backoff_max_seconds) if quick else 1.0
            try:
                await asyncio.wait_for(m.stop.wait(), delay)
                return
            except asyncio.TimeoutError:
                pass

    # -- file source: one follower per file, one watcher per directory --
    def _attach_file(self, m: Monitor) -> None:
        path = m.spec["path"]
        if path not in self._files:
            self._files[path] = (FileFollower(path, self.settings.max_line_chars), set())
        self._files[path][1].add(m.id)
        d = os.path.dirname(path)
        if d not in self._dir_watchers:
            stop = asyncio.Event()
            self._dir_watchers[d] = (asyncio.create_task(self._watch_dir(d, stop), name=f"monitor-watch-{d}"), stop)

    def _detach_file(self, m: Monitor) -> None:
        path = m.spec.get("path")
        if not path or path not in self._files:
            return
        self._files[path][1].discard(m.id)
        if not self._files[path][1]:
            del self._files[path]
        d = os.path.dirname(path)
        if d in self._dir_watchers and not any(os.path.dirname(p) == d for p in self._files):
            task, stop = self._dir_watchers.pop(d)
            stop.set()

    async def _watch_dir(self, d: str, stop: asyncio.Event) -> None:
        from watchfiles import awatch

        def ours(change, path: str) -> bool:
            return path in self._files

        try:
            async for changes in awatch(d, watch_filter=ours, debounce=50, step=10, stop_event=stop,
                                        rust_timeout=1000, recursive=False):
                for path in {p for _c, p in changes}:
                    self._pump_file(path)
        except Exception:
            if not stop.is_set():
                log.exception("file watcher on %s stopped", d)

    def _pump_file(self, path: str) -> None:
        entry = self._files.get(path)
        if entry is None:
            return
        follower, mids = entry
        for line in follower.read_new():
            for mid in list(mids):
                m = self.running.get(mid)
                if m is not None:
                    self.feed(m, line)

    # -- pane source: the tmux manager's stream --
    def _attach_pane(self, m: Monitor) -> None:
        tmux = self.engine.tmux
        if tmux is not None and not self._listening_panes:
            tmux.output_listeners.append(self._on_pane_output)
            self._listening_panes = True
        self._panes.setdefault(m.spec["session"], {})[m.id] = LineSplitter(self.settings.max_line_chars)

    def _on_pane_output(self, session, text: str) -> None:
        from thrum_engine.tmux.panes import render

        for mid, split in list(self._panes.get(session.name, {}).items()):
            m = self.running.get(mid)
            if m is not None:
                for line in split.feed(text):
                    self.feed(m, render(line))

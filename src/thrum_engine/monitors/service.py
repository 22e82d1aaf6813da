"""Running monitors: match lines, debounce, deliver, log; command restarts, cron runs, and the
shared watchers for files and panes (one per file or pane, however many rules read it).

A delivery that fails is logged in the engine log and in the monitor's own log (`monitor logs`)
and shown as `last_error` — never swallowed.

Sources only split lines; matching happens in each rule's matcher task, which hands batches of
lines to the match pool (`thrum_engine.patterns`) under a time budget. A rule whose pattern runs
past the budget, or whose file escapes the allowed area, is stopped with the reason persisted
(status `failed`, `last_error`, an `error` event), so it stays stopped across restarts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass, field

from thrum_engine.cron import cron_next
from thrum_engine.durations import iso, parse_iso
from thrum_engine.engine.tasks import cancel_and_wait
from thrum_engine.errors import ThrumError
from thrum_engine.monitors.sources import (
    FileFollower,
    LineSplitter,
    PathEscaped,
    command_output,
    inside,
    minimal_env,
)
from thrum_engine.patterns import Pattern, PatternTimeout, compile_pattern, matching_lines, off_loop

log = logging.getLogger("thrum.monitors")

QUICK_CRASH_SECONDS = 10.0  # a continuous command that dies sooner than this counts as a crash
LOG_KEEP = 500  # events kept per monitor
INBOX_BATCHES = 16  # batches (a read each, <= 64 KiB from a command) waiting for a rule's matcher; past it
# a command waits and file/pane lines are dropped, so a rule stuck in its budget holds little
BATCH_LINES = 2000  # waiting batches are merged up to this many lines per trip to the match pool


@dataclass
class Monitor:
    row: dict
    regex: Pattern
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
    chunk_regex: Pattern | None = None
    inbox: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(INBOX_BATCHES))  # lines to match
    matcher: asyncio.Task | None = None
    dropped: int = 0  # lines a full inbox turned away since the last report

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

            self.permissions = PermissionWatch(self.engine, self.engine.tmux)
            self.permissions.start()
        for row in await self.engine.store.all(
            "SELECT * FROM monitors WHERE status = 'running' ORDER BY created_at"
        ):
            try:
                await self.run(row)
            except Exception as exc:
                log.exception("monitor %s could not start", row["name"])
                await self.set_status(row["id"], "failed", f"could not start after restart: {exc}")

    async def stop_all(self) -> None:
        if self.permissions is not None:
            await self.permissions.stop()
        for mid in list(self.running):
            await self.halt(mid)
        for task, stop in self._dir_watchers.values():
            stop.set()
            task.cancel()
        self._dir_watchers.clear()

    # -- persistence --
    async def write(self, sql: str, params: tuple) -> None:
        await self.engine.store.write_local(sql, [params])

    async def event(
        self, mid: str, kind: str, line: str = "", message_id: str | None = None, detail: str = ""
    ) -> None:
        await self.write(
            "INSERT INTO monitor_events(monitor_id, at, kind, line, message_id, detail) VALUES (?,?,?,?,?,?)",
            (mid, iso(), kind, line[:2000], message_id, detail[:2000]),
        )

    async def set_status(self, mid: str, status: str, error: str | None = None) -> None:
        if error is None:
            await self.write("UPDATE monitors SET status=?, updated_at=? WHERE id=?", (status, iso(), mid))
        else:
            await self.write(
                "UPDATE monitors SET status=?, updated_at=?, last_error=? WHERE id=?",
                (status, iso(), error, mid),
            )

    # -- running one rule --
    async def run(self, row: dict) -> Monitor:
        spec = json.loads(row["spec"])
        m = Monitor(row=row, regex=compile_pattern(row["pattern"]), spec=spec)
        if not any(a in row["pattern"] for a in ("\\A", "\\Z", "\\z")):
            m.chunk_regex = compile_pattern(row["pattern"], multiline=True)
        self.running[m.id] = m
        await self._resume_window(m)
        m.sender = asyncio.create_task(self._sender(m), name=f"monitor-send-{m.name}")
        m.matcher = asyncio.create_task(self._matcher(m), name=f"monitor-match-{m.name}")
        source = row["source"]
        if source == "command":
            m.task = asyncio.create_task(self._command_loop(m), name=f"monitor-{m.name}")
        elif source == "file":
            self._attach_file(m)
        elif source == "pane":
            self._attach_pane(m)
        await self.event(m.id, "start", detail=f"{source} source")
        return m

    async def _resume_window(self, m: Monitor) -> None:
        """A rule (re)started inside the debounce window of its last delivered match keeps that window:
        a restart (`monitor restart`, an engine restart) delivered the same repeat again at once."""
        debounce = m.row["debounce"]
        if debounce <= 0:
            return
        last = await self.engine.store.scalar(
            "SELECT MAX(at) FROM monitor_events WHERE monitor_id = ? AND kind = 'match'", (m.id,)
        )
        left = debounce - (time.time() - parse_iso(last)) if last else 0.0
        if left > 0:
            m.window_until = time.monotonic() + left
            m.flush = asyncio.get_running_loop().call_later(left, self._flush, m)

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
        me = asyncio.current_task()
        # Stopping only waits; a task that died of a bug is still worth a log line.
        await cancel_and_wait(*(t for t in (m.task, m.sender, m.matcher) if t is not me), log=log)
        self._detach_file(m)
        for splitters in self._panes.values():
            splitters.pop(mid, None)

    async def fail(self, m: Monitor, reason: str, line: str = "") -> None:
        """Stop a rule for good (until someone fixes and restarts it): the reason goes to the
        engine log, the rule's log, `last_error` and the target's inbox."""
        log.error("monitor %s stopped: %s", m.name, reason)
        await self.set_status(m.id, "failed", reason)
        await self.event(m.id, "error", line, detail=reason)
        await self.halt(m.id)
        await self.notify_target(m, f"monitor stopped: {reason}")

    # -- matching and debounce --
    def offer(self, m: Monitor, lines: list[str]) -> None:
        """Lines from a source that cannot wait (a file or pane watcher). A rule that cannot keep
        up drops lines, counted in its log, rather than queueing without bound."""
        if not lines:
            return
        try:
            m.inbox.put_nowait(lines)
        except asyncio.QueueFull:
            m.dropped += len(lines)

    async def _matcher(self, m: Monitor) -> None:
        budget = self.settings.match_budget_seconds
        cap = self.settings.max_line_chars
        while True:
            lines = await m.inbox.get()
            while not m.inbox.empty() and len(lines) < BATCH_LINES:
                lines = lines + m.inbox.get_nowait()
            lines = [ln[:cap] for ln in lines]
            try:
                hits = await off_loop(matching_lines, m.regex, m.chunk_regex, lines, budget)
            except PatternTimeout as exc:
                await self.fail(
                    m,
                    f"its pattern /{m.row['pattern']}/ took longer than {budget:g}s on one input"
                    " (catastrophic backtracking?); give the rule a simpler pattern (console: m, e)"
                    " and restart it",
                    line=exc.text,
                )
                return
            for line in hits:
                self._matched(m, line)
            if m.dropped:
                n, m.dropped = m.dropped, 0
                log.warning("monitor %s dropped %d lines: matching could not keep up", m.name, n)
                await self.event(m.id, "error", detail=f"{n} lines dropped: matching could not keep up")

    def _matched(self, m: Monitor, line: str) -> None:
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
            m.outbox.put_nowait(
                (
                    "suppressed",
                    (
                        f"{n} more match{'es' if n != 1 else ''} suppressed"
                        f" in the last {m.row['debounce']:g}s (last: {last})"
                    ),
                )
            )

    async def _sender(self, m: Monitor) -> None:
        while True:
            kind, text = await m.outbox.get()
            await self.deliver(m, kind, text)

    async def deliver(self, m: Monitor, kind: str, text: str) -> str | None:
        body = f"[{m.name}] {text}"
        try:
            ev = await self.engine.post(
                f"monitor:{m.name}",
                body,
                to=[m.row["target"]],
                fmt="plain",
                scopes=[f"monitor:{m.name}"],
                refs=[f"monitor:{m.id}"],
            )
        except Exception as exc:  # the sender loop's boundary: one failed delivery must not end the monitor
            reason = exc.message if isinstance(exc, ThrumError) else f"{type(exc).__name__}: {exc}"
            log.error(
                "monitor %s could not deliver to %s: %s",
                m.name,
                m.row["target"],
                reason,
                exc_info=not isinstance(exc, ThrumError),  # a traceback only for what no rule expected
            )
            await self.event(m.id, "error", text, detail=f"delivery failed: {reason}")
            await self.write(
                "UPDATE monitors SET last_error=?, matches=matches+?, updated_at=? WHERE id=?",
                (f"delivery failed: {reason}", 1 if kind == "match" else 0, iso(), m.id),
            )
            return None
        mid = ev["data"]["message_id"]
        await self.event(m.id, kind, text, message_id=mid)
        await self.write(
            "UPDATE monitors SET matches=matches+?, delivered=delivered+1, last_match_at=?,"
            " updated_at=? WHERE id=?",
            (1 if kind == "match" else 0, iso(), iso(), m.id),
        )
        await self.write(
            "DELETE FROM monitor_events WHERE monitor_id=? AND seq <= (SELECT MAX(seq) FROM"
            " monitor_events WHERE monitor_id=?) - ?",
            (m.id, m.id, LOG_KEEP),
        )
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
                wait = cron_next(schedule, time.time()) - time.time()
                try:
                    await asyncio.wait_for(m.stop.wait(), max(wait, 0))
                    return
                except TimeoutError:
                    pass
            started = time.monotonic()
            code = None
            split = LineSplitter(self.settings.max_line_chars)
            try:
                async for text in command_output(
                    spec["argv"], spec["cwd"], env, lambda p: setattr(m, "proc", p)
                ):
                    lines = split.feed(text)
                    if lines:
                        await m.inbox.put(lines)  # a slow matcher slows the reading, nothing is lost
                if split.partial:
                    await m.inbox.put([split.partial])
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
            await self.write(
                "UPDATE monitors SET restarts=restarts+1, updated_at=? WHERE id=?", (iso(), m.id)
            )
            delay = backoff if quick else 1.0
            backoff = min(backoff * 2, self.settings.restart_backoff_max_seconds) if quick else 1.0
            try:
                await asyncio.wait_for(m.stop.wait(), delay)
                return
            except TimeoutError:
                pass

    # -- file source: one follower per file, one watcher per directory --
    def _attach_file(self, m: Monitor) -> None:
        path = m.spec["path"]
        repo = os.path.realpath(self.engine.layout.repo)
        root = m.spec.get("root", repo if inside(path, repo) else None)  # rules made before roots were kept
        if path not in self._files:
            self._files[path] = (FileFollower(path, self.settings.max_line_chars, root), set())
        follower = self._files[path][0]
        if root is not None and follower.root is None:
            follower.root = root  # the strictest rule on a path decides for the shared reader
        self._files[path][1].add(m.id)
        d = os.path.dirname(path)
        if d not in self._dir_watchers:
            stop = asyncio.Event()
            self._dir_watchers[d] = (
                asyncio.create_task(self._watch_dir(d, stop), name=f"monitor-watch-{d}"),
                stop,
            )

    def _detach_file(self, m: Monitor) -> None:
        path = m.spec.get("path")
        if not path or path not in self._files:
            return
        self._files[path][1].discard(m.id)
        if not self._files[path][1]:
            del self._files[path]
        d = os.path.dirname(path)
        if d in self._dir_watchers and not any(os.path.dirname(p) == d for p in self._files):
            _task, stop = self._dir_watchers.pop(d)
            stop.set()

    async def _watch_dir(self, d: str, stop: asyncio.Event) -> None:
        from watchfiles import awatch

        def ours(change, path: str) -> bool:
            return path in self._files

        try:
            async for changes in awatch(
                d,
                watch_filter=ours,
                debounce=50,
                step=10,
                stop_event=stop,
                rust_timeout=1000,
                recursive=False,
            ):
                for path in {p for _c, p in changes}:
                    await self._pump_file(path)
        except Exception:
            if not stop.is_set():
                log.exception("file watcher on %s stopped", d)

    async def _pump_file(self, path: str) -> None:
        entry = self._files.get(path)
        if entry is None:
            return
        follower, mids = entry
        try:
            lines = await asyncio.to_thread(follower.read_new)
        except PathEscaped as exc:
            for mid in list(mids):
                m = self.running.get(mid)
                if m is not None:
                    await self.fail(m, f"the watched file escaped: {exc}")
            return
        except OSError as exc:
            log.warning("monitor file %s could not be read: %s", path, exc)
            return
        for mid in list(mids):
            m = self.running.get(mid)
            if m is not None:
                self.offer(m, lines)

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
                self.offer(m, [render(line) for line in split.feed(text)])

"""The per-session command queue: FIFO, persisted in SQLite (machine-local), typed into the
pane only when it is idle; output is taken from the pane stream until the pane is idle and
quiet again (or the command times out), and the result goes to the requester as a message
from `system` (or back to a `--wait` caller).

After an engine restart, commands that were running are reported interrupted and queued
ones resume.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from thrum_engine import ids
from thrum_engine.durations import iso
from thrum_engine.engine.tasks import TaskSet
from thrum_engine.tmux import results
from thrum_engine.tmux.health import POSIX_SHELLS, shell_basename
from thrum_engine.tmux.manager import Session, TmuxManager
from thrum_engine.tmux.panes import PaneState, render
from thrum_engine.tmux.server import TmuxError

log = logging.getLogger("thrum.queue")

OUTPUT_CAP = 64_000
FINAL = ("done", "timeout", "cancelled", "interrupted", "failed")


@dataclass
class Running:
    id: str
    session: str
    command: str
    requester: str | None
    timeout: float
    silence: float
    started: float  # wall
    kind: str = "command"  # a shell command (wrapped: it reports its exit status) or a "prompt"
    runtime: str = ""  # what the text was typed to
    output: list[str] = field(default_factory=list)
    size: int = 0
    tail: str = ""  # the end of the raw stream: a marker split across two reads is still found
    exit_code: int | None = None
    timer: asyncio.TimerHandle | None = None
    check: asyncio.TimerHandle | None = None

    def token(self) -> str:
        return self.id.removeprefix("cmd_")

    def saw_marker(self, text: str) -> bool:
        """Whether the wrapped command's end marker arrived in `text` (recording its exit status)."""
        if self.kind != "command" or self.exit_code is not None:
            return False
        found = results.marker_re(self.token()).search(self.tail + text)
        self.tail = (self.tail + text)[-200:]
        if found:
            self.exit_code = int(found.group(1))
        return found is not None

    def add(self, text: str) -> None:
        if self.size < OUTPUT_CAP:
            self.output.append(text[: OUTPUT_CAP - self.size])
            self.size += len(text)

    def text(self, runtime=None) -> str:
        """What the command printed: everything up to its typed echo, and the prompt it returned to, cut."""
        out = render("".join(self.output))
        if self.kind == "command":
            return results.cut_output(out, self.token())
        idx = out.find(self.command)
        if idx >= 0:
            out = out[idx + len(self.command) :]
        lines = out.split("\n")
        while lines and not lines[-1].strip():
            lines.pop()
        if lines and runtime is not None and runtime.any_match("idle", lines[-1] + " "):
            lines.pop()
        return "\n".join(lines).strip("\n")


class CommandQueue:
    def __init__(self, engine, manager: TmuxManager) -> None:
        self.engine = engine
        self.m = manager
        self.running: dict[str, Running] = {}  # session -> its running command
        self.waiters: dict[str, list[asyncio.Future]] = {}
        self._starting: set[str] = set()
        self._tasks = TaskSet(log)

    async def start(self) -> None:
        rows = await self.engine.store.all("SELECT * FROM tmux_queue WHERE status = 'running'")
        for r in rows:
            await self._finish_row(r, "interrupted", r["output"], "the engine restarted while it ran")
        self.m.listeners.append(self.on_state)
        self.m.output_listeners.append(self.on_output)
        for (session,) in await self._queued_sessions():
            self.kick(session)

    async def stop(self) -> None:
        for run in self.running.values():
            for h in (run.timer, run.check):
                if h:
                    h.cancel()
        await self._tasks.close()

    async def _queued_sessions(self) -> list[tuple[str]]:
        rows = await self.engine.store.all("SELECT DISTINCT session FROM tmux_queue WHERE status = 'queued'")
        return [(r["session"],) for r in rows]

    async def _write(self, sql: str, params: tuple) -> None:
        await self.engine.store.write_local(sql, [params])

    def _runtime(self, session: str):
        s = self.m.sessions.get(session)
        return s.runtime if s else None

    # -- API --
    async def enqueue(
        self, session: str, command: str, requester: str | None, timeout: float, silence: float
    ) -> dict:
        cid = ids.new_id("cmd")
        await self._write(
            "INSERT INTO tmux_queue(id, session, command, requester, status, created_at, timeout, silence)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (cid, session, command, requester, "queued", iso(), timeout, silence),
        )
        self.kick(session)
        row = await self.get(cid)
        assert row is not None  # written above, and queue rows are never deleted
        return row

    async def get(self, cid: str) -> dict | None:
        row = await self.engine.store.one("SELECT * FROM tmux_queue WHERE id = ?", (cid,))
        if row and row["status"] == "running":
            run = self.running.get(row["session"])
            if run and run.id == cid:
                row["output"] = run.text(self._runtime(run.session))
        return row

    async def wait(self, cid: str, timeout: float) -> dict | None:
        row = await self.get(cid)
        if row and row["status"] in FINAL:
            return row
        fut = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(cid, []).append(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return await self.get(cid)

    async def listing(self, session: str) -> list[dict]:
        rows = await self.engine.store.all(
            "SELECT * FROM tmux_queue WHERE session = ? ORDER BY created_at DESC LIMIT 50", (session,)
        )
        for r in rows:
            run = self.running.get(session)
            if r["status"] == "running" and run and run.id == r["id"]:
                r["output"] = run.text(self._runtime(session))
        return rows

    async def cancel(self, cid: str) -> dict | None:
        row = await self.get(cid)
        if row is None or row["status"] in FINAL:
            return row
        if row["status"] == "running":
            run = self.running.pop(row["session"], None)
            output = run.text(self._runtime(row["session"])) if run else row["output"]
            if run:
                for h in (run.timer, run.check):
                    if h:
                        h.cancel()
            await self._interrupt(row["session"])
            await self._finish_row(row, "cancelled", output, "cancelled while running (partial output)")
            self.kick(row["session"])
        else:
            await self._finish_row(row, "cancelled", "", "cancelled before it started")
        return await self.get(cid)

    async def _interrupt(self, session: str) -> None:
        """Stop the command in the pane itself (Ctrl-C), not only in the table: a cancelled `sleep 600`
        must not keep the pane busy for the next command (upstream's cancel does the same)."""
        s = self.m.sessions.get(session)
        if s is None or s.stream.dead:
            return
        try:
            await self.m.send_keys(s, "C-c")
        except TmuxError as exc:
            log.warning("could not interrupt the command in %s: %s", session, exc)

    # -- the machine --
    def kick(self, session: str) -> None:
        if session not in self.running and session not in self._starting:
            self._starting.add(session)
            self._tasks.spawn(self._start_next(session))

    async def _start_next(self, session: str) -> None:
        try:
            s = self.m.sessions.get(session)
            if s is None:
                return
            await self.m.refresh(s)
            if s.state.state != "idle" or session in self.running:
                return  # the next change to idle kicks again
            row = await self.engine.store.one(
                "SELECT * FROM tmux_queue WHERE session = ? AND status = 'queued' ORDER BY created_at, id LIMIT 1",
                (session,),
            )
            if row is None:
                return
            kind, runtime = await self._kind(s)
            run = Running(
                row["id"],
                session,
                row["command"],
                row["requester"],
                row["timeout"],
                row["silence"],
                time.time(),
                kind=kind,
                runtime=runtime,
            )

            async def claim() -> bool:
                """In the pane's typing turn, right before the keys go out: still idle (a nudge or
                a send may have just been typed), and then the command is the one running."""
                await self.m.refresh(s)
                if s.state.state != "idle" or session in self.running:
                    return False
                run.started = time.time()
                self.running[session] = run
                await self._write(
                    "UPDATE tmux_queue SET status='running', started_at=?, kind=?, runtime=? WHERE id=?",
                    (iso(), kind, runtime, run.id),
                )
                loop = asyncio.get_running_loop()
                run.timer = loop.call_later(
                    run.timeout, lambda: self._tasks.spawn(self._complete(run, "timeout"))
                )
                return True

            try:
                typed = results.wrap(run.command, run.token()) if kind == "command" else run.command
                await self.m.type_into(s, typed, ready=claim)
            except (TmuxError, OSError) as exc:
                if self.running.get(session) is run:
                    self.running.pop(session, None)
                    if run.timer:
                        run.timer.cancel()
                await self._finish_row(row, "failed", "", f"could not type into the pane: {exc}")
        except Exception:
            log.exception("queue for %s failed", session)
        finally:
            self._starting.discard(session)

    async def _kind(self, s: Session) -> tuple[str, str]:
        """("command", shell) when a POSIX shell is in the foreground of the pane, so its exit
        status can be had; else ("prompt", what reads it): an LLM runtime, a REPL, fish."""
        try:
            lines = await asyncio.to_thread(
                self.m.tmux.cmd, "display-message", "-p", "-t", s.pane_id, "#{pane_current_command}"
            )
            current = lines[0].strip() if lines else ""
        except TmuxError:
            current = ""  # the pane is going away: its settings say what it ran
        shell = shell_basename(self.m.settings.shell)
        if not s.runtime.command and (current in POSIX_SHELLS or (not current and shell in POSIX_SHELLS)):
            return "command", current or shell
        return "prompt", s.runtime.name if s.runtime.command else (current or s.runtime.name)

    def on_output(self, s: Session, text: str) -> None:
        run = self.running.get(s.name)
        if run is not None:
            run.add(text)
            if run.saw_marker(text):  # the shell said it ended, and how: no need to wait for quiet
                self._tasks.spawn(self._complete(run, "done"))

    def on_state(self, s: Session, state: PaneState) -> None:
        run = self.running.get(s.name)
        if run is None:
            if state.state == "idle":
                self.kick(s.name)
            return
        if state.state == "idle" and s.stream.last_output_wall > run.started:
            self._check_done(s, run)

    def _check_done(self, s: Session, run: Running) -> None:
        if self.running.get(s.name) is not run:
            return
        quiet = time.time() - s.stream.last_output_wall
        if s.state.state == "idle" and quiet >= run.silence:
            self._tasks.spawn(self._complete(run, "done"))
            return
        if s.state.state == "idle":
            run.check = asyncio.get_running_loop().call_later(
                run.silence - quiet + 0.01, self._check_done, s, run
            )

    async def _complete(self, run: Running, status: str) -> None:
        if self.running.get(run.session) is not run:
            return
        del self.running[run.session]
        for h in (run.timer, run.check):
            if h:
                h.cancel()
        row = await self.engine.store.one("SELECT * FROM tmux_queue WHERE id = ?", (run.id,))
        note = f"no idle prompt within {run.timeout:g}s (partial output)" if status == "timeout" else ""
        if status == "done" and run.exit_code:
            status = "failed"  # a failing pytest is not "done"
        if row:
            await self._write(
                "UPDATE tmux_queue SET exit_code=?, duration=? WHERE id=?",
                (run.exit_code, round(time.time() - run.started, 3), run.id),
            )
            await self._finish_row(row, status, run.text(self._runtime(run.session)), note)
        self.kick(run.session)

    async def _finish_row(self, row: dict, status: str, output: str, note: str) -> None:
        await self._write(
            "UPDATE tmux_queue SET status=?, finished_at=?, output=?, note=? WHERE id=?",
            (status, iso(), output, note, row["id"]),
        )
        final = await self.engine.store.one("SELECT * FROM tmux_queue WHERE id = ?", (row["id"],))
        waiters = self.waiters.pop(row["id"], [])
        for fut in waiters:
            if not fut.done():
                fut.set_result(final)
        requester = row["requester"]
        if not waiters and requester and requester in self.engine.agents:
            await self._report(final, requester)

    async def _report(self, row: dict, requester: str) -> None:
        body = f"Command {row['id']} in {row['session']} {results.label(row)}: `{row['command']}`"
        if row["note"]:
            body += f" ({row['note']})"
        if row["output"]:
            cap = self.engine.settings.messages.max_body_bytes - 1024
            body += "\n```\n" + row["output"][-cap:] + "\n```"
        try:
            await self.engine.post(
                "system",
                body,
                to=["@" + requester],
                fmt="markdown",
                scopes=[f"session:{row['session']}"],
                refs=[f"command:{row['id']}"],
            )
        except Exception:
            log.exception("could not report %s to @%s", row["id"], requester)

"""The engine's tmux side: which sessions belong to this repo, their streamed output
(watchfiles on `pipe-pane` files) and the pane state derived from it.

State changes are pushed to listeners (nudges, the command queue, the console);
re-deciding after a quiet window is a timer armed by output, not a poll. Deciding runs the
runtime's markers, which are user patterns (`runtimes.json`), so it runs in a worker thread, one
reading at a time per session; code about to act on a pane awaits `refresh` for a fresh reading.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from thrum_engine import names
from thrum_engine.errors import InvalidInput
from thrum_engine.files import create_private, link_problem, open_append_private, private_dir
from thrum_engine.tmux import runtimes
from thrum_engine.tmux.health import SHELLS, fell_back_to_shell, shell_names, unread_input
from thrum_engine.tmux.panes import PaneState, PaneStream, screen_text
from thrum_engine.tmux.server import Tmux, TmuxError

if TYPE_CHECKING:
    from thrum_engine.settings import TmuxSettings

log = logging.getLogger("thrum.tmux")

MAX_STREAM_BYTES = 8 << 20  # a pane log past this is truncated after reading (cat appends with O_APPEND)
# How old a discovery `team.list` accepts. Each one forks tmux twice (~5-10 ms, more on a loaded
# machine) and every listing asked for one; pane states arrive by their streams in between, so a
# listing is at most this late in noticing what only discovery sees (a session killed outside Thrum,
# a runtime that fell back to its shell).
DISCOVER_EVERY_SECONDS = 2.0
# How long a typed line may take to be taken by the pane (its echo, the prompt moving on) before
# the next writer may type anyway.
SUBMIT_SECONDS = 3.0
SCREEN_LINES = 60  # what a reading from the screen looks at: the pane's rows and a little history


class Session:
    """One Thrum session: its tmux pane, agent, runtime and output stream."""

    def __init__(
        self, name: str, pane_id: str, agent: str, runtime: runtimes.Runtime, cwd: str, stream: PaneStream
    ):
        self.name = name
        self.pane_id = pane_id
        self.agent = agent
        self.runtime = runtime
        self.cwd = cwd
        self.stream = stream
        self.timer: asyncio.TimerHandle | None = None
        self.changed = asyncio.Event()  # set (and replaced) on every state change
        self.deciding = asyncio.Lock()  # one reading of the state at a time
        # One writer at a time: a text, its Enter and the pane taking it, before anyone else types
        # (a nudge and a queued command typed together made one line of both: walk bug 1).
        self.typing = asyncio.Lock()
        self.decide_queued = False  # a reading is already waiting: more requests fold into it
        self.shells: frozenset[str] = SHELLS  # what `current_command` reads at a shell prompt
        self.current_command = ""  # the pane's foreground command at the last discovery
        self.line_unread = False  # at the last look, the shell had not read the typed command yet
        self.launched = True  # a runtime was typed into it (sessions found at start are assumed launched)

    def saw(self, row: dict) -> None:
        """Take what tmux reported of the pane (a `Tmux.sessions` row, or the same fields)."""
        self.current_command = row.get("pane_current_command", "")
        at_shell = self.launched and fell_back_to_shell(self.current_command, self.runtime, self.shells)
        tty = row.get("pane_tty", "")
        # Typed bytes still queued on the tty: the shell is still starting (its rc files, a loaded
        # machine) and has not taken the command yet; that is not a runtime that exited.
        self.line_unread = bool(at_shell and tty and unread_input(tty))

    def typed_runtime(self) -> None:
        """The runtime's command was just typed into the pane's shell: until the next look says
        otherwise, the line is unread (the last look, at the shell, predates it)."""
        self.launched = True
        self.line_unread = True

    @property
    def exited(self) -> bool:
        """The pane is dead, or its runtime fell back to the shell after a launch."""
        return self.stream.dead or (
            self.launched
            and not self.line_unread
            and fell_back_to_shell(self.current_command, self.runtime, self.shells)
        )

    @property
    def state(self) -> PaneState:
        return self.stream.current


class TmuxManager:
    @property
    def settings(self) -> TmuxSettings:  # read each time: config.json edits apply live
        return self.engine.settings.tmux

    def __init__(self, engine) -> None:
        self.engine = engine
        self.tmux = Tmux(self.settings.socket_name, self.settings.enter_delay_seconds)
        self.shells = shell_names(self.settings.shell)
        self.dir = os.path.join(engine.layout.var, "panes")
        self.sessions: dict[str, Session] = {}
        self.listeners: list[Callable[[Session, PaneState], None]] = []
        self.output_listeners: list[Callable[[Session, str], None]] = []
        # The pane watcher runs only while there are sessions to watch: its thread wakes every
        # `step` (10 ms), a hundred times a second, whether or not anything is written.
        self._watches: set[asyncio.Task] = set()  # the live one, and any still stopping
        self._watch_stop = asyncio.Event()
        self._watch_stop.set()  # none yet
        self.lock = asyncio.Lock()  # serialises create/kill against discovery
        self.nudger = None
        self.queue = None
        self._decides: set[asyncio.Task] = set()
        self.gone: dict[str, str] = {}  # agent -> its session that ended (killed, or the server died)
        # session -> why it is not watched (its log is a planted link): listed, never a failed discovery
        self.problems: dict[str, str] = {}
        self._discovered_at = float("-inf")  # monotonic time of the last discovery's reading
        self._discovering: asyncio.Future | None = None

    # -- lifecycle --
    async def start(self) -> None:
        from thrum_engine.tmux.nudges import Nudger
        from thrum_engine.tmux.queue import CommandQueue

        private_dir(self.dir)
        await self.discover()
        self.gone.update(await asyncio.to_thread(self._ended_while_away))
        self.nudger = Nudger(self.engine, self)
        self.nudger.start()
        self.queue = CommandQueue(self.engine, self)
        await self.queue.start()

    async def stop(self) -> None:
        if self.queue is not None:
            await self.queue.stop()
        if self.nudger is not None:
            await self.nudger.stop()
        self._watch_stop.set()
        for s in self.sessions.values():
            if s.timer:
                s.timer.cancel()
        if self._decides:  # each is bounded by the markers' budget
            await asyncio.gather(*self._decides, return_exceptions=True)
        for task in list(self._watches):
            try:
                await asyncio.wait_for(task, 5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        self._watches.clear()

    def _ended_while_away(self) -> dict[str, str]:
        """Agents whose identity file names a tmux session this server does not hold: it ended while
        no engine watched (killed, the server gone, a hand-over), and `team` said "online" for them
        where `forget` would have said "no session" (walk A, 9). An agent whose worktree is gone (a
        teardown that kept the agent) has no session either: its identity file went with the folder,
        and it read "online" after a restart (contract walk, session 22)."""
        from thrum_engine import identity_file

        watched = {s.agent for s in self.sessions.values()}
        ended = {}
        for name, row in list(self.engine.agents.items()):
            if name in watched or not row.get("worktree"):
                continue
            if not os.path.isdir(row["worktree"]):
                ended[name] = ""
                continue
            session = (identity_file.read(row["worktree"], name) or {}).get("tmux_session")
            if session:
                ended[name] = session
        return ended

    def stream_path(self, name: str) -> str:
        return os.path.join(self.dir, f"{name}.log")

    def check_stream(self, name: str) -> None:
        """Refuse a session whose log is not Thrum's own file, before anything of it is created (a
        refusal after the tmux session was made left it behind, unwatched)."""
        problem = link_problem(self.stream_path(name))
        if problem:
            raise InvalidInput(f"tmux session {name}: {problem}")

    async def discover(self) -> None:
        """Adopt this repo's sessions (after an engine restart): re-attach streams, re-pipe if needed."""
        read_at = time.monotonic()
        rows = await asyncio.to_thread(self.tmux.sessions)
        presets = await asyncio.to_thread(runtimes.load, self.engine.layout.repo)
        live = set()
        self.problems = {}
        for row in rows:
            name = row["session_name"]
            if row["@thrum_repo"] != self.engine.layout.repo or names.problem("session", name):
                continue  # not ours: Thrum only makes sessions with valid names (each names a log file)
            problem = await asyncio.to_thread(link_problem, self.stream_path(name))
            if problem:  # not watched, and said so: one bad log must not fail every listing
                self.problems[name] = problem
                continue
            live.add(name)
            if name in self.sessions:
                self.sessions[name].stream.dead = row["pane_dead"] == "1"
                self.sessions[name].saw(row)
                continue
            runtime = presets.get(row["@thrum_runtime"]) or runtimes.BUILTIN["shell"]
            if row["pane_pipe"] != "1":
                await asyncio.to_thread(self.tmux.pipe, row["pane_id"], self.stream_path(name))
            s = await self.adopt(name, row["pane_id"], row["@thrum_agent"], runtime, row["pane_current_path"])
            s.stream.dead = row["pane_dead"] == "1"
            s.saw(row)
        for name in list(self.sessions):
            if name not in live:
                self.forget(name)
        self._discovered_at = max(self._discovered_at, read_at)

    async def discover_recent(self, max_age: float = DISCOVER_EVERY_SECONDS) -> None:
        """A discovery no older than `max_age` (what listings need); callers that arrive together
        share one."""
        if time.monotonic() - self._discovered_at < max_age:
            return
        task = self._discovering
        if task is None or task.done():
            task = self._discovering = asyncio.ensure_future(self.discover())
        await asyncio.shield(task)

    async def adopt(
        self, name: str, pane_id: str, agent: str, runtime: runtimes.Runtime, cwd: str
    ) -> Session:
        """Track a session whose output is being piped. Its current screen is read once with
        `capture-pane` (what it printed before the pipe started is not in the stream)."""
        path = self.stream_path(name)
        os.close(open_append_private(path))  # exists (0600) before the pipe's first write
        stream = PaneStream(name, path, runtime)
        try:
            screen = await asyncio.to_thread(self.tmux.capture, pane_id, 200)
        except TmuxError:
            screen = []
        stream.feed(screen_text(screen))
        stream.read_new()  # anything piped between the capture and now
        stream.last_output = time.monotonic() - self.settings.silence_seconds
        s = Session(name, pane_id, agent, runtime, cwd, stream)
        s.shells = self.shells
        self.gone.pop(agent, None)
        # With the screen: the 200 lines fed above may end with a dialog answered long ago.
        await asyncio.to_thread(stream.decide, self.settings.silence_seconds, screen=lambda: self._screen(s))
        self.sessions[name] = s
        self._watching(True)
        return s

    def forget(self, name: str) -> None:
        s = self.sessions.pop(name, None)
        if s and s.agent:
            self.gone[s.agent] = name
        if s and s.timer:
            s.timer.cancel()
        if not self.sessions:
            self._watching(False)

    def for_agent(self, agent: str) -> Session | None:
        for s in self.sessions.values():
            if s.agent == agent:
                return s
        return None

    # -- streams --
    def _watching(self, wanted: bool) -> None:
        """Start the pane watcher with the first session (or again, if it died), stop it with the last."""
        live = not self._watch_stop.is_set() and any(not t.done() for t in self._watches)
        if wanted and not live:
            self._watch_stop = asyncio.Event()
            task = asyncio.create_task(self._watch(self._watch_stop), name="thrum-pane-watch")
            self._watches.add(task)
            task.add_done_callback(self._watches.discard)
        elif not wanted and live:
            self._watch_stop.set()

    async def _watch(self, stop: asyncio.Event) -> None:
        from watchfiles import awatch

        def only_logs(change, path: str) -> bool:
            return path.endswith(".log")

        try:
            async for changes in awatch(
                self.dir,
                watch_filter=only_logs,
                debounce=100,
                step=10,
                stop_event=stop,
                rust_timeout=1000,
                yield_on_timeout=True,
                recursive=False,
            ):
                if not changes:
                    # A quiet second: read what the watch may have missed (output written between
                    # a session's first read and the watch starting). Only sessions that grew.
                    for s in list(self.sessions.values()):
                        if self._read(s):
                            self.redecide(s)
                    continue
                changed = {os.path.basename(p)[:-4] for _c, p in changes}
                for name in changed:
                    s = self.sessions.get(name)
                    if s is not None:
                        self.pump(s)
        except Exception:
            if not stop.is_set():
                log.exception("pane watcher stopped")

    def _read(self, s: Session) -> bool:
        """Take a session's new output to the listeners; arm the re-reading at the end of its quiet
        window. True when there was new output."""
        text = s.stream.read_new()
        if text:
            self._emit_output(s, text)
        if s.stream.offset > MAX_STREAM_BYTES:
            try:
                create_private(s.stream.path, b"")  # emptied in place, never through a link
                s.stream.offset = 0
            except OSError:
                pass
        if text:
            if s.timer:
                s.timer.cancel()
            loop = asyncio.get_running_loop()
            s.timer = loop.call_later(self.settings.silence_seconds + 0.05, self.redecide, s)
        return bool(text)

    def pump(self, s: Session) -> None:
        """Read a session's new output and re-decide its state soon and once its quiet window ends."""
        self._read(s)
        self.redecide(s)

    async def refresh(self, s: Session) -> PaneState:
        """The state from the freshest output, for code about to act on the pane (type, restart)."""
        self._read(s)
        return await self.decide(s)

    def redecide(self, s: Session) -> None:
        if s.decide_queued:
            return
        s.decide_queued = True
        task = asyncio.get_running_loop().create_task(self.decide(s), name=f"thrum-pane-decide-{s.name}")
        self._decides.add(task)
        task.add_done_callback(self._decides.discard)

    async def decide(self, s: Session) -> PaneState:
        async with s.deciding:
            s.decide_queued = False
            before = s.stream.current
            after = await asyncio.to_thread(
                s.stream.decide, self.settings.silence_seconds, screen=lambda: self._screen(s)
            )
            if after is not before:
                log.debug("pane %s: %s (%s)", s.name, after.state, after.source)
                s.changed.set()
                s.changed = asyncio.Event()
                for fn in list(self.listeners):
                    try:
                        fn(s, after)
                    except Exception:
                        log.exception("pane state listener failed")
            return after

    def _screen(self, s: Session) -> str | None:
        """The pane's screen as rendered (and some history), for `PaneStream.decide`; in its thread."""
        try:
            return screen_text(self.tmux.capture(s.pane_id, SCREEN_LINES))
        except TmuxError:
            return None

    def _emit_output(self, s: Session, text: str) -> None:
        for fn in list(self.output_listeners):
            try:
                fn(s, text)
            except Exception:
                log.exception("pane output listener failed")

    async def wait_state(
        self, s: Session, wanted: set[str], *, output_after: float, timeout: float
    ) -> PaneState:
        """Wait until the pane shows output after `output_after` (wall time) and settles in a wanted state."""
        deadline = time.monotonic() + timeout
        while True:
            await self.refresh(s)
            if s.stream.last_output_wall > output_after and s.state.state in wanted:
                return s.state
            left = deadline - time.monotonic()
            if left <= 0:
                return s.state
            try:
                await asyncio.wait_for(s.changed.wait(), min(left, self.settings.silence_seconds + 0.2))
            except TimeoutError:
                pass

    # -- helpers for other modules --
    async def human_typing(self, s: Session) -> bool:
        if self.settings.typing_seconds <= 0:
            return False
        last = await asyncio.to_thread(self.tmux.client_activity, s.name)
        return last is not None and time.time() - last < self.settings.typing_seconds

    async def type_into(
        self,
        s: Session,
        text: str,
        *,
        enter: bool = True,
        ready: Callable[[], Awaitable[bool]] | None = None,
    ) -> bool:
        """Type `text` (and Enter) into the pane as one operation: no other writer of this engine
        types into the pane until the pane has taken it (the line submitted: see `_submitted`).
        `ready`, when given, is asked under the same turn, right before the keys go out (a fresh
        reading says the pane is still idle): False types nothing and returns False."""
        async with s.typing:
            if ready is not None and not await ready():
                return False
            # Text, pause, Enter (RUNTIMES.md §10.1-2) in one thread call that a cancelled task
            # cannot cut between the text and its Enter.
            entered = await asyncio.to_thread(self.tmux.send_text, s.pane_id, text, enter=enter)
            if entered is not None:
                await self._submitted(s, text, entered)
            return True

    async def send_keys(
        self, s: Session, *keys: str, ready: Callable[[], Awaitable[bool]] | None = None
    ) -> bool:
        """Keys (not text: an interrupt, a dialog's answer) in the pane's typing turn, so they never
        land between another writer's text and its Enter."""
        async with s.typing:
            if ready is not None and not await ready():
                return False
            await asyncio.to_thread(self.tmux.send_keys, s.pane_id, *keys)
            return True

    async def _submitted(self, s: Session, text: str, entered: float) -> None:
        """Wait (bounded) until the pane took the line: it printed something after the Enter (so
        the next reading of the stream says "output just now", not the idle prompt it showed before
        the text), and the row its cursor is on no longer ends with the text. An Enter a TUI swallowed
        (not input-ready yet, a paste guard: RUNTIMES.md §10.2-3) is pressed once more."""
        end = text.rstrip().rsplit("\n", 1)[-1]
        deadline = time.monotonic() + SUBMIT_SECONDS
        pressed_again = False
        while True:
            self._read(s)
            printed = s.stream.last_output_wall > entered
            try:
                row = await asyncio.to_thread(self.tmux.cursor_line, s.pane_id) if end else ""
            except TmuxError:
                return  # the pane is gone: nobody else will type into it either
            # The cursor still right after the text on its row: the line was not taken.
            holding = bool(end) and row.endswith(end[-min(len(end), 20) :])
            if printed and not holding:
                return
            left = deadline - time.monotonic()
            if left <= 0 or s.stream.dead:
                log.info("pane %s: no sign that the typed line was taken", s.name)
                return
            if holding and not pressed_again and left < SUBMIT_SECONDS / 2:
                pressed_again = True
                await self.refresh(s)
                if s.state.state != "blocked":  # never an Enter into a dialog that just opened
                    await asyncio.to_thread(self.tmux.send_keys, s.pane_id, "Enter")
            await asyncio.sleep(0.05)

    async def live_panes_in(self, path: str) -> list[str]:
        real = os.path.realpath(path)
        await self.discover()
        out = []
        for s in self.sessions.values():
            agent_wt = self.engine.agents.get(s.agent, {}).get("worktree")
            cwd = os.path.realpath(s.cwd) if s.cwd else ""
            if not s.stream.dead and (
                cwd == real
                or cwd.startswith(real + os.sep)
                or (agent_wt and os.path.realpath(agent_wt) == real)
            ):
                out.append(s.name)
        return sorted(out)

    async def kill_panes_in(self, path: str) -> None:
        for name in await self.live_panes_in(path):
            await self.kill(name)

    async def kill(self, name: str) -> None:
        try:
            await asyncio.to_thread(self.tmux.kill, name)
        except TmuxError as exc:
            log.info("kill %s: %s", name, exc)
        self.forget(name)

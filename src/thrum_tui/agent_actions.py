"""What the operator does to an agent from the main screen: create one, tear it down, attach to
its pane, queue or type commands, restart, kill, interrupt. A mixin of the app, so each action
reads the same selection the screen shows; every engine call runs as a worker. It stays apart
from app.py to keep each module to one job; what it needs of the app is declared below, so the
type checker holds the two together."""

from __future__ import annotations

import asyncio
import os
import subprocess
from typing import TYPE_CHECKING

from textual import work
from textual.app import App

from thrum_tui.engine_handle import EngineCallFailed, EngineHandle
from thrum_tui.widgets.compose_bar import ComposeBar
from thrum_tui.widgets.pane_preview import PanePreview

if TYPE_CHECKING:
    from thrum_engine.settings import ThrumSettings


class AgentActions(App[None]):
    """The app's agent actions. ThrumApp is the only subclass; it sets these attributes and
    defines the three methods declared under TYPE_CHECKING."""

    engine: EngineHandle
    operator: str
    settings: ThrumSettings | None
    worktrees: list[dict]
    runtimes: list[str]
    default_runtime: str
    _worktrees_at: float

    if TYPE_CHECKING:

        def selected_member(self) -> dict | None: ...

        def request_refresh(self, parts: frozenset[str] = ..., *, at_once: bool = ...) -> None: ...

        def refresh_preview(self) -> None: ...

    def action_new_agent(self) -> None:
        """`n` always opens New agent, as the footer says: on a blocked agent it once denied its
        dialog, so `g` (which highlights that agent) then `n` answered No unasked (walk, bug 1)."""
        from thrum_tui.screens.new_agent import NewAgentScreen

        self.push_screen(
            NewAgentScreen(self.runtimes or [self.default_runtime], self.default_runtime),
            lambda _: self.request_refresh(),
        )

    def _agent_or_warn(self) -> dict | None:
        m = self.selected_member()
        if m is None or m["name"] == self.operator:
            self.notify("highlight an agent in the team first", severity="warning")
            return None
        return m

    def _session_or_warn(self) -> tuple[str, str] | None:
        m = self._agent_or_warn()
        if m is None:
            return None
        if not m.get("session"):
            self.notify(f"@{m['name']} has no tmux session", severity="warning")
            return None
        return m["name"], m["session"]

    def action_teardown(self) -> None:
        m = self._agent_or_warn()
        if m is None:
            return
        tree = next((w for w in self.worktrees if m["name"] in w["agents"]), None)
        if tree is None or os.path.realpath(tree["path"]) == os.path.realpath(self.engine.layout.repo):
            self.notify(f"@{m['name']} has no worktree of its own to tear down", severity="warning")
            return
        from thrum_tui.screens.teardown import TeardownScreen

        def done(result: dict | None) -> None:
            if result:
                self.notify(f"tore down {result['name']}; archived as {result['archive_ref']}")
                self._worktrees_at = 0.0
                self.request_refresh()

        self.push_screen(TeardownScreen(m["name"], tree["name"]), done)

    def action_queue(self) -> None:
        got = self._session_or_warn()
        if got is not None:
            from thrum_tui.screens.queue import QueueScreen

            self.push_screen(QueueScreen(*got))

    def action_attach(self) -> None:
        got = self._session_or_warn()
        if got is None:
            return
        self.attach_to(got[1])

    def action_zoom(self) -> None:
        got = self._session_or_warn()
        if got is not None:
            from thrum_tui.screens.zoom import ZoomScreen

            self.push_screen(ZoomScreen(got[1]))

    @work(group="attach", exclusive=True, exit_on_error=False)
    async def attach_to(self, session: str) -> None:
        from thrum_engine.tmux.attach import attach_command, detach_key

        socket_name = self.settings.tmux.socket_name if self.settings is not None else None
        env = dict(os.environ)
        key = await asyncio.to_thread(detach_key, socket_name, env)
        attach = attach_command(socket_name, session, env, keep_screen=True, detach=key)
        self.notify(f"attaching to {session}: {key} comes back here", timeout=4)
        # tmux's complaint is kept (it went to the terminal under the console, seen only after it
        # quit) and shown: an attach that failed said nothing (walk A, 3).
        if attach.popup:
            # A popup over the console: the console stays live underneath, and closing the popup
            # (detaching) leaves it exactly as it was.
            done = await asyncio.to_thread(
                subprocess.run, attach.argv, env=attach.env, check=False, stderr=subprocess.PIPE, text=True
            )
        else:
            # The engine runs on its own thread (or in a daemon), so agents keep being served while
            # this terminal belongs to tmux; detaching brings the console back as it was. The loop
            # waits on purpose: nothing of the console may draw while tmux owns the terminal.
            with self.suspend():
                done = subprocess.run(  # noqa: ASYNC221
                    attach.argv, env=attach.env, check=False, stderr=subprocess.PIPE, text=True
                )
        if done.returncode != 0:
            why = " ".join((done.stderr or "").split()) or f"tmux exited {done.returncode}"
            self.notify(f"could not attach to {session}: {why}", severity="error", timeout=8)
        self.refresh_preview()

    def _confirm_then(self, title: str, detail: str, yes: str, method: str, params: dict, done: str) -> None:
        from thrum_tui.screens.confirm import Confirm

        def answered(ok: bool | None) -> None:
            if ok:
                self.run_engine_action(method, params, done)

        self.push_screen(Confirm(title, detail, yes), answered)

    @work(group="actions", exit_on_error=False)
    async def run_engine_action(self, method: str, params: dict, done: str) -> None:
        try:
            await self.engine.call(method, params)
        except EngineCallFailed as exc:
            if method == "tmux.restart" and exc.kind == "conflict" and not params.get("force"):
                # Busy: say so, and let the operator insist -- deliberately, in a second dialog.
                self._confirm_then(
                    "Restart it anyway?",
                    exc.message.replace("; pass --force to restart it anyway", ""),
                    "Force restart",
                    method,
                    {**params, "force": True},
                    done,
                )
                return
            self.notify(exc.message, title=method, severity="error")
            return
        self.notify(done, timeout=3)
        self.request_refresh()

    def action_kill_session(self) -> None:
        got = self._session_or_warn()
        if got is not None:
            self._confirm_then(
                f"Kill tmux session {got[1]}?",
                f"@{got[0]}'s runtime and shell end now.",
                "Kill",
                "tmux.kill",
                {"session": got[1]},
                f"killed {got[1]}",
            )

    def action_restart_agent(self) -> None:
        got = self._session_or_warn()
        if got is not None:
            self._confirm_then(
                f"Restart @{got[0]}'s runtime?",
                "The pane is respawned and the runtime launched again"
                " (refused while it is working unless forced from the CLI).",
                "Restart",
                "tmux.restart",
                {"session": got[1]},
                f"restarted {got[1]}",
            )

    def action_approve(self) -> None:
        self._answer_selected(approve=True)

    def action_deny(self) -> None:
        """`N` (shift+n, "No"): a key that means nothing else, so no other intent can deny."""
        self._answer_selected(approve=False)

    def _answer_selected(self, *, approve: bool) -> None:
        got = self._session_or_warn()
        if got is None:
            return
        m = self.selected_member()
        if m is None or m["state"] != "blocked":
            self.notify(f"@{got[0]} is not waiting on a permission dialog", severity="warning")
            return
        self.answer_dialog(*got, approve=approve)

    @work(group="actions", exit_on_error=False)
    async def answer_dialog(self, agent: str, session: str, *, approve: bool) -> None:
        """The engine re-reads the pane first and types nothing if the dialog is gone."""
        verdict = "approved" if approve else "denied"
        try:
            r = await self.engine.call("tmux.answer", {"session": session, "approve": approve})
        except EngineCallFailed as exc:
            self.notify(f"nothing typed: {exc.message}", title=f"@{agent}", severity="error")
            return
        self.notify(f"{verdict} @{agent}'s dialog (sent {r['keys']})", timeout=3)
        self.request_refresh()

    def action_relaunch(self) -> None:
        """A dead runtime, an exited one or a killed session: started again in place (same worktree,
        identity and runtime). A running one is R's (restart) business."""
        m = self._agent_or_warn()
        if m is None:
            return
        if m.get("session") and m["state"] not in ("exited", "no session", "offline"):
            self.notify(
                f"@{m['name']}'s runtime is running ({m['state']}); R restarts it", severity="warning"
            )
            return
        self.notify(f"relaunching @{m['name']}…", timeout=3)
        self.run_engine_action(
            "tmux.launch", {"session": m.get("session") or m["name"]}, f"relaunched @{m['name']}"
        )

    def action_interrupt(self) -> None:
        # The top screen's focus, read without `self.focused` (`self.screen`), which raises once the
        # stack has emptied: ctrl+c is a priority key and may land while the app closes.
        focused = self.screen_stack[-1].focused if self.screen_stack else None
        if not isinstance(focused, PanePreview):
            if isinstance(focused, ComposeBar) and focused.value:
                focused.value = ""
            return
        got = self._session_or_warn()
        if got is not None:
            self._confirm_then(
                f"Interrupt @{got[0]}?",
                "Sends the runtime's interrupt key (Escape for agent CLIs, ctrl+c for a shell).",
                "Interrupt",
                "tmux.interrupt",
                {"session": got[1]},
                f"interrupted @{got[0]}",
            )

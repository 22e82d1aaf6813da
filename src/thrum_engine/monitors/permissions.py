"""The built-in permission rule: an agent's pane showing a permission or trust dialog marks the
agent `blocked` and tells its supervisors; a `y`/`n` reply to that notice is typed into the pane
as the runtime's approve/deny keys. Reminders back off; the rule stands down when the dialog clears.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from thrum_engine.durations import iso
from thrum_engine.engine.tasks import TaskSet
from thrum_engine.errors import UnknownRecipient
from thrum_engine.messaging import resolve
from thrum_engine.tmux.server import TmuxError

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine
    from thrum_engine.tmux.manager import Session, TmuxManager
    from thrum_engine.tmux.panes import PaneState

log = logging.getLogger("thrum.permissions")

AUTHOR = "monitor:permissions"
CLOSED_KEEP = 50
APPROVE = ("y", "yes", "approve", "allow", "ok")
DENY = ("n", "no", "deny", "reject")


@dataclass
class Episode:
    session: str
    agent: str
    notices: list[str] = field(default_factory=list)
    interval: float = 0.0
    reminder: asyncio.TimerHandle | None = None
    answered: bool = False


async def answer_dialog(engine: Engine, s: Session, keys: str) -> bool:
    """Type `keys` into the session's dialog only if a fresh reading still shows it (a digit or
    Enter typed anywhere else is an answer to something the human never saw). Whether it typed."""
    tmux = engine.tmux
    if tmux is None:
        return False

    async def still_blocked() -> bool:  # in the pane's typing turn, right before the keys go out
        await tmux.refresh(s)
        return s.state.state == "blocked" and not s.stream.dead

    if not await tmux.send_keys(s, *keys.split(), ready=still_blocked):
        return False
    watch = engine.monitors.permissions if engine.monitors is not None else None
    ep = watch.episodes.get(s.name) if watch is not None else None
    if ep is not None:
        ep.answered = True  # no more reminders for this one
    return True


class PermissionWatch:
    def __init__(self, engine: Engine, tmux: TmuxManager) -> None:
        self.engine = engine
        self.tmux = tmux
        self.settings = engine.settings.monitors
        self.episodes: dict[str, Episode] = {}  # session -> open episode
        self.closed: list[Episode] = []  # recently closed, newest last
        self._tasks = TaskSet(log)

    def start(self) -> None:
        self.tmux.listeners.append(self.on_pane_state)
        self._unlisten = self.engine.bus.listen(self.on_events)
        for s in list(self.tmux.sessions.values()):
            if s.state.state == "blocked":
                self.on_pane_state(s, s.state)

    async def stop(self) -> None:
        self._unlisten()
        if self.on_pane_state in self.tmux.listeners:
            self.tmux.listeners.remove(self.on_pane_state)
        for ep in self.episodes.values():
            if ep.reminder:
                ep.reminder.cancel()
        await self._tasks.close()

    # -- pane side --
    def on_pane_state(self, s: Session, state: PaneState) -> None:
        if not s.agent:
            return
        if state.state == "blocked" and s.name not in self.episodes:
            ep = Episode(s.name, s.agent, interval=self.settings.permission_reminder_seconds)
            self.episodes[s.name] = ep
            self._tasks.spawn(self._open(ep), name=f"thrum-permission-{s.name}")
        elif state.state != "blocked" and s.name in self.episodes:
            ep = self.episodes.pop(s.name)
            if ep.reminder:
                ep.reminder.cancel()
            self.closed.append(ep)  # a late y/n still gets an answer ("the dialog is gone")
            del self.closed[:-CLOSED_KEEP]
            self._tasks.spawn(self._set_status(ep.agent, ""))  # stand down: the pane says what it does

    async def _set_status(self, agent: str, status: str) -> None:
        if agent in self.engine.agents and self.engine.agents[agent].get("status") != status:
            await self.engine.commit(
                self.engine.event(
                    "agent.update", AUTHOR, {"name": agent, "fields": {"status": status, "status_at": iso()}}
                )
            )

    def supervisors(self, agent: str) -> list[str]:
        out: list[str] = []
        for addr in self.settings.supervisors:
            try:
                found, _ = resolve(self.engine, [addr], agent)
            except UnknownRecipient:
                continue  # a supervisor role nobody holds yet
            out += [f for f in found if f not in out]
        return out

    async def _open(self, ep: Episode) -> None:
        try:
            await self._set_status(ep.agent, "blocked")
            await self._notify(ep, reminder=False)
        except Exception:
            log.exception("permission notice for %s failed", ep.session)

    async def _notify(self, ep: Episode, *, reminder: bool) -> None:
        if self.episodes.get(ep.session) is not ep:
            return
        to = self.supervisors(ep.agent)
        if not to:
            log.warning(
                "@%s is blocked on a dialog in %s and no supervisor is registered (%s)",
                ep.agent,
                ep.session,
                ", ".join(self.settings.supervisors),
            )
        else:
            screen = await self._screen(ep.session)
            s = self.tmux.sessions.get(ep.session)
            keys = f" ({s.runtime.approve} / {s.runtime.deny})" if s else ""
            body = (
                ("Reminder: " if reminder else "")
                + f"@{ep.agent} is waiting on a permission dialog in session {ep.session}{question_of(screen)}:"
                f"\n```\n{screen}\n```\nReply `y` to approve once or `n` to deny{keys}."
            )
            ev = await self.engine.post(
                AUTHOR,
                body,
                to=["@" + n for n in to],
                fmt="markdown",
                scopes=[f"session:{ep.session}"],
                refs=[f"agent:{ep.agent}"],
            )
            ep.notices.append(ev["data"]["message_id"])
        ep.reminder = asyncio.get_running_loop().call_later(ep.interval, self._remind, ep)
        ep.interval *= 2  # reminders back off

    def _remind(self, ep: Episode) -> None:
        if self.episodes.get(ep.session) is ep and not ep.answered:
            self._tasks.spawn(self._notify(ep, reminder=True), name=f"thrum-permission-remind-{ep.session}")

    async def _screen(self, session: str) -> str:
        s = self.tmux.sessions.get(session)
        if s is None:
            return ""
        try:
            lines = await asyncio.to_thread(self.tmux.tmux.capture, s.pane_id, 40)
        except TmuxError:
            return ""  # the pane went away: the notice goes without its picture
        lines = [ln for ln in lines if ln.strip()]
        return "\n".join(lines[-12:])

    # -- replies --
    def on_events(self, events: list[dict]) -> None:
        for ev in events:
            if ev["type"] != "message.create":
                continue
            parent = ev["data"].get("reply_to")
            if not parent:
                continue
            for ep in list(self.episodes.values()) + self.closed:
                if parent in ep.notices:
                    self._tasks.spawn(self._answer(ep, ev), name=f"thrum-permission-answer-{ep.session}")
                    break

    async def _answer(self, ep: Episode, ev: dict) -> None:
        word = ev["data"]["content"].strip().lower().rstrip(".!")
        s = self.tmux.sessions.get(ep.session)
        if s is None:
            s_missing = f"Session {ep.session} is gone; nothing was typed."
            if word in APPROVE or word in DENY:
                await self.engine.post(
                    AUTHOR,
                    s_missing,
                    to=["@" + ev["author"]],
                    fmt="plain",
                    thread_id=ev["data"].get("thread_id"),
                    reply_to=ev["data"]["message_id"],
                )
            return
        if word in APPROVE or word == s.runtime.approve.lower():
            keys, verdict = s.runtime.approve, "approved"
        elif word in DENY or word == s.runtime.deny.lower():
            keys, verdict = s.runtime.deny, "denied"
        else:
            return  # a conversation, not an answer
        if self.episodes.get(ep.session) is not ep or not await answer_dialog(self.engine, s, keys):
            text = f"The dialog in {ep.session} is no longer open; nothing was typed."
        else:
            text = f"✓ {verdict.capitalize()} in {ep.session} (sent {keys})."
        try:
            await self.engine.post(
                AUTHOR,
                text,
                to=["@" + ev["author"]],
                fmt="plain",
                thread_id=ev["data"].get("thread_id"),
                reply_to=ev["data"]["message_id"],
            )
        except Exception:
            log.exception("could not confirm the answer to @%s", ev["author"])


def question_of(screen: str) -> str:
    """The dialog's question for the notice's first line (` — "Allow execution of: 'rm'?"`), the
    last line of the screen that asks one; a toast shows only that first line, and it showed the
    pane's shell prompt above the dialog instead (console walk, session 22)."""
    for line in reversed(screen.splitlines()):
        text = line.strip().strip("│┃|").strip()
        if text.endswith("?") and len(text) > 3:
            return f' — "{text[:160]}"'
    return ""

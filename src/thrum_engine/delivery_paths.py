"""Which ways a message can reach each agent, and which one the engine uses.

Paths, least intrusive first:

* `channel`: an MCP server (`thrum mcp serve`) inside a Claude Code session holds a channel open with
  `channel.listen` (a long-poll on its own connection); the engine hands it each message and the server
  pushes it into the session as `notifications/claude/channel`, then acknowledges it on its next call.
* `wait`: a blocked `thrum wait` or MCP `wait_for_message` took the message itself.
* `hook`: the runtime's hooks fired recently (`hooks.fire`, hooks_log.py, records them); its prompt-submit
  or stop hook shows unread mail at the next prompt or stop (and says so here), so a nudge waits a moment
  for it.
* `nudge`: a line typed into the idle pane (tmux/nudges.py), the last resort, still gated on idle, no dialog
  and no human typing.

Whichever path delivers first writes the delivery record (`message.notified` with `via`), which is what
`sent show` and the console show. The state here is in memory: paths are live connections and recent
firings, which an engine restart ends anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from thrum_engine import hooks_log, ids
from thrum_engine.daemon.lock import pid_alive
from thrum_engine.durations import iso
from thrum_engine.engine.per_engine import PerEngine
from thrum_engine.engine.registry import method
from thrum_engine.messaging import event_message_view
from thrum_engine.model import Params
from thrum_engine.self_notes import note_to_self

if TYPE_CHECKING:
    from thrum_engine.engine.core import Caller, Engine

log = logging.getLogger("thrum.delivery")

Path = Literal["channel", "wait", "hook", "nudge"]
PATHS: tuple[Path, ...] = ("channel", "wait", "hook", "nudge")

# A channel stays registered this long between two `channel.listen` calls: the MCP server calls again
# straight after pushing, so a longer gap means it is gone.
CHANNEL_GRACE_SECONDS = 3.0
# A message handed to a channel and not acknowledged this long is typed after all (the session died
# between the hand-over and the push, or the client ignores channels).
CHANNEL_ACK_SECONDS = 5.0
# Hooks that fired this recently are a delivery path.
HOOK_FRESH_SECONDS = 600.0
# Once the pane is idle, a nudge to an agent with live hooks waits this long for the stop hook's drain.
HOOK_SETTLE_SECONDS = 2.0
MAX_BATCH = 100
MAX_LISTEN_SECONDS = 300.0

_NAME = r"^[A-Za-z0-9_.:-]{1,64}$"


def _pid_alive(pid: int | None) -> bool:
    """No pid: in-process (tests, the console), alive as long as it listens."""
    return True if not pid else pid_alive(pid)


@dataclass(eq=False)
class Channel:
    """One MCP server's channel for one agent."""

    agent: str
    channel_id: str
    pid: int | None
    client: str
    # A push the session is known to show (`thrum mcp serve --channel on`). An untrusted channel
    # (`auto`: the client is Claude Code, which drops the events unless it was started with channels,
    # RUNTIMES.md) still gets every message, but delivers none: hooks and nudges go on as without it.
    trusted: bool = True
    opened_at: float = field(default_factory=time.time)
    listening: int = 0  # `channel.listen` calls in flight
    last_end: float = field(default_factory=time.monotonic)
    queue: list[dict] = field(default_factory=list)  # message.create events not handed out yet
    handed: dict[str, float] = field(default_factory=dict)  # message id -> when handed, until acked
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False  # by `channel.close`: never live again, even with a listen still in flight

    def live(self, now: float | None = None) -> bool:
        if self.closed:
            return False
        now = time.monotonic() if now is None else now
        return (self.listening > 0 or now - self.last_end < CHANNEL_GRACE_SECONDS) and _pid_alive(self.pid)


class DeliveryPaths:
    """The per-engine registry of delivery paths (channels, hook firings) and the choice among them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.channels: dict[str, dict[str, Channel]] = {}  # agent -> channel id -> channel
        self._hold: dict[str, float] = {}  # agent -> monotonic time a hook-waiting nudge may go
        self._tasks: set[asyncio.Task] = set()
        # (agent, message id) whose delivery record is being stored: delivered already, for `sift`.
        self._claimed: set[tuple[str, str]] = set()
        self.delivered: dict[Path, int] = dict.fromkeys(PATHS, 0)  # by the paths this module records
        self._unlisten = engine.bus.listen(self._on_events)

    # -- channels --
    def open_channel(
        self, agent: str, channel_id: str, pid: int | None, client: str, *, trusted: bool = True
    ) -> Channel:
        mine = self.channels.setdefault(agent, {})
        ch = mine.get(channel_id)
        if ch is None or not ch.live() or ch.pid != pid or ch.trusted != trusted:
            if ch is not None:
                log.info("channel %s of @%s re-opened", channel_id, agent)
            ch = mine[channel_id] = Channel(agent, channel_id, pid, client, trusted)
            log.info(
                "channel %s open for @%s (client %r, pid %s%s)",
                channel_id,
                agent,
                client,
                pid,
                "" if trusted else ", pushes not counted as delivered",
            )
        return ch

    def close_channel(self, agent: str, channel_id: str) -> bool:
        mine = self.channels.get(agent, {})
        ch = mine.pop(channel_id, None)
        if not mine:
            self.channels.pop(agent, None)
        if ch is not None:
            ch.closed = True
            ch.wake.set()
        return ch is not None

    def live_channels(self, agent: str) -> list[Channel]:
        mine = self.channels.get(agent)
        if not mine:
            return []
        now = time.monotonic()
        live = [c for c in mine.values() if c.live(now)]
        for cid in [cid for cid, c in mine.items() if not c.live(now) and c.listening == 0]:
            del mine[cid]  # gone: what it held falls back to the other paths
        if not mine:
            self.channels.pop(agent, None)
        return live

    def delivering_channels(self, agent: str) -> list[Channel]:
        """The live channels whose pushes count as delivered (trusted ones): what routing and the
        ledger go by. Untrusted ones still receive every message (`live_channels`)."""
        return [c for c in self.live_channels(agent) if c.trusted]

    async def ack(self, ch: Channel, message_ids: list[str]) -> int:
        """The MCP server pushed these into its session: the delivery record says `channel` (only for
        a trusted channel: an untrusted push proves nothing)."""
        done = [m for m in message_ids if m in ch.handed] if ch.trusted else []
        if done:
            await self._notified(ch.agent, done, "channel")
            for m in done:  # only now: until the record is stored, `handed` is what holds the nudge back
                ch.handed.pop(m, None)
        return len(done)

    # -- hooks (their firings are hooks_log's record) --
    def last_hook(self, agent: str) -> tuple[str, dict] | None:
        """(event, {at, runtime, count}) of the agent's latest hook firing."""
        ag = hooks_log.state(self.engine).agents.get(agent)
        if ag is None or not ag.fired:
            return None
        return max(ag.fired.items(), key=lambda kv: kv[1].get("at", 0))

    def hooks_fresh(self, agent: str) -> bool:
        last = self.last_hook(agent)
        return last is not None and time.time() - last[1].get("at", 0) < HOOK_FRESH_SECONDS

    def surfacing(self, agent: str) -> set[str]:
        """Message ids another path is surfacing to `agent` right now, before the ledger says so: a
        `wait` took it (its record is being stored), or a live channel holds it (queued, or handed and
        not acknowledged yet, within CHANNEL_ACK_SECONDS). A hook leaves these to that path."""
        out = {m for a, m in self._claimed if a == agent}
        now = time.monotonic()
        for ch in self.delivering_channels(agent):
            out.update(ev["data"]["message_id"] for ev in ch.queue)
            out.update(m for m, at in ch.handed.items() if now - at < CHANNEL_ACK_SECONDS)
        return out

    async def shown_by_hook(self, agent: str, message_ids: list[str]) -> None:
        """A hook put these in front of the agent (added context, a stop's reason): delivered `via: hook`."""
        if message_ids:
            await self._notified(agent, message_ids, "hook")

    # -- routing --
    def _on_events(self, events: list[dict]) -> None:
        for ev in events:
            if ev["type"] != "message.create" or ev["data"].get("typed"):
                continue
            mid = ev["data"]["message_id"]
            for r in ev["data"].get("recipients", ()):
                if note_to_self(ev, r):
                    continue
                if self.engine.bus.took(ev, r):
                    self._claimed.add((r, mid))
                    self._spawn(self._notified(r, [mid], "wait"))
                    continue
                for ch in self.live_channels(r):
                    ch.queue.append(ev)
                    ch.wake.set()

    def _spawn(self, coro) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _notified(self, agent: str, message_ids: list[str], via: Path) -> None:
        claims = {(agent, m) for m in message_ids} - self._claimed
        self._claimed |= claims
        try:
            await self.engine.commit(
                self.engine.event(
                    "message.notified",
                    "system",
                    {"recipient": agent, "message_ids": message_ids, "at": iso(), "via": via},
                )
            )
            self.delivered[via] += len(message_ids)
        except Exception:
            log.exception("recording the %s delivery to @%s failed", via, agent)
        finally:
            self._claimed -= claims | {(agent, m) for m in message_ids}

    def best(self, agent: str, *, pane: bool) -> Path | None:
        """The least intrusive path this agent has right now (None: the mail waits in its inbox)."""
        if self.delivering_channels(agent):
            return "channel"
        if self.engine.bus.waiting(agent):
            return "wait"
        if self.hooks_fresh(agent):
            return "hook"
        return "nudge" if pane else None

    async def sift(self, agent: str, message_ids: list[str]) -> tuple[list[str], float | None]:
        """Called by the nudger right before it types: which of `message_ids` still need the typed
        nudge, and when to ask again for the ones another path may yet deliver (None: no need)."""
        if not message_ids:
            return [], None
        marks = ",".join("?" * len(message_ids))
        rows = await self.engine.store.all(
            "SELECT message_id, notified_via, seen_at, read_at FROM deliveries"
            f" WHERE recipient = ? AND message_id IN ({marks})",
            [agent, *message_ids],
        )
        state = {r["message_id"]: r for r in rows}
        channels = self.delivering_channels(agent)
        hooks = self.hooks_fresh(agent)
        now = time.monotonic()
        keep: list[str] = []
        retry: float | None = None
        for mid in message_ids:
            r = state.get(mid)
            if r is None or r["read_at"] or r["seen_at"] or (agent, mid) in self._claimed:
                continue  # deleted, or the agent has it in front of it already
            via = r["notified_via"]
            if via == "wait" or (via == "channel" and channels) or (via == "hook" and hooks):
                continue
            handed = [c.handed[mid] for c in channels if mid in c.handed]
            queued = any(ev["data"]["message_id"] == mid for c in channels for ev in c.queue)
            if (handed or queued) and via != "channel":
                left = CHANNEL_ACK_SECONDS - (now - min(handed)) if handed else CHANNEL_ACK_SECONDS
                if left > 0:
                    retry = left if retry is None else min(retry, left)
                    continue
            keep.append(mid)
        if keep and hooks:
            until = self._hold.get(agent)
            if until is None:
                self._hold[agent] = now + HOOK_SETTLE_SECONDS
                return [], HOOK_SETTLE_SECONDS if retry is None else min(retry, HOOK_SETTLE_SECONDS)
            if now < until:
                return [], until - now
            del self._hold[agent]
        if keep:
            log.info("@%s: no other path delivered %s: nudging", agent, ", ".join(keep))
        return keep, retry

    def view(self, agent: str, pane: str | None) -> dict:
        chans = self.live_channels(agent)
        last = self.last_hook(agent)
        return {
            "agent": agent,
            "best": self.best(agent, pane=pane is not None),
            "channel": [
                {
                    "channel_id": c.channel_id,
                    "client": c.client,
                    "pid": c.pid,
                    "since": iso(c.opened_at),
                    "trusted": c.trusted,
                }
                for c in chans
            ],
            "waiting": self.engine.bus.waiting(agent),
            "hook": None
            if last is None
            else {
                "event": last[0],
                "runtime": last[1].get("runtime", ""),
                "at": iso(last[1].get("at", 0)),
                "age_seconds": round(time.time() - last[1].get("at", 0), 1),
                "fresh": self.hooks_fresh(agent),
            },
            "pane": pane,
        }


attach: PerEngine[DeliveryPaths] = PerEngine(DeliveryPaths)  # made (and subscribed to the bus) on first use


def _pane_of(engine: Engine, agent: str) -> str | None:
    tmux = engine.tmux
    s = tmux.for_agent(agent) if tmux is not None else None
    return s.name if s is not None else None


# -- methods -----------------------------------------------------------------------------------------------


class ChannelListenParams(Params):
    channel_id: str = Field(pattern=_NAME)
    client: str = Field("", max_length=200)
    # False: the session may drop what is pushed (`--channel auto`); older MCP servers send nothing.
    trusted: bool = True
    ack: list[str] = Field(default_factory=list, max_length=MAX_BATCH * 10)
    timeout: float = Field(25.0, ge=0, le=MAX_LISTEN_SECONDS)


class ChannelCloseParams(Params):
    channel_id: str = Field(pattern=_NAME)


class PathsParams(Params):
    agent: str | None = None


def _message_ids(values: list[str]) -> list[str]:
    for mid in values:
        ids.check_id(mid, "msg", "message")
    return list(dict.fromkeys(values))


@method("channel.listen", ChannelListenParams, identity=True, writes=True, timeout=False)
async def channel_listen(engine: Engine, caller: Caller, p: ChannelListenParams) -> dict:
    """Hold the caller's channel open and hand it the messages that arrive; `ack` what the last call
    handed out once it reached the session."""
    paths = attach(engine)
    me: str = caller.name  # type: ignore[assignment]  # identity=True
    ch = paths.open_channel(me, p.channel_id, caller.pid, p.client, trusted=p.trusted)
    ch.listening += 1
    try:
        acked = await paths.ack(ch, _message_ids(p.ack)) if p.ack else 0
        if not ch.queue and p.timeout > 0:
            ch.wake.clear()
            try:
                await asyncio.wait_for(ch.wake.wait(), p.timeout)
            except TimeoutError:
                pass
        batch, ch.queue[:] = ch.queue[:MAX_BATCH], ch.queue[MAX_BATCH:]
        now = time.monotonic()
        for ev in batch if ch.trusted else ():  # an untrusted channel's acks are not waited for
            ch.handed[ev["data"]["message_id"]] = now
        return {
            "channel_id": ch.channel_id,
            "status": "received" if batch else "timeout",
            "messages": [event_message_view(ev) for ev in batch],
            "acked": acked,
        }
    finally:
        ch.listening -= 1
        ch.last_end = time.monotonic()


@method("channel.close", ChannelCloseParams, identity=True)
async def channel_close(engine: Engine, caller: Caller, p: ChannelCloseParams) -> dict:
    return {"closed": attach(engine).close_channel(caller.name or "", p.channel_id)}


@method("delivery.paths", PathsParams)
async def delivery_paths(engine: Engine, caller: Caller, p: PathsParams) -> dict:
    paths = attach(engine)
    names = [p.agent.lstrip("@")] if p.agent else sorted(engine.agents)
    return {
        "agents": [paths.view(n, _pane_of(engine, n)) for n in names],
        "delivered": dict(paths.delivered),
    }

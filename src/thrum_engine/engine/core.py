"""`Engine`: the single async façade over journal, projection, caches and the bus.

Every caller — the socket server, the console, tests — goes through
`Engine.call(method, params, caller)`, so validation and permission checks
live in one place. The core imports no subsystem: `engine/assemble.py` builds the
subsystems (tmux, monitors, the change feed, ...), plugs them in as `Part`s and fills the typed
slots below, so nothing here grows when a subsystem is added.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from thrum_engine import ids
from thrum_engine.durations import iso, parse_iso
from thrum_engine.engine.bus import Bus
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.registry import METHODS
from thrum_engine.engine.tasks import cancel_and_wait
from thrum_engine.engine.writer import JournalWriteFailed, Writer
from thrum_engine.errors import (
    EngineTimeout,
    Forbidden,
    InvalidInput,
    SchemaTooNew,
    ThrumError,
    UnknownAgent,
    UnknownMethod,
)
from thrum_engine.git import GitFailed, repair_sync_worktree
from thrum_engine.journal import Journal, Rejected, TornTail, parse_event
from thrum_engine.layout import SYNC_BRANCH, Layout, exclude_thrum_state
from thrum_engine.settings import ThrumSettings
from thrum_engine.settings_live import LiveSettings
from thrum_engine.store import Store, queries
from thrum_engine.store.health import diagnose, mark_clean, move_aside, remove_scratch, take_clean
from thrum_engine.store.schema import REBUILD_DUE
from thrum_engine.store.validate import shape_problem
from thrum_engine.version import __version__

if TYPE_CHECKING:
    from thrum_engine.changes import ChangeFeed
    from thrum_engine.idempotency import IdempotencyIndex
    from thrum_engine.monitors.service import MonitorService
    from thrum_engine.schedules.service import ScheduleService
    from thrum_engine.sync.service import SyncService
    from thrum_engine.tmux.manager import TmuxManager

__all__ = ["Caller", "Engine", "Part", "Post"]

log = logging.getLogger("thrum.engine")

PRESENCE_FLUSH_SECONDS = 30.0
WATCHDOG_SECONDS = 0.5


@functools.lru_cache(maxsize=1024)
def _real(path: str) -> str:
    return os.path.realpath(path)


def _log_marker_failure(fut: asyncio.Future) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("marker not recorded: %s", fut.exception())


@dataclass(frozen=True)
class Part:
    """A subsystem plugged into the engine by the composition root: started in plug order once the
    core is up (journal, projection, writer), stopped in reverse order before the core stops."""

    name: str
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]


class Post(Protocol):
    """Messaging as the subsystems see it (monitors, the command queue, the permission rule):
    validate, resolve and durably store one message; returns its create event. Injected by the
    composition root so no subsystem imports a method module."""

    def __call__(self, author: str, body: str, *, to: list[str], **options: Any) -> Awaitable[dict]: ...


async def _no_messaging(author: str, body: str, *, to: list[str], **options: Any) -> dict:
    raise ThrumError("messaging is not assembled into this engine (build it with engine.assemble)")


def _shape_only(ev: dict, _raw: bytes) -> str | None:
    return shape_problem(ev)


def same_origin(kept: str, incoming: str) -> bool:
    """A registration may update an agent row when both come from one clone (or predate sync)."""
    return not kept or not incoming or kept == incoming


class Engine:
    def __init__(
        self,
        layout: Layout,
        settings: ThrumSettings,
        *,
        host: str = "daemon",
        request_stop: Callable[[], None] | None = None,
    ) -> None:
        self.layout = layout
        self.settings = settings
        self.live_settings = LiveSettings(layout.config_file, settings)  # config.json edits apply live
        self.host = host
        self.started_at = time.time()
        self.journal = Journal(layout.journal_dir, layout.quarantine_dir, layout.clone_file)
        self.store = Store(layout.db_path)
        self.bus = Bus()
        self.writer = Writer(self.journal, self.store, self._on_applied)
        self.agents: dict[str, dict] = {}
        self.active_sessions: dict[str, dict] = {}
        self.last_seen: dict[str, float] = {}
        self._presence_dirty: set[str] = set()
        self._presence_task: asyncio.Task | None = None
        self._watchdog_task: asyncio.Task | None = None
        self._inflight: dict[asyncio.Task, float] = {}
        self._timed_out: set[asyncio.Task] = set()
        self._started: list[Part] = []
        self.torn: list[TornTail] = []
        self.replayed = 0
        self.corrupt_lines = 0
        self.rejected_at_start: list[Rejected] = []
        # Set when start found the projection broken and rebuilt it: {at, reason, moved_to, ...}.
        self.projection_recovered: dict | None = None
        # Given by the host (daemon or console) so `daemon stop` over the socket can end it.
        self.request_stop = request_stop
        # Filled by the composition root (engine/assemble.py); None: that subsystem is off.
        self.parts: list[Part] = []
        self.tmux: TmuxManager | None = None  # set once tmux started (messaging works without it)
        self.monitors: MonitorService | None = None
        self.changes: ChangeFeed | None = None
        self.sync: SyncService | None = None  # set once sync started (off: local-only)
        self.idempotency: IdempotencyIndex | None = None  # idempotent sends (issue 16)
        self.schedules: ScheduleService | None = None  # the schedules' one timer (issue 16)
        self.post: Post = _no_messaging
        self.collisions: list[dict] = []  # agent names registered on two clones (sync), oldest first
        self._collisions_unsaved: list[dict] = []  # saved with the presence (name_collisions)
        self._markers: dict[str, asyncio.Future] = {}  # author -> the last marker queued by commit_later

    def plug(self, part: Part) -> None:
        """Add a subsystem to start with the engine (before `start`)."""
        self.parts.append(part)

    # -- lifecycle --
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # Repos initialised before the rule lived in info/exclude get it now, for every worktree.
        await loop.run_in_executor(None, exclude_thrum_state, self.layout.repo)
        await loop.run_in_executor(None, self._restore_journal_worktree)
        self.torn = await loop.run_in_executor(None, self.journal.open)
        if self.journal.minted == "copy":
            log.warning(
                "this repository's .thrum/var was copied from another clone: it writes as clone %s now"
                " (it was %s), so the two never append to the same shard",
                self.journal.clone,
                self.journal.former[-1],
            )
        for t in self.torn:
            log.warning(
                "torn journal tail in %s at %d (%d bytes) set aside in %s",
                t.shard,
                t.offset,
                t.length,
                t.saved_to,
            )
        try:
            await self._open_projection()
            await self.load_caches()
        except BaseException:
            await self.store.close()
            raise
        self.writer.start()
        self._presence_task = asyncio.create_task(self._presence_loop(), name="thrum-presence")
        self._watchdog_task = asyncio.create_task(self._watchdog(), name="thrum-watchdog")
        self._started = []
        try:
            for part in self.parts:
                await part.start()
                self._started.append(part)
        except BaseException:
            await self.stop()
            raise
        log.info("engine started (host=%s, replayed %d events)", self.host, self.replayed)

    async def stop(self) -> None:
        while self._started:
            part = self._started.pop()
            try:
                await part.stop()
            except Exception:  # a boundary: the rest still stops, and the journal still closes
                log.exception("stopping %s failed", part.name)
        await cancel_and_wait(self._presence_task, self._watchdog_task, log=log)
        self._presence_task = self._watchdog_task = None
        await self.writer.stop()
        await self.flush_presence()
        was_open = self.store.is_open
        await self.store.close()
        if was_open:  # a clean stop: the next start may skip the whole-file check
            await asyncio.to_thread(mark_clean, self.layout.db_path)
        self.journal.close()
        log.info("engine stopped")

    async def _open_projection(self) -> None:
        """Open the projection and catch it up; a broken one (unreadable, corrupt, wrong schema) is moved
        aside and rebuilt from the journal, because the journal is the truth and the projection disposable.
        So is one that a migration marked as due for a rebuild (schema.REBUILD_DUE)."""
        path = self.layout.db_path
        for leftover in await asyncio.to_thread(remove_scratch, path):
            log.warning("removed %s, left by an interrupted rebuild", leftover)
        clean = await asyncio.to_thread(take_clean, path)
        reason = await asyncio.to_thread(functools.partial(diagnose, path, whole_file=not clean))
        if reason is None and not os.path.exists(path) and await asyncio.to_thread(self._journal_has_lines):
            await self._build_from_journal(
                local_from=None
            )  # a deleted projection: the rebuild path is faster
            return
        if reason is None:
            try:
                await self.store.open()
                due = await queries.meta(self.store, REBUILD_DUE)
                if due is None:
                    self.replayed = await self.catch_up()
                    self.projection_recovered = await self._recovery_record()
                    return
                await self.store.close()
                reason = due
            except SchemaTooNew:
                raise  # a newer Thrum's database: refused with its own message, never thrown away
            except sqlite3.DatabaseError as exc:  # what the cheap checks could not see
                await self.store.close()
                reason = f"{type(exc).__name__}: {exc}"
        await self._recover_projection(reason)

    def _journal_has_lines(self) -> bool:
        return any(map(self.journal.size, self.journal.shards()))

    async def _build_from_journal(self, *, local_from: str | None) -> str | None:
        """Build the projection from the whole journal (the `doctor rebuild` path) and open it; returns the
        note on machine-local tables (None: copied)."""
        from thrum_engine.store.rebuild import build_projection, swap_in

        built = await build_projection(self.journal, self.layout.db_path, local_from=local_from)
        await asyncio.to_thread(swap_in, built, self.layout.db_path)
        self.rejected_at_start = built.rejected
        self.corrupt_lines = sum(r.unreadable for r in built.rejected)
        self.replayed = built.events
        await self.store.open()
        return built.local_note

    async def _recover_projection(self, reason: str) -> None:
        path = self.layout.db_path
        started = time.perf_counter()
        log.warning(
            "the projection %s is unusable (%s): moving it aside and rebuilding it from the journal",
            path,
            reason,
        )
        moved = await asyncio.to_thread(move_aside, path)
        note = await self._build_from_journal(local_from=moved)
        record = {
            "at": iso(),
            "reason": reason,
            "moved_to": moved,
            "events": self.replayed,
            "seconds": round(time.perf_counter() - started, 3),
            "local_tables": note or "copied",
        }
        await queries.set_meta(self.store, "projection_recovered", json.dumps(record, sort_keys=True))
        self.projection_recovered = record
        log.warning(
            "projection rebuilt from %d journal events in %.2fs; the old file is %s (%s)",
            self.replayed,
            record["seconds"],
            moved,
            record["local_tables"],
        )

    async def _recovery_record(self) -> dict | None:
        """The last recovery's record, kept in the projection so `doctor` reports it after restarts too."""
        raw = await queries.meta(self.store, "projection_recovered")
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _restore_journal_worktree(self) -> None:
        """Before the journal opens: a copied journal worktree is linked to this repository (its sync
        would commit into the original's), and one someone removed is checked out again from its
        branch (the journal would be an empty plain folder: sync off, and `doctor rebuild` would
        project nothing). Lines it held that no cycle committed are gone with it; the projection
        still has them, and `doctor` says so."""
        try:
            done = repair_sync_worktree(
                self.layout.repo, self.layout.sync_worktree, SYNC_BRANCH, self.layout.git_dir
            )
        except (GitFailed, OSError) as exc:
            log.warning("could not repair the journal worktree %s: %s", self.layout.sync_worktree, exc)
            return
        if done == "relinked":
            log.warning("the journal worktree was copied from another repository: linked to this one")
        elif done == "restored":
            log.warning("the journal worktree was missing: checked out again from %s", SYNC_BRANCH)

    def _read_tails(
        self, offsets: dict[str, int], only: list[str] | None = None
    ) -> tuple[list[dict], dict[str, int], list[Rejected]]:
        """Checked events past each shard's offset (of `only` these shards), in id order; lines that fail
        are returned as rejected."""
        items: list[tuple[dict, str, int, int]] = []
        new_offsets: dict[str, int] = {}
        rejected: list[Rejected] = []
        for shard in self.journal.shards() if only is None else only:
            start = offsets.get(shard, 0)
            if self.journal.size(shard) <= start:
                continue
            r = self.journal.read_events(shard, start, _shape_only)
            new_offsets[shard] = r.end
            rejected += r.rejected
            items += [(ev, shard, off, n) for ev, (off, n) in zip(r.events, r.origins)]
        items.sort(key=lambda t: t[0]["id"])
        firsts: dict[str, dict] = {}
        events = []
        for ev, shard, off, n in items:
            kept = firsts.setdefault(ev["id"], ev)
            if kept is ev:
                events.append(ev)
            elif kept != ev:  # the same event in two shards is one (`EventCheck`'s COPY); another is not
                reason = f"duplicate event id {ev['id']}"
                rejected.append(Rejected(shard, off, n, reason, False, self.journal.read_at(shard, off, n)))
        for rec in self.journal.set_aside(rejected):
            log.warning(
                "journal line %s:%d set aside (%s): %s",
                rec["shard"],
                rec["offset"],
                rec["reason"],
                rec["saved_to"],
            )
        return events, new_offsets, rejected

    async def catch_up(self) -> int:
        """Apply journal lines past each shard's recorded offset (a crash between fsync and commit, or lines
        that arrived by sync). A line that fails its checks is set aside and the rest is applied."""
        offsets = await self.store.offsets()
        events, new_offsets, self.rejected_at_start = await asyncio.to_thread(self._read_tails, offsets)
        self.corrupt_lines = sum(r.unreadable for r in self.rejected_at_start)
        if not new_offsets:
            return 0
        applied = 0
        for i in range(0, max(len(events), 1), 5000):
            chunk = events[i : i + 5000]
            last = i + 5000 >= len(events)
            applied += await self.store.apply(chunk, new_offsets if last else {}, skip_applied=True)
        return applied

    async def ingest(self, shards: list[str]) -> int:
        """Apply what sync brought into other clones' `shards` exactly like local events: once each (ids
        are global), then the caches, waiters, nudges and the console see them. Under the writer's lock,
        so a local batch and a synced one never interleave. A shard sync replaced with another version
        is read from its start (`forget_offsets` recorded 0); lines already applied are skipped."""
        async with self.writer.lock:
            offsets = await self.store.offsets()
            events, new_offsets, _rejected = await asyncio.to_thread(self._read_tails, offsets, shards)
            if not new_offsets:
                return 0
            known = await self.store.applied_among([e["id"] for e in events])
            fresh = [e for e in events if e["id"] not in known]
            await self.store.apply(fresh, new_offsets)
        if fresh:
            self._on_applied(fresh)
        return len(fresh)

    async def move_clone(self) -> tuple[str, str]:
        """Write under a new clone id from the next batch on (sync found another clone writing under
        this one's). Under the writer's lock: no batch holds shard names of the old id."""
        async with self.writer.lock:
            old, new = await asyncio.to_thread(self.journal.move_clone)
        log.warning("another clone writes as clone %s: this one writes as clone %s from now on", old, new)
        return old, new

    async def forget_offsets(self, shards: frozenset[str]) -> None:
        """Record that `shards` are read from their start (sync replaces them with another version)."""
        async with self.writer.lock:
            await self.store.apply([], dict.fromkeys(shards, 0))

    async def rehome(self, lines: list[bytes]) -> int:
        """Append journal lines this clone holds and no synced shard does any longer (their shard was
        rewritten elsewhere) to this clone's own shards, unchanged, so sync carries them again. They
        are applied already: only the journal and the shard offsets change, and nothing is announced."""
        by_shard: dict[str, list[bytes]] = {}
        for raw in lines:
            ev = parse_event(raw)
            if ev is not None and isinstance(ev.get("author"), str):
                by_shard.setdefault(self.journal.shard_for(ev["author"]), []).append(
                    raw.rstrip(b"\n") + b"\n"
                )
        if not by_shard:
            return 0
        async with self.writer.lock:
            await self.store.apply(
                [], {}, before=lambda: self.journal.append(by_shard), undo=self.journal.undo_last_append
            )
        return sum(map(len, by_shard.values()))

    async def load_caches(self) -> None:
        self.agents = {r["name"]: r for r in await queries.agents(self.store)}
        self.collisions = await queries.collisions(self.store)
        self.active_sessions = {r["agent"]: r for r in await queries.open_sessions(self.store)}
        for r in await queries.presence(self.store):
            try:
                self.last_seen[r["agent"]] = parse_iso(r["last_seen"])
            except ValueError:
                pass

    # -- writing --
    def event(self, etype: str, author: str, data: dict[str, Any], *, ulid: str | None = None) -> dict:
        """`ulid`: reuse the body of an id minted for the same change (a message and its create event)."""
        return {
            "v": 1,
            "id": "evt_" + (ulid or ids.ulid()),
            "type": etype,
            "author": author,
            "ts": iso(),
            "data": data,
        }

    async def commit(self, *events: dict) -> None:
        try:
            await self.writer.queue(list(events))  # Writer.submit without its frame: once per send
        except JournalWriteFailed as exc:
            raise ThrumError(str(exc)) from exc

    def commit_later(self, *events: dict) -> None:
        """Queue events without waiting until they are durable: only for markers whose loss in a
        crash costs a repeat and nothing else (seen and read markers: the messages are durable). They are still written in
        order with everything queued after them, and before the engine stops; a failure is logged."""
        try:
            fut = self.writer.queue(list(events))
        except JournalWriteFailed as exc:
            log.warning("marker not recorded: %s", exc)
            return
        fut.add_done_callback(_log_marker_failure)
        for ev in events:
            self._markers[ev["author"]] = fut

    async def markers_written(self, name: str) -> None:
        """Wait for `name`'s markers still being written (the writer keeps order: the last is
        enough): every request of that agent sees its own reads and waits recorded."""
        fut = self._markers.get(name)
        if fut is None:
            return
        if not fut.done():
            await asyncio.wait([fut])
        if self._markers.get(name) is fut:
            del self._markers[name]

    def _on_applied(self, events: list[dict]) -> None:
        for ev in events:
            d = ev["data"]
            t = ev["type"]
            if t == "agent.register":
                row = self.agents.get(d["name"], {})
                if not same_origin(row.get("origin", ""), d.get("origin", "")):
                    # Another clone registered a name this clone has: the first registration keeps
                    # it (as the projection does), and the collision is reported, never merged.
                    found = {
                        "name": d["name"],
                        "kept": row.get("origin", ""),
                        "theirs": d.get("origin", ""),
                        "their_host": d.get("host", ""),
                        "event_id": ev["id"],
                    }
                    self.collisions.append(found)
                    self._collisions_unsaved.append(found)
                    log.warning(
                        "agent name @%s is registered on two clones (%s here, %s on %s)",
                        d["name"],
                        row.get("origin"),
                        d.get("origin"),
                        d.get("host") or "?",
                    )
                    continue
                row.update(
                    {
                        "name": d["name"],
                        "role": d["role"],
                        "module": d.get("module", ""),
                        "display": d.get("display", ""),
                        "runtime": d.get("runtime", ""),
                        "kind": d.get("kind", "agent"),
                        "worktree": d.get("worktree", ""),
                        "registered_at": d.get("registered_at", ev["ts"]),
                        "origin": d.get("origin", ""),
                        "host": d.get("host", ""),
                    }
                )
                row.setdefault("status", "")
                row.setdefault("status_at", None)
                row.setdefault("intent", d.get("intent", ""))
                row.setdefault("task", "")
                self.agents[d["name"]] = row
            elif t == "agent.update" and d["name"] in self.agents:
                self.agents[d["name"]].update(d.get("fields", {}))
            elif t == "agent.delete":
                self.agents.pop(d["name"], None)
                self.active_sessions.pop(d["name"], None)
            elif t == "session.start":
                self.active_sessions[d["agent"]] = {
                    "id": d["session_id"],
                    "agent": d["agent"],
                    "started_at": ev["ts"],
                    "ended_at": None,
                    "end_reason": None,
                    "intent": d.get("intent", ""),
                    "task": "",
                }
            elif t == "session.update":
                for s in self.active_sessions.values():
                    if s["id"] == d["session_id"]:
                        s.update(d.get("fields", {}))
            elif t == "session.end":
                for name, s in list(self.active_sessions.items()):
                    if s["id"] == d["session_id"]:
                        del self.active_sessions[name]
        self.bus.publish(events)

    # -- presence (local-only, flushed in the background) --
    def touch(self, name: str) -> None:
        self.last_seen[name] = time.time()
        self._presence_dirty.add(name)

    async def flush_presence(self) -> None:
        if self._collisions_unsaved and self.store.is_open:
            found, self._collisions_unsaved = self._collisions_unsaved, []
            await queries.save_collisions(self.store, found)
        if not self._presence_dirty or not self.store.is_open:
            return
        rows = [(n, iso(self.last_seen[n])) for n in self._presence_dirty if n in self.last_seen]
        self._presence_dirty.clear()
        await queries.save_presence(self.store, rows)

    async def _presence_loop(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_FLUSH_SECONDS)
            try:
                await self.flush_presence()
            except Exception:
                log.exception("presence flush failed")

    def as_operator(self, caller: Caller) -> Caller:
        """A caller with no identity in the main checkout is the operator the console registered
        (walk, missing 13: `thrum inbox` in the main checkout needed THRUM_NAME); anywhere else
        nothing is guessed. With several people's identities (a console once started without
        HOME registers "operator_x" beside the real one), the one seen last: the console calls as
        its operator all the time, and only this user reaches this socket."""
        if caller.read_only or caller.worktree is None:
            return caller
        here = os.path.realpath(self.layout.repo)
        if os.path.realpath(caller.worktree) != here:
            return caller
        users = [
            n
            for n, row in self.agents.items()
            # A person registered in this main checkout: one registered in a worktree (or another
            # clone's) would be refused as a forged caller here (review of session 21).
            if row.get("kind") == "user" and (not row.get("worktree") or _real(row["worktree"]) == here)
        ]
        if not users:
            return caller
        latest = max(users, key=lambda n: (self.last_seen.get(n, 0.0), self.agents[n]["registered_at"]))
        return dataclasses.replace(caller, name=latest)

    # -- the one entry point --
    async def call(self, name: str, params: dict | None, caller: Caller) -> dict:
        m = METHODS.get(name)
        if m is None:
            raise UnknownMethod(f"unknown method: {name}")
        self.live_settings.refresh(self)  # a look at config.json shared by requests 2 ms apart
        raw = dict(params or {})
        if (m.identity or m.writes) and caller.name is None:
            # What the operator changes from the main checkout is theirs, not `system`'s (walk:
            # a merge from the CLI was credited to @system, the same from the console to the user).
            caller = self.as_operator(caller)
        if caller.name is not None:
            raw["caller"] = caller.name
        try:
            p = m.params.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first.get("loc", ())) or "params"
            raise InvalidInput(f"invalid {where} for {name}: {first.get('msg')}") from None
        if caller.name is not None and caller.name in self.agents:
            # Any claimed identity is checked, not only where the method needs one: it authors events.
            self.check_worktree(caller, caller.name)
        if m.writes and caller.read_only:
            raise Forbidden(f"{name} changes state; run it from inside one of this repo's worktrees")
        if m.identity:
            if caller.read_only:
                raise Forbidden(f"{name} needs a verified identity; run it from inside your worktree")
            if not caller.name:
                raise Forbidden(
                    "no identity: run `thrum quickstart --name NAME --role ROLE` or set THRUM_NAME"
                )
            if caller.name not in self.agents:
                raise UnknownAgent(f"agent @{caller.name} is not registered: run `thrum quickstart` first")
            self.touch(caller.name)
        if caller.name in self._markers:
            await self.markers_written(caller.name)
        if not m.timeout:
            return await m.handler(self, caller, p)
        # A watchdog (one timer for all calls) cancels calls past their deadline: cheaper than a
        # timeout context per call on the hot path.
        task = asyncio.current_task()
        assert task is not None  # always inside a task: the caller awaits us
        self._inflight[task] = time.monotonic() + self.settings.engine.request_timeout_seconds
        try:
            return await m.handler(self, caller, p)
        except asyncio.CancelledError:
            if task in self._timed_out:
                self._timed_out.discard(task)
                task.uncancel()
                raise EngineTimeout(
                    f"{name} took longer than {self.settings.engine.request_timeout_seconds:g}s"
                ) from None
            raise
        finally:
            self._inflight.pop(task, None)

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_SECONDS)
            now = time.monotonic()
            for task, deadline in list(self._inflight.items()):
                if now > deadline and task not in self._timed_out:
                    self._timed_out.add(task)
                    task.cancel()

    def check_worktree(self, caller: Caller, name: str) -> None:
        """Refuse a caller that claims an identity registered to another worktree (a forged caller)."""
        if caller.worktree is None:
            return
        registered = self.agents.get(name, {}).get("worktree")
        if registered and registered != caller.worktree and _real(registered) != caller.worktree:
            raise Forbidden(
                f"caller claims @{name}, whose worktree is {registered}, but runs in {caller.worktree}"
                f" (a copy of that checkout? `thrum quickstart --name {name} --force` here moves @{name}"
                " here; `--name OTHER` registers another agent)"
            )

    def info(self) -> dict:
        return {
            "running": True,
            "pid": os.getpid(),
            "repo_path": self.layout.repo,
            "uptime": round(time.time() - self.started_at, 3),
            "version": __version__,
            "host": self.host,
            "sync": self.sync.summary() if self.sync is not None else "off",
            "sync_status": self.sync.status() if self.sync is not None else None,
            "projection_recovered": self.projection_recovered,
            "settings": self.live_settings.view(),
        }

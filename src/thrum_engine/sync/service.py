"""The sync cycle: commit this clone's journal growth in batches, fetch, merge, re-project what other
clones wrote, push (retrying a rejected push by merging again, bounded).

When a cycle runs: after a burst of local writes settles, on a timer (remote mode only), and on
`sync.force` (requests made while a cycle runs are served by one more cycle). An idle engine makes no
commits and no pushes; local-only mode never fetches or pushes. Git runs off the event loop, and a
failing remote only backs the timer off: local messaging never waits on sync.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from thrum_engine.durations import human_age, iso
from thrum_engine.engine.tasks import cancel_and_wait
from thrum_engine.layout import SYNC_BRANCH
from thrum_engine.sync import gitsync

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

log = logging.getLogger("thrum.sync")
HISTORY = 20
VERIFIED_MAX = 10_000
MAX_BACKOFF_SECONDS = 600.0


@dataclass
class Cycle:
    started_at: str
    reason: str
    seconds: float = 0.0
    committed_shards: int = 0
    fetched: bool = False
    applied_events: int = 0
    pushed: bool = False
    push_retries: int = 0
    result: str = "running"  # ok | error | running
    error: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Mode:
    name: str  # local-only | remote | refused
    why: str
    remote: str | None = None
    url: str | None = None
    can_push: bool = False


class SyncService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.settings = engine.settings.sync
        self.layout = engine.layout
        self.worktree = engine.layout.sync_worktree
        self.mode = Mode("local-only", "not started")
        self.history: collections.deque[Cycle] = collections.deque(maxlen=HISTORY)
        self.last_ok_at: str | None = None
        self._last_ok_mono: float | None = None
        self.last_error: str | None = None
        self.failures = 0
        self.unpushed: int | None = None  # local commits the remote has not got (remote modes)
        self.next_at: float | None = None
        self._public: dict[str, bool] = {}
        self._last_tip: str | None = None  # the remote's tip at the last fetch
        self._verified: set[tuple[str, str]] = set()  # (shard, blob) known to be older versions of ours
        self._dirty_since: float | None = None
        self._last_write: float = 0.0
        self._forced: list[asyncio.Future] = []
        self._wake = asyncio.Event()
        self._ingesting = False
        self._running: Cycle | None = None
        self._task: asyncio.Task | None = None
        self._unlisten = None

    # -- lifecycle --
    async def start(self) -> None:
        self.mode = await asyncio.to_thread(self._decide_mode)
        if self.mode.name == "off":
            log.warning("sync off: %s", self.mode.why)
            return
        await asyncio.to_thread(self._clear_stale_locks)
        self._unlisten = self.engine.bus.listen(self._on_events)
        if self.mode.name in ("remote", "refused"):
            self.next_at = time.monotonic()  # what other clones wrote while we were down
        self._task = asyncio.create_task(self._loop(), name="thrum-sync")

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        await cancel_and_wait(self._task, log=log)
        self._task = None
        for fut in self._forced:
            if not fut.done():
                fut.set_exception(RuntimeError("the engine stopped before the sync ran"))
        self._forced.clear()

    def _clear_stale_locks(self) -> None:
        """A kill -9 mid-cycle can leave git's lock files on the journal's worktree; this engine holds
        the repo's lock, so no other process is using them."""
        try:
            gitdir = gitsync.out(self.worktree, "rev-parse", "--absolute-git-dir")
            common = gitsync.out(self.worktree, "rev-parse", "--git-common-dir")
        except (gitsync.GitFailed, OSError):
            return
        common = os.path.join(self.worktree, common) if not os.path.isabs(common) else common
        try:
            if changed := gitsync.tighten_objects(self.worktree, common):
                log.warning("made %d journal objects under %s private (0400)", changed, common)
            if gitsync.private_objects(self.worktree, common):
                log.warning("made %s/objects private (0700): it holds the journal's messages", common)
        except (gitsync.GitFailed, OSError) as exc:
            log.warning("could not make the journal's git objects private: %s", exc)
        for path in (
            os.path.join(gitdir, "index.lock"),
            os.path.join(common, "refs", "heads", SYNC_BRANCH + ".lock"),
            os.path.join(common, "refs", "thrum", "remote", self.settings.branch + ".lock"),
        ):
            try:
                os.unlink(path)
                log.warning("removed %s, left by an interrupted sync", path)
            except FileNotFoundError:
                pass

    async def notice_new_remote(self) -> None:
        """A remote added since the mode was decided (`git remote add` while the engine runs): decided
        again, so `sync status` says what the next cycle does (it said local-only while `sync force`
        pushed, walk B 13). Only a missing remote is looked at again: one `git config` read."""
        if self.mode.name != "local-only" or self.engine.settings.local or self.settings.local_only:
            return
        if await asyncio.to_thread(gitsync.remote_url, self.layout.repo, self.settings.remote) is not None:
            self.mode = await asyncio.to_thread(self._decide_mode)

    def _decide_mode(self) -> Mode:
        s = self.settings
        if not gitsync.is_sync_worktree(self.worktree, self.layout.git_dir):
            return Mode(
                "off",
                f"the journal worktree {self.worktree} is missing or not this repository's: run `thrum init`",
            )
        if self.engine.settings.local or s.local_only:
            return Mode("local-only", "configured (--local, THRUM_LOCAL=1 or sync.local_only)")
        url = gitsync.remote_url(self.layout.repo, s.remote)
        if url is None:
            return Mode("local-only", f"no remote named {s.remote!r}")
        public = self._public.get(url)
        if public is None:
            try:
                public = self._public[url] = gitsync.is_public(self.layout.repo, url)
            except gitsync.GitFailed:
                public = False
        if public and not s.allow_public_remote:
            return Mode(
                "refused",
                f"{s.remote} ({url}) can be read without credentials: message history is not pushed"
                " there (set sync.allow_public_remote to true to allow it)",
                s.remote,
                url,
            )
        return Mode("remote", f"syncing with {s.remote}", s.remote, url, True)

    # -- triggers --
    def _on_events(self, events: list[dict]) -> None:
        if self._ingesting or not events:
            return
        now = time.monotonic()
        self._last_write = now
        # Only the first write wakes the loop to arm its timer; later ones just move the settle
        # time, which the loop finds when the old one comes (waking it on every batch was ~5% of
        # a send's engine CPU under load).
        if self._dirty_since is None:
            self._dirty_since = now
            self._wake.set()

    async def force(self, wait: bool) -> dict:
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._forced.append(fut)
        self._wake.set()
        if not wait:
            return {"queued": True, "status": self.status()}
        cycle = await fut
        return {"queued": False, "cycle": cycle, "status": self.status()}

    def _due_in(self, now: float) -> float | None:
        """Seconds until the next cycle is due (None: nothing scheduled); <= 0: now."""
        due = []
        if self._forced:
            return 0.0
        if self._dirty_since is not None:
            settle = self._last_write + self.settings.settle_seconds
            cap = self._dirty_since + self.settings.max_delay_seconds
            due.append(min(settle, cap) - now)
        if self.next_at is not None:
            due.append(self.next_at - now)
        return min(due) if due else None

    async def _loop(self) -> None:
        while True:
            due = self._due_in(time.monotonic())
            if due is None or due > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=due)
                except TimeoutError:
                    pass
                continue
            forced, self._forced = self._forced, []
            reason = "forced" if forced else ("writes" if self._dirty_since is not None else "timer")
            self._dirty_since = None
            cycle = await self._cycle(reason)
            view = asdict(cycle)
            for fut in forced:
                if not fut.done():
                    fut.set_result(view)

    # -- the cycle --
    async def _cycle(self, reason: str) -> Cycle:
        cycle = Cycle(iso(), reason)
        self._running = cycle
        t0 = time.monotonic()
        try:
            self.mode = await asyncio.to_thread(self._decide_mode)
            if self.mode.name == "off":
                raise gitsync.GitFailed(self.mode.why)
            cycle.committed_shards = await self._commit_local()
            if self.mode.name in ("remote", "refused"):
                await self._exchange(cycle)
            cycle.result = "ok"
            self.last_ok_at = iso()
            self._last_ok_mono = time.monotonic()
            self.last_error = None
            self.failures = 0
        # The loop outlives any one cycle; git's and the disk's failures are the expected ones.
        except Exception as exc:
            cycle.result = "error"
            cycle.error = self.last_error = str(exc) or type(exc).__name__
            self.failures += 1
            if isinstance(exc, gitsync.GitFailed | OSError):
                log.warning("sync cycle failed (%d in a row): %s", self.failures, cycle.error)
            else:
                log.exception("sync cycle failed (%d in a row)", self.failures)
            await self._count_unpushed()
        finally:
            cycle.seconds = round(time.monotonic() - t0, 3)
            self._running = None
            self.history.append(cycle)
        self._schedule()
        return cycle

    async def _commit_local(self) -> int:
        journal = self.engine.journal
        clone = journal.clone or ""
        acked = await self.engine.store.offsets()
        return await asyncio.to_thread(
            gitsync.commit_local,
            self.worktree,
            clone,
            f"thrum: journal of {clone}",
            tuple(journal.former),
            acked,
        )

    async def _merge(self, cycle: Cycle, tip: str) -> None:
        """Merge the fetched tip: move to a new clone id first when another clone writes under ours,
        re-home the lines only this clone holds of shards rewritten elsewhere, then write, commit and
        apply what the tip brought."""
        remote = self.settings.remote
        journal = self.engine.journal
        if await asyncio.to_thread(gitsync.head, self.worktree) == tip:
            return  # nothing to merge (an idle clone's cycle)
        if len(self._verified) > VERIFIED_MAX:
            self._verified.clear()
        plan = await asyncio.to_thread(
            gitsync.plan_merge, self.worktree, journal.clone or "", tip, self._verified
        )
        if plan.contested:
            old, new = await self.engine.move_clone()
            cycle.notes.append(
                f"{remote} holds lines in this clone's shards ({', '.join(map(gitsync.shard_of, plan.contested))})"
                f" that this clone does not have: a copy of it, or an older backup of it restored here, wrote"
                f" as clone {old}. This clone writes as clone {new} from now on, and nothing either wrote is lost"
            )
            plan = await asyncio.to_thread(gitsync.plan_merge, self.worktree, new, tip, self._verified)
            if plan.contested:
                raise gitsync.GitFailed(f"{remote} still holds lines in this clone's new shards")
        for rel, _sha, _data in plan.replace:
            cycle.notes.append(f"{rel} differs on {remote} from the version here: merged by event id")
        if plan.rescue:
            moved = await self.engine.rehome(plan.rescue)
            cycle.notes.append(
                f"{moved} line(s) of rewritten shards that only this clone held were appended to its own"
                " shards, so every clone gets them"
            )
            cycle.committed_shards += await self._commit_local()
        replaced = frozenset(plan.shards(plan.replace))
        if replaced:
            # Read from their start by every later path, even if this engine stops before the
            # re-read below: their old offsets mean nothing in the new version.
            await self.engine.forget_offsets(replaced)
        await asyncio.to_thread(gitsync.apply_merge, self.worktree, plan, f"thrum: merge {remote}")
        if plan.grow or plan.replace:
            shards = plan.shards(plan.grow) + plan.shards(plan.replace)
            cycle.applied_events += await self._ingest(shards)

    async def _exchange(self, cycle: Cycle) -> None:
        remote, branch = self.settings.remote, self.settings.branch
        for attempt in range(self.settings.push_retries + 1):
            previous = self._last_tip
            tip = await asyncio.to_thread(gitsync.fetch, self.worktree, remote, branch)
            cycle.fetched = True
            rewritten = (
                tip is not None
                and previous is not None
                and tip != previous
                and not await asyncio.to_thread(gitsync.is_ancestor, self.worktree, previous, tip)
            )
            if rewritten:
                note = (
                    f"{remote}'s {branch} was rewritten (force-pushed): nothing local is lost,"
                    " this clone's events go back with the next push"
                )
                cycle.notes.append(note)
                log.warning(note)
            self._last_tip = tip
            if tip is not None:
                await self._merge(cycle, tip)
            self.unpushed = await asyncio.to_thread(gitsync.unpushed, self.worktree, branch)
            if not self.mode.can_push:
                if self.mode.name == "refused":
                    cycle.notes.append(self.mode.why)
                return
            if self.unpushed == 0:
                return
            if await asyncio.to_thread(gitsync.push, self.worktree, remote, branch) == "ok":
                cycle.pushed = True
                self.unpushed = 0
                return
            cycle.push_retries = attempt + 1
        raise gitsync.GitFailed(f"git push: still rejected after {self.settings.push_retries} retries")

    async def _count_unpushed(self) -> None:
        """After a failed cycle (the remote away): what waits to be pushed, counted against the last
        tip fetched, so `sync status` does not keep the last good cycle's 0 (sync walk 4)."""
        if self.mode.name not in ("remote", "refused"):
            return
        try:
            self.unpushed = await asyncio.to_thread(gitsync.unpushed, self.worktree, self.settings.branch)
        except (gitsync.GitFailed, OSError):
            pass

    async def _ingest(self, shards: list[str]) -> int:
        self._ingesting = True
        try:
            return await self.engine.ingest(shards)
        finally:
            self._ingesting = False

    def _schedule(self) -> None:
        if self.mode.name not in ("remote", "refused"):
            self.next_at = None
            return
        delay = self.settings.interval_seconds
        if self.failures:
            delay = min(delay * (2 ** min(self.failures, 10)), MAX_BACKOFF_SECONDS)
        self.next_at = time.monotonic() + delay

    # -- visibility --
    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        due = self._due_in(now)
        return {
            "mode": self.mode.name,
            "why": self.mode.why,
            "remote": self.mode.remote,
            "url": self.mode.url,
            "branch": self.settings.branch,
            "last_sync_at": self.last_ok_at,
            "last_error": self.last_error,
            "failures": self.failures,
            "running": self._running is not None,
            "pending_writes": self._dirty_since is not None,
            "unpushed_commits": self.unpushed,
            "next_cycle_in_seconds": None if due is None else round(max(due, 0.0), 1),
            "label": self.label(),
            "collisions": list(self.engine.collisions),
            "clone": {"id": self.engine.journal.clone, "former": list(self.engine.journal.former)},
            "recent": [asdict(c) for c in reversed(self.history)],
        }

    def label(self) -> str:
        """The console header's words: "synced 12s ago", "pending", "error: ...", "local-only"."""
        word = self.summary()
        if word == "synced" and self._last_ok_mono is not None:
            return f"synced {human_age(time.monotonic() - self._last_ok_mono)} ago"
        if word == "error" and self.last_error:
            return f"error ({self.failures}x)"
        return word

    def summary(self) -> str:
        """One word or two for the console header and `daemon status`."""
        if self.mode.name in ("local-only", "off"):
            return self.mode.name
        if self.last_error:
            return "error"
        if self.mode.name == "refused":
            return "refused (public remote)"
        if self._dirty_since is not None:
            return "pending"
        return "synced" if self.last_ok_at else "starting"

"""`hooks.fire`: what a runtime's hook asks the engine (via `thrum hook EVENT`), and the record of
which hooks fired for whom and when, so `thrum doctor` and `team` can say "hooks last fired 2 min
ago" and flag a runtime whose hooks never fire.

Per event: session-start gets the briefing; prompt-submit gets mail no path has surfaced to the agent
yet; stop is blocked (the runtime is told to read the mail) for such mail, never in a loop (Claude
overrides a Stop hook after 8 consecutive blocks; we stop at MAX_CONSECUTIVE_BLOCKS); pre-compact
saves a note of the work in progress into the agent's saved context, which the briefing after the
compaction shows.

The record of firings is local state (var/hooks.json), not journal events: a hook fires on every
prompt and that is not team history. What a hook has shown is not kept here: a hook records each
message it shows in the delivery ledger (`message.notified` via hook, delivery_paths), and "not
surfaced yet" is read back from the ledger (no notified, seen, read or replied step), whichever path
surfaced it -- a channel push, a `wait`, a hook, a nudge -- and across engine restarts.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from dataclasses import dataclass, field

from pydantic import Field

from thrum_engine import briefing_text
from thrum_engine.durations import iso
from thrum_engine.engine.core import Caller, Engine
from thrum_engine.engine.per_engine import PerEngine
from thrum_engine.engine.registry import method
from thrum_engine.errors import InvalidInput
from thrum_engine.files import write_private
from thrum_engine.model import EmptyParams, Params

EVENTS = ("session-start", "prompt-submit", "stop", "pre-compact")
MAX_CONSECUTIVE_BLOCKS = 6
SHOWN_LIMIT = 10  # messages put into one prompt's context
SAVE_EVERY_SECONDS = 2.0
# Runtimes whose prompt hook cannot add context (cli/hook.py `shape`: Cursor's beforeSubmitPrompt only
# answers `continue`): their prompt-submit shows nothing, so it marks nothing shown; the stop shows the mail.
NO_PROMPT_CONTEXT = frozenset({"cursor"})
# Runtimes with no session start after a compaction (Gemini fires SessionStart for startup, resume and
# clear only, and PreCompress cannot answer; no Cursor source has sessionStart after one): the first
# hook that can speak after their pre-compact gives the briefing (runtimes walk, session 22). Claude
# and Codex brief through SessionStart(compact); OpenCode's plugin briefs itself.
REBRIEF_AFTER_COMPACT = frozenset({"gemini", "cursor"})
# A session start of the same session and source twice within this long is one start whose hook ran
# twice: a runtime that loads the user's hooks and the project's (Codex and Cursor merge both layers)
# briefed twice. (A prompt's hook run twice shows its mail once anyway: the second finds it shown.)
DUPLICATE_SECONDS = 2.0
_SECTION = re.compile(r"<!-- thrum:pre-compact -->\n.*?<!-- /thrum:pre-compact -->\n?", re.DOTALL)


class HookFireParams(Params):
    event: str
    runtime: str = ""
    source: str = ""  # SessionStart's startup|resume|clear|compact
    trigger: str = ""  # PreCompact's auto|manual
    stop_hook_active: bool = False
    session: str = Field("", max_length=200)  # the runtime's session id, where its stdin has one


@dataclass
class AgentHooks:
    fired: dict[str, dict] = field(default_factory=dict)  # event -> {at, runtime, count}
    # One hook of an agent at a time from reading the ledger to storing what it showed: two fired at
    # the same moment (two sessions, a prompt and a stop racing) would both show the same mail.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    consecutive_blocks: int = 0
    briefed_at: float = 0.0  # the last briefing a hook gave (session start, or after a compaction)


@dataclass
class HookState:
    agents: dict[str, AgentHooks] = field(default_factory=dict)
    loaded: bool = False
    saved_at: float = 0.0
    save_task: asyncio.Task | None = None


_STATE: PerEngine[HookState] = PerEngine(lambda _engine: HookState())


def _path(engine: Engine) -> str:
    return os.path.join(engine.layout.var, "hooks.json")


def state(engine: Engine) -> HookState:
    st = _STATE(engine)
    if not st.loaded:
        st.loaded = True
        try:
            with open(_path(engine), encoding="utf-8") as fh:
                data = json.load(fh)
            for name, fired in (data.get("agents") or {}).items():
                if isinstance(fired, dict):
                    events = {k: v for k, v in fired.items() if isinstance(v, dict)}
                    # What fired before this engine started was answered then: no late re-briefing.
                    last = max((float(v.get("at", 0)) for v in events.values()), default=0.0)
                    st.agents[name] = AgentHooks(fired=events, briefed_at=last)
        except (OSError, ValueError, AttributeError):
            pass  # no record yet (or a damaged one: it is only a record)
    return st


def view(engine: Engine, name: str) -> dict | None:
    """What `team` shows per agent: when its hooks last fired, per event (None: never)."""
    ag = state(engine).agents.get(name)
    if ag is None or not ag.fired:
        return None
    last = max(v.get("at", 0) for v in ag.fired.values())
    return {
        "last_fired": iso(last),
        "last_fired_ago_seconds": round(time.time() - last, 1),
        "runtime": max(ag.fired.values(), key=lambda v: v.get("at", 0)).get("runtime"),
        "events": {k: {**v, "at": iso(v["at"])} for k, v in sorted(ag.fired.items())},
    }


def _schedule_save(engine: Engine, st: HookState) -> None:
    if st.save_task is not None and not st.save_task.done():
        return

    async def save() -> None:
        await asyncio.sleep(max(0.0, st.saved_at + SAVE_EVERY_SECONDS - time.time()))
        st.saved_at = time.time()
        doc = {"agents": {n: a.fired for n, a in st.agents.items() if a.fired}}
        await asyncio.to_thread(
            write_private, _path(engine), json.dumps(doc, indent=2, sort_keys=True) + "\n"
        )

    st.save_task = asyncio.get_running_loop().create_task(save(), name="thrum-hooks-save")


async def _unread(engine: Engine, me: str, limit: int) -> tuple[list[dict], int]:
    from thrum_engine.briefing import recent_unread
    from thrum_engine.team import unread_counts

    rows = await recent_unread(engine, me, limit)
    total = (await unread_counts(engine)).get(me, 0) if rows else 0
    return rows, total


async def _unseen(engine: Engine, me: str, limit: int) -> tuple[list[dict], int]:
    """`me`'s newest unread messages that no path has surfaced yet (the delivery ledger, less what a
    channel or a `wait` is surfacing right now), newest first, and the unread total. The usual answer
    (nothing new) costs one index query; bodies and the total are read only for new mail."""
    from thrum_engine import delivery_paths
    from thrum_engine.store import hook_reads

    floor = engine.agents[me]["registered_at"]
    ids = await hook_reads.newest_unsurfaced_ids(engine.store, me, floor, limit)
    if ids:
        busy = delivery_paths.attach(engine).surfacing(me)
        ids = [i for i in ids if i not in busy]
    if not ids:
        return [], 0
    rows = await hook_reads.messages_by_id(engine.store, ids)
    total = await hook_reads.unread_total(engine.store, me)
    new = [
        {"message_id": i, "from": r["author"], "content": r["content"], "created_at": r["created_at"]}
        for i in ids
        if (r := rows.get(i)) is not None
    ]
    return new, total


async def _save_before_compact(engine: Engine, me: str, trigger: str) -> str:
    from thrum_engine.identity import session_view
    from thrum_engine.team import my_context

    wc = await my_context(engine, me)
    rows, total = await _unread(engine, me, SHOWN_LIMIT)
    session = session_view(engine.active_sessions.get(me)) or {}
    lines = [
        "<!-- thrum:pre-compact -->",
        f"## Before the last compaction (saved by thrum at {iso(time.time())}, {trigger or 'auto'})",
        f"- intent: {session.get('intent') or '(none set)'}",
    ]
    if wc:
        lines.append(f"- work: {briefing_text.work_line(wc)}")
        lines += [f"  - uncommitted: {f}" for f in wc["uncommitted"][:20]]
    if total:
        lines.append(
            f"- unread: {total} (" + ", ".join(f"{r['message_id']} from @{r['from']}" for r in rows) + ")"
        )
    lines.append("<!-- /thrum:pre-compact -->")
    section = "\n".join(lines) + "\n"
    path = os.path.join(engine.layout.context_dir, f"{me}.md")

    def write() -> None:
        try:
            with open(path, encoding="utf-8") as fh:
                old = fh.read()
        except OSError:
            old = ""
        if _SECTION.search(old):
            new = _SECTION.sub(lambda _m: section, old, count=1)
        else:
            new = old + ("\n" if old and not old.endswith("\n") else "") + section
        write_private(path, new)

    await asyncio.to_thread(write)
    return path


async def _with_open_asks(engine: Engine, me: str, context: str | None) -> str | None:
    """The asks waiting for `me`'s answer, added to the prompt's context (issue 16)."""
    from thrum_engine.asks.methods import open_asks

    asks = await open_asks(engine, recipient=me)
    if not asks:
        return context
    extra = briefing_text.asks_context(asks)
    return extra if context is None else context + "\n\n" + extra


def _compacted_since_briefing(ag: AgentHooks) -> bool:
    compacted = ag.fired.get("pre-compact")
    return bool(compacted) and float(compacted.get("at", 0)) > ag.briefed_at


async def _briefing(engine: Engine, me: str) -> tuple[list[str], str, bool]:
    """The whole picture again (a new or compacted session lost it), the unread mail it shows, and
    whether it shows the note saved before a compaction: that note is removed once the briefing
    went out (`_briefing_delivered`), since it described that moment and every later briefing
    repeated it (its unread mail long read)."""
    from thrum_engine.briefing import prime_data
    from thrum_engine.store import hook_reads

    data = await prime_data(engine, me)
    briefed = [m["message_id"] for m in data["recent_unread"]]
    shown = await hook_reads.unsurfaced_among(engine.store, me, briefed)
    with_note = bool(data.get("context") and _SECTION.search(data["context"]))
    return shown, briefing_text.render(data), with_note


async def _briefing_delivered(engine: Engine, me: str, ag: AgentHooks, with_note: bool) -> None:
    """The briefing reached the runtime: no re-briefing owed, and its pre-compact note is spent.
    Not before the answer is known to go out: a hook that gave up showed nothing (a review of
    session 22: the note was gone and no re-briefing came)."""
    ag.briefed_at = time.time()
    if with_note:
        await asyncio.to_thread(_drop_compact_note, os.path.join(engine.layout.context_dir, f"{me}.md"))


def _drop_compact_note(path: str) -> None:
    try:
        with open(path, encoding="utf-8") as fh:
            old = fh.read()
    except OSError:
        return
    new = _SECTION.sub("", old, count=1)
    if new != old:
        write_private(path, new)


@method("hooks.fire", HookFireParams)
async def fire(engine: Engine, caller: Caller, p: HookFireParams) -> dict:
    if p.event not in EVENTS:
        raise InvalidInput(f"unknown hook event {p.event!r}: one of {', '.join(EVENTS)}")
    me = caller.name
    if not me or me not in engine.agents:
        return {"recorded": False, "context": None, "block": None}  # nobody to brief: say nothing
    st = state(engine)
    ag = st.agents.setdefault(me, AgentHooks())
    rec = ag.fired.get(p.event) or {"count": 0}
    now = time.time()
    twice = (
        p.event == "session-start"
        and bool(p.session)
        and rec.get("session") == p.session
        and rec.get("source", "") == p.source
        and not rec.get("unanswered")  # the first gave up: this one is the briefing
        and now - float(rec.get("at", 0)) < DUPLICATE_SECONDS
    )
    ag.fired[p.event] = {"at": now, "runtime": p.runtime, "count": int(rec.get("count", 0)) + 1}
    if p.session:
        ag.fired[p.event] |= {"session": p.session, "source": p.source}
    if twice:  # said already, a moment ago, to this very session
        return {"recorded": True, "context": None, "block": None, "duplicate": True}
    engine.touch(me)  # a hook firing is the agent at work
    _schedule_save(engine, st)
    out: dict = {"recorded": True, "context": None, "block": None}
    async with ag.lock:
        return await _answer(engine, me, ag, p, out, caller)


async def _answer(
    engine: Engine, me: str, ag: AgentHooks, p: HookFireParams, out: dict, caller: Caller
) -> dict:
    """What the hook shows; the ledger records it before the answer goes (the caller holds the lock).
    A hook that gave up waiting (its runtime's budget is seconds) shows nothing: nothing is recorded
    for a caller that has hung up, and the next hook shows it."""
    shown: list[str] = []
    rebrief = p.runtime in REBRIEF_AFTER_COMPACT and _compacted_since_briefing(ag)
    briefing = p.event == "session-start" or (
        rebrief and p.event == "prompt-submit" and p.runtime not in NO_PROMPT_CONTEXT
    )
    with_note = False
    if briefing:
        shown, out["context"], with_note = await _briefing(engine, me)
        ag.consecutive_blocks = 0
        if p.event == "prompt-submit":
            out["context"] = await _with_open_asks(engine, me, out["context"])
    elif rebrief and p.event == "stop" and p.runtime in NO_PROMPT_CONTEXT:  # Cursor: only its stop speaks
        shown, out["block"], with_note = await _briefing(engine, me)
        briefing = True
        ag.consecutive_blocks += 1
    elif p.event == "prompt-submit" and p.runtime in NO_PROMPT_CONTEXT:
        ag.consecutive_blocks = 0
    elif p.event == "prompt-submit":
        new, total = await _unseen(engine, me, SHOWN_LIMIT)
        ag.consecutive_blocks = 0  # a human (or a prompt) took the turn
        if new:
            shown = [r["message_id"] for r in new]
            out["context"] = briefing_text.unread_summary(list(reversed(new)), total)
        out["context"] = await _with_open_asks(engine, me, out["context"])
    elif p.event == "stop":
        new, total = await _unseen(engine, me, SHOWN_LIMIT)
        if new and (not p.stop_hook_active or ag.consecutive_blocks < MAX_CONSECUTIVE_BLOCKS):
            shown = [r["message_id"] for r in new]
            ag.consecutive_blocks += 1
            out["block"] = briefing_text.unread_summary(list(reversed(new)), total)
        else:
            ag.consecutive_blocks = 0
    elif p.event == "pre-compact":
        out["saved"] = await _save_before_compact(engine, me, p.trigger)
    if caller.hung_up:
        ag.fired[p.event]["unanswered"] = True  # its answer reached nobody: no launch's briefing
        if out["block"]:
            ag.consecutive_blocks -= 1  # a block nobody saw is not one of the runtime's blocks
        return {"recorded": True, "context": None, "block": None}
    if briefing:
        await _briefing_delivered(engine, me, ag, with_note)
    if shown:  # into the ledger before the answer: the next hook (or a restarted engine) reads it back
        from thrum_engine import delivery_paths

        await delivery_paths.attach(engine).shown_by_hook(me, sorted(shown))
    return out


@method("hooks.status", EmptyParams)
async def status(engine: Engine, caller: Caller, p: EmptyParams) -> dict:
    """Every agent's hook record, for `thrum doctor integrations` (agents with none included)."""
    return {"agents": {name: view(engine, name) for name in sorted(engine.agents)}}

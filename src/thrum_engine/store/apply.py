"""Turn journal events into SQL. Pure: no IO, so live writes, start-up catch-up
and `doctor rebuild` all project exactly the same way.

Every statement is idempotent (INSERT OR IGNORE, COALESCE on timestamps), so
replaying an event is harmless even without the `applied_events` check.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from thrum_engine.durations import iso, parse_iso

Op = tuple[str, tuple]

_AGENT_FIELDS = (
    "role",
    "module",
    "display",
    "runtime",
    "kind",
    "worktree",
    "status",
    "status_at",
    "intent",
    "task",
)
_SESSION_FIELDS = ("intent", "task")


# Every JSON column is stored with sorted keys, as the journal line has them: the live path's dicts
# are in the engine's insertion order, a rebuild's are parsed from the sorted line, and both must
# store the same text (a `meta` in the live order made every rebuild after a scheduled delivery
# report a difference that was none). Text, not parsed values, is what the rebuild compares: any
# column whose text depended on the path would be one more false alarm.
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def json_column(value: Any) -> str:
    """`value` as a JSON column's text, the same whichever path applies the event."""
    return _encoder.encode(value)


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@_:-./ ")


def _dumps(value: Any) -> str:
    if not value:
        return "[]"
    if type(value) is list and all(type(v) is str and _PLAIN.issuperset(v) for v in value):
        return '["' + '","'.join(value) + '"]'  # the common case (["@bob"]) without the encoder
    return json_column(value)


def _agent_register(ev: dict, d: dict) -> Iterable[Op]:
    yield (
        (
            "INSERT INTO agents(name, role, module, display, runtime, kind, worktree, registered_at, intent,"
            " origin, host) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET role=excluded.role,"
            " module=excluded.module, display=excluded.display, runtime=excluded.runtime, kind=excluded.kind,"
            " worktree=excluded.worktree, registered_at=excluded.registered_at, origin=excluded.origin,"
            " host=excluded.host WHERE agents.origin IN ('', excluded.origin) OR excluded.origin = ''"
        ),
        (
            d["name"],
            d["role"],
            d.get("module", ""),
            d.get("display", ""),
            d.get("runtime", ""),
            d.get("kind", "agent"),
            d.get("worktree", ""),
            d.get("registered_at", ev["ts"]),
            d.get("intent", ""),
            d.get("origin", ""),
            d.get("host", ""),
        ),
    )


def _update(table: str, key_col: str, allowed: tuple[str, ...], key: str, fields: dict) -> Iterable[Op]:
    """UPDATE of the allowed columns present in `fields` (unknown ones are a newer writer's)."""
    fields = {k: v for k, v in fields.items() if k in allowed}
    if fields:
        cols = sorted(fields)
        yield (
            f"UPDATE {table} SET {', '.join(c + '=?' for c in cols)} WHERE {key_col}=?",
            tuple(fields[c] for c in cols) + (key,),
        )


def _agent_update(ev: dict, d: dict) -> Iterable[Op]:
    return _update("agents", "name", _AGENT_FIELDS, d["name"], d.get("fields", {}))


def _agent_delete(ev: dict, d: dict) -> Iterable[Op]:
    yield ("DELETE FROM agents WHERE name=?", (d["name"],))
    # The engine's cache drops the agent's open session; the projection ends it, so a restart agrees.
    yield (
        "UPDATE sessions SET ended_at=?, end_reason='agent deleted' WHERE agent=? AND ended_at IS NULL",
        (ev["ts"], d["name"]),
    )


def _session_start(ev: dict, d: dict) -> Iterable[Op]:
    yield (
        "INSERT OR IGNORE INTO sessions(id, agent, started_at, intent) VALUES (?,?,?,?)",
        (d["session_id"], d["agent"], ev["ts"], d.get("intent", "")),
    )


def _session_update(ev: dict, d: dict) -> Iterable[Op]:
    return _update("sessions", "id", _SESSION_FIELDS, d["session_id"], d.get("fields", {}))


def _session_end(ev: dict, d: dict) -> Iterable[Op]:
    yield (
        "UPDATE sessions SET ended_at=?, end_reason=? WHERE id=? AND ended_at IS NULL",
        (ev["ts"], d.get("reason", "normal"), d["session_id"]),
    )


def addressed_of(d: dict) -> list[str]:
    """The addresses as the sender wrote them; left out of the event when they are just the recipients."""
    return d.get("addressed") or ["@" + r for r in d.get("recipients", ())]


_INSERT_DELIVERY = "INSERT OR IGNORE INTO deliveries(recipient, message_id, created_at, mentioned, author) VALUES (?,?,?,?,?)"


_INSERT_ASK = (
    "INSERT OR IGNORE INTO asks(message_id, recipient, sender, created_at, due_at) VALUES (?,?,?,?,?)"
)


def _message_create(ev: dict, d: dict) -> Iterable[Op]:
    mid = d["message_id"]
    created = d.get("created_at", ev["ts"])
    structured = d.get("structured")
    yield (
        (
            "INSERT OR IGNORE INTO messages(id, author, thread_id, reply_to, format, content, structured, created_at,"
            " broadcast, addressed, mentions, scopes, refs, idem_key, meta) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        ),
        (
            mid,
            ev["author"],
            d.get("thread_id"),
            d.get("reply_to"),
            d.get("format", "markdown"),
            d["content"],
            None if structured is None else _dumps(structured),
            created,
            1 if d.get("broadcast") else 0,
            _dumps(addressed_of(d)),
            _dumps(d.get("mentions", [])),
            _dumps(d.get("scopes", [])),
            _dumps(d.get("refs", [])),
            d.get("idempotency_key"),
            None if d.get("meta") is None else json_column(d["meta"]),
        ),
    )
    mentioned = set(d.get("mentioned_agents", []))
    for r in d.get("recipients", []):
        yield (_INSERT_DELIVERY, (r, mid, created, 1 if r in mentioned else 0, ev["author"]))
    if d.get("ask"):  # an ask (issue 16): open for each recipient until it answers or acks
        for r in d.get("recipients", ()):
            if r != ev["author"]:
                yield (_INSERT_ASK, (mid, r, ev["author"], created, d.get("due_at")))
    if d.get("thread_root"):
        yield (
            "UPDATE messages SET thread_id=? WHERE id=? AND thread_id IS NULL",
            (d["thread_id"], d["thread_root"]),
        )
    if d.get("reply_to"):
        yield (
            (
                "UPDATE deliveries SET replied_at=COALESCE(replied_at, ?), read_at=COALESCE(read_at, ?),"
                " seen_at=COALESCE(seen_at, ?) WHERE message_id=? AND recipient=?"
            ),
            (created, created, created, d["reply_to"], ev["author"]),
        )


# A plain message's rows (`store.lines`' fast rebuild path): only the columns that are not their
# default (reply_to, structured, meta NULL; broadcast, mentioned 0; mentions, scopes, refs '[]'), so a
# row binds 8 values instead of 15 (a third of the insert's time). The rows are the general path's.
INSERT_PLAIN_MESSAGE = (
    "INSERT OR IGNORE INTO messages(id, author, thread_id, format, content, created_at, addressed, idem_key)"
    " VALUES (?,?,?,?,?,?,?,?)"
)
INSERT_PLAIN_DELIVERY = (
    "INSERT OR IGNORE INTO deliveries(recipient, message_id, created_at, author) VALUES (?,?,?,?)"
)
_PLAIN_GROUP = "message.create/plain"


def _message_edit(ev: dict, d: dict) -> Iterable[Op]:
    yield (
        "UPDATE messages SET content=?, updated_at=? WHERE id=?",
        (d["content"], ev["ts"], d["message_id"]),
    )


def _message_delete(ev: dict, d: dict) -> Iterable[Op]:
    yield (
        "UPDATE messages SET deleted=1, content='', structured=NULL, updated_at=? WHERE id=?",
        (ev["ts"], d["message_id"]),
    )
    # Mirrored on deliveries so inbox counts never need to touch the messages table.
    yield ("UPDATE deliveries SET deleted=1 WHERE message_id=?", (d["message_id"],))


def _message_read(ev: dict, d: dict) -> Iterable[Op]:
    at = d.get("at", ev["ts"])
    for mid in d.get("message_ids", []):
        yield (
            (
                "UPDATE deliveries SET read_at=COALESCE(read_at, ?), seen_at=COALESCE(seen_at, ?)"
                " WHERE recipient=? AND message_id=?"
            ),
            (at, at, ev["author"], mid),
        )


def _message_seen(ev: dict, d: dict) -> Iterable[Op]:
    at = d.get("at", ev["ts"])
    for mid in d.get("message_ids", []):
        yield (
            "UPDATE deliveries SET seen_at=COALESCE(seen_at, ?) WHERE recipient=? AND message_id=?",
            (at, ev["author"], mid),
        )


def _message_notified(ev: dict, d: dict) -> Iterable[Op]:
    at = d.get("at", ev["ts"])
    via = d.get("via", "nudge")  # written before paths were recorded: only the nudger notified
    for mid in d.get("message_ids", []):
        yield (
            (
                "UPDATE deliveries SET notified_at=COALESCE(notified_at, ?),"
                " notified_via=CASE WHEN notified_at IS NULL THEN ? ELSE notified_via END"
                " WHERE recipient=? AND message_id=?"
            ),
            (at, via, d["recipient"], mid),
        )


def purge_cutoff(ev: dict, d: dict) -> str:
    """What a purge removes: the messages created before its `before`, and never one created after the
    purge itself. The purge's own time bounds the cutoff, so a cutoff written as "now + 1 s" or a future
    date (older Thrums accepted both) cannot reach the messages sent after it on any clone."""
    ts = ev["ts"]
    before = d.get("before")
    if not before:
        return ts
    try:
        before = iso(parse_iso(before))  # a date or seconds precision compares as the same instant
    except ValueError:
        return ts
    return min(before, ts)


def _message_purge(ev: dict, d: dict) -> Iterable[Op]:
    before = purge_cutoff(ev, d)
    yield ("DELETE FROM deliveries WHERE created_at < ?", (before,))
    yield ("DELETE FROM messages WHERE created_at < ?", (before,))
    # The purge is a tombstone: its cutoff is kept, so older messages that another clone syncs in
    # later are dropped too (see PURGE_FLOOR) and a purge never resurrects or fights across clones.
    yield (
        (
            "INSERT INTO meta(key, value) VALUES ('purged_before', ?)"
            " ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)"
        ),
        (before,),
    )


# What every purge's cutoff leaves behind: the messages created before the newest cutoff go, whatever
# order their events arrived in (a message synced in after the purge, a rebuild that reads it before).
# So the projection depends only on which events the journal holds, and a rebuild gives the live
# tables. Run by the store after a batch that adds a message older than the floor (store.db) and at
# the end of a rebuild. The deliveries go by their message (indexed), before the messages.
PURGE_FLOOR: list[tuple[str, list[tuple]]] = [
    (
        (
            "DELETE FROM deliveries WHERE message_id IN (SELECT id FROM messages WHERE created_at <"
            " (SELECT value FROM meta WHERE key = 'purged_before'))"
        ),
        [()],
    ),
    ("DELETE FROM messages WHERE created_at < (SELECT value FROM meta WHERE key = 'purged_before')", [()]),
]


def purge_floor_after(floor: str | None, events: Iterable[dict]) -> tuple[str | None, bool]:
    """The purge floor once `events` are applied, and whether they add a message below it (then
    PURGE_FLOOR must run after them)."""
    for ev in events:
        if ev.get("type") == "message.purge":
            cut = purge_cutoff(ev, ev.get("data") or {})
            floor = cut if floor is None else max(floor, cut)
    if floor is None:  # never purged: the live path's usual case, one look at each event's type
        return None, False
    below = any(
        (ev.get("data") or {}).get("created_at", ev["ts"]) < floor
        for ev in events
        if ev.get("type") == "message.create"
    )
    return floor, below


APPLIERS: dict[str, Callable[[dict, dict], Iterable[Op]]] = {
    "agent.register": _agent_register,
    "agent.update": _agent_update,
    "agent.delete": _agent_delete,
    "session.start": _session_start,
    "session.update": _session_update,
    "session.end": _session_end,
    "message.create": _message_create,
    "message.edit": _message_edit,
    "message.delete": _message_delete,
    "message.read": _message_read,
    "message.seen": _message_seen,
    "message.notified": _message_notified,
    "message.purge": _message_purge,
}


# -- reviews (issue 14) --
# A review exists from its first event (a request, or a round submitted without one). Its status is
# the last word: "requested" (waiting for the human), "changes_requested", "approved", "merged".
_OPEN_REVIEW = (
    "INSERT OR IGNORE INTO reviews(id, agent, branch, target, opened_at, status, updated_at)"
    " VALUES (?,?,?,?,?,?,?)"
)


# `review_rounds` is the review's history in order: each submitted round (verdict "approve" or
# "request_changes"), and the requests ("request", the note as summary) and the merge ("merge") the
# feed and the conversations show; `reviews` keeps only the latest of each.
_ROUND = (
    "INSERT OR IGNORE INTO review_rounds(event_id, review_id, at, reviewer, verdict, head, base,"
    " fingerprint, summary, comments, message_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)


def _review_request(ev: dict, d: dict) -> Iterable[Op]:
    rid, ts = d["review_id"], ev["ts"]
    yield (_OPEN_REVIEW, (rid, d["agent"], d.get("branch", ""), d.get("target", ""), ts, "requested", ts))
    yield (
        (
            "UPDATE reviews SET status='requested', requested_at=?, requested_by=?, note=?, updated_at=?"
            " WHERE id=? AND status != 'merged'"
        ),
        (ts, ev["author"], d.get("note", ""), ts, rid),
    )
    yield (
        _ROUND,
        (
            ev["id"],
            rid,
            ts,
            ev["author"],
            "request",
            d.get("head", ""),
            "",
            "",
            d.get("note", ""),
            "[]",
            d.get("message_id"),
        ),
    )


def _review_submit(ev: dict, d: dict) -> Iterable[Op]:
    rid, ts = d["review_id"], ev["ts"]
    status = "approved" if d["verdict"] == "approve" else "changes_requested"
    yield (_OPEN_REVIEW, (rid, d["agent"], d.get("branch", ""), d.get("target", ""), ts, status, ts))
    yield (
        (
            "UPDATE reviews SET status=?, reviewed_head=?, reviewed_fingerprint=?, reviewed_at=?, reviewer=?,"
            " message_id=?, updated_at=? WHERE id=? AND status != 'merged'"
        ),
        (status, d["head"], d.get("fingerprint", ""), ts, ev["author"], d.get("message_id"), ts, rid),
    )
    yield (
        _ROUND,
        (
            ev["id"],
            rid,
            ts,
            ev["author"],
            d["verdict"],
            d["head"],
            d.get("base", ""),
            d.get("fingerprint", ""),
            d.get("summary", ""),
            json_column(d.get("comments") or []),
            d.get("message_id"),
        ),
    )


def _review_merge(ev: dict, d: dict) -> Iterable[Op]:
    rid, ts = d["review_id"], ev["ts"]
    yield (_OPEN_REVIEW, (rid, d["agent"], d.get("branch", ""), d.get("target", ""), ts, "merged", ts))
    yield (
        "UPDATE reviews SET status='merged', merged_at=?, merged_commit=?, strategy=?, updated_at=? WHERE id=?",
        (ts, d["merged_commit"], d["strategy"], ts, rid),
    )
    yield (
        _ROUND,
        (
            ev["id"],
            rid,
            ts,
            ev["author"],
            "merge",
            d["merged_commit"],
            d.get("head", ""),
            "",
            d["strategy"],
            "[]",
            None,
        ),
    )


APPLIERS.update(
    {"review.request": _review_request, "review.submit": _review_submit, "review.merge": _review_merge}
)


# Schedules (issue 16): their appliers live with their queries (store/schedules.py).
from thrum_engine.store.schedules import APPLIERS as _SCHEDULE_APPLIERS

APPLIERS.update(_SCHEDULE_APPLIERS)
# -- asks and held messages (issue 16) --


def _ask_ack(ev: dict, d: dict) -> Iterable[Op]:
    yield (
        "UPDATE asks SET acked_at=COALESCE(acked_at, ?), note=? WHERE message_id=? AND recipient=?",
        (d.get("at", ev["ts"]), d.get("note", ""), d["message_id"], ev["author"]),
    )


def _ask_remind(ev: dict, d: dict) -> Iterable[Op]:
    yield (
        "UPDATE asks SET reminders=reminders+1, reminded_at=? WHERE message_id=? AND recipient=?",
        (d.get("at", ev["ts"]), d["message_id"], d["recipient"]),
    )


def _ask_overdue(ev: dict, d: dict) -> Iterable[Op]:
    for r in d.get("recipients", ()):
        yield (
            "UPDATE asks SET overdue_at=COALESCE(overdue_at, ?) WHERE message_id=? AND recipient=?",
            (d.get("at", ev["ts"]), d["message_id"], r),
        )


def _message_hold(ev: dict, d: dict) -> Iterable[Op]:
    held = d["event"]
    hd = held.get("data", {})
    yield (
        (
            "INSERT OR IGNORE INTO held(message_id, author, recipients, thread_id, reason, content, event,"
            " held_at) VALUES (?,?,?,?,?,?,?,?)"
        ),
        (
            d["message_id"],
            held.get("author", ev["author"]),
            _dumps(hd.get("recipients", [])),
            hd.get("thread_id"),
            d.get("reason", ""),
            hd.get("content", ""),
            json_column(held),
            ev["ts"],
        ),
    )


def _message_release(ev: dict, d: dict) -> Iterable[Op]:
    for mid in d.get("message_ids", ()):
        yield (
            "UPDATE held SET released_at=COALESCE(released_at, ?), released_by=? WHERE message_id=?",
            (ev["ts"], ev["author"], mid),
        )


APPLIERS.update(
    {
        "ask.ack": _ask_ack,
        "ask.remind": _ask_remind,
        "ask.overdue": _ask_overdue,
        "message.hold": _message_hold,
        "message.release": _message_release,
    }
)


_INSERT_APPLIED = "INSERT OR IGNORE INTO applied_events(id) VALUES (?)"


class Projection:
    """SQL for a stream of events, as runs of one statement each (one `executemany` per run).

    Consecutive events of one type are applied statement by statement (all
    message inserts, then all delivery inserts, ...) so that a batch becomes a
    handful of `executemany` calls. That reordering is safe within one type:
    later statements of a type only ever depend on earlier statements of it.
    """

    __slots__ = ("_buckets", "_group", "applied", "runs")

    def __init__(self) -> None:
        self.runs: list[tuple[str, list[tuple]]] = []
        self.applied: list[tuple] = []
        self._group: str | None = None
        self._buckets: dict[str, list[tuple]] = {}

    def _close_group(self, etype: str | None) -> None:
        runs = self.runs
        for sql, params in self._buckets.items():
            if runs and runs[-1][0] == sql:
                runs[-1][1].extend(params)
            else:
                runs.append((sql, params))
        self._buckets = {}
        self._group = etype

    def event(self, ev: dict) -> None:
        """Unknown types are skipped (a newer writer's events) but still recorded as applied."""
        etype = ev.get("type", "")
        if etype != self._group:
            self._close_group(etype)
        fn = APPLIERS.get(etype)
        if fn is not None:
            buckets = self._buckets
            for sql, params in fn(ev, ev.get("data") or {}):
                buckets.setdefault(sql, []).append(params)
        self.applied.append((ev["id"],))

    def message_rows(self, event_id: str, message: tuple, deliveries: list[tuple]) -> None:
        """A `message.create` of the common shape, already turned into its rows (see `store.lines`):
        `message` and `deliveries` in the columns of `INSERT_PLAIN_MESSAGE` / `INSERT_PLAIN_DELIVERY`.

        A group of its own: its statements differ from the general path's, and keeping the two apart
        keeps every row in event order (the first line with a message id still wins)."""
        if self._group != _PLAIN_GROUP:
            self._close_group(_PLAIN_GROUP)
        buckets = self._buckets
        rows = buckets.get(INSERT_PLAIN_MESSAGE)
        if rows is None:
            rows = buckets[INSERT_PLAIN_MESSAGE] = []
        rows.append(message)
        rows = buckets.get(INSERT_PLAIN_DELIVERY)
        if rows is None:
            rows = buckets[INSERT_PLAIN_DELIVERY] = []
        rows += deliveries
        self.applied.append((event_id,))

    def finish(self) -> list[tuple[str, list[tuple]]]:
        """The runs, in order, ending with the `applied_events` rows."""
        self._close_group(None)
        if self.applied:
            self.runs.append((_INSERT_APPLIED, self.applied))
        return self.runs


def ops_for(events: Iterable[dict]) -> list[tuple[str, list[tuple]]]:
    """SQL runs for a batch of events (see `Projection`)."""
    proj = Projection()
    for ev in events:
        proj.event(ev)
    return proj.finish()

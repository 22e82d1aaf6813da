"""The engine's reads (and its few machine-local writes) by name: handlers ask for an inbox page
or the unread counts and never hold SQL, so each rule lives once. The rule that matters most:

    A delivery is **unread** while it is unread, not deleted, and no older than its recipient's
    registration (the floor: a re-registered agent never inherits the mail of a name's past).

`UNREAD` writes it for queries; schema v5's triggers apply the same rule to keep the `unread`
table (one row per recipient and author) exact, so counting is a lookup, not a scan of every
unread delivery (~35 ms a console refresh at 100k unread). In every query `m` is the messages
table and `d` the deliveries table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from thrum_engine.store.db import Store

# What a message costs in a listing: its body and structured part as stored (bytes, not characters).
BODY_BYTES = "length(CAST(m.content AS BLOB)) + coalesce(length(CAST(m.structured AS BLOB)), 0)"


def visible(floor: str = "?") -> str:
    """A delivery its recipient sees: not deleted, not older than the floor (`?` or a column)."""
    return f"d.deleted = 0 AND d.created_at >= {floor}"


def unread(floor: str = "?") -> str:
    """The unread rule (see the module docstring)."""
    return f"d.read_at IS NULL AND {visible(floor)}"


UNREAD = unread()
# The same rule for every agent at once: the floor is each recipient's own registration.
UNREAD_PER_AGENT = f"JOIN agents a ON a.name = d.recipient AND {unread('a.registered_at')}"
# A delivery a path may surface (nudge, hook, `wait`): not a note to its recipient itself, unless a
# schedule fired it (`self_notes.note_to_self` in SQL). With the message joined (`m`): the deliveries
# index stays covering.
SURFACED = "(m.author != d.recipient OR json_extract(m.meta, '$.scheduled') IS NOT NULL)"
# The same from a delivery row alone (its own `author`): the message is looked up for one's own mail only.
SURFACED_DELIVERY = (
    "(d.author != d.recipient OR EXISTS (SELECT 1 FROM messages s WHERE s.id = d.message_id"
    " AND json_extract(s.meta, '$.scheduled') IS NOT NULL))"
)

_HAS_SCOPE = (
    "EXISTS (SELECT 1 FROM json_each(m.scopes) s WHERE json_extract(s.value, '$.type') = ?"
    " AND json_extract(s.value, '$.value') = ?)"
)


# A ref (`--ref bd:123`): its type, and any of the values that name it (issue 16: `bd:123` is
# also `bd:bd-123`, see refs.py).
def _has_ref(values: int) -> str:
    return (
        "EXISTS (SELECT 1 FROM json_each(m.refs) r WHERE json_extract(r.value, '$.type') = ?"
        f" AND json_extract(r.value, '$.value') IN ({','.join('?' * values)}))"
    )


def _marks(values: list) -> str:
    return ",".join("?" * len(values)) or "NULL"


@dataclass
class Page:
    rows: list[dict]
    cut: bool  # the byte budget ended the page before its LIMIT
    total: int | None = None  # rows matching, when the listing counts them
    unread: int | None = None  # the recipient's unread mail, when the listing read it anyway


async def _read(store: Store, sql: str, params: list) -> list[dict]:
    """A small, bounded read: on the loop's own connection when it can run there (`Store.now`),
    else through the reader's thread."""
    rows = store.now(sql, params)
    return rows if rows is not None else await store.all(sql, params)


# -- paging under a byte budget --


async def within_budget(
    store: Store,
    select: str,
    base: str,
    args: list,
    tail: str,
    tail_args: list,
    budget: int,
    *,
    rows_from: str = "messages m",
    rows_args: list | None = None,
) -> Page:
    """`SELECT {select} {base} {tail}`, but holding at most `budget` bytes of bodies (always at least
    one message); `cut` when the budget ended the page before `tail`'s LIMIT.

    Sizes are read first (SQLite computes them without handing the bodies to Python), then only the
    bodies that fit are fetched, so a listing of a hundred 1 MiB bodies never holds them all at once.
    `base` is `FROM ... WHERE ...`; `tail` orders and limits.

    The bodies are fetched by id from `rows_from` (the tables `select` reads, messages first as `m`,
    joined by key; `rows_args` fill its `?`): a primary-key lookup per row shown. Re-running `base`
    with `m.id IN (...)` let SQLite drive by `base`'s own index instead (the recipient's or the
    author's whole history: ~15 ms at 10k deliveries, 50-90 ms at 1M messages), since without
    statistics it guesses an equality on an index column matches fewer rows than 20 ids do."""
    sizes = await store.all(f"SELECT m.id AS id, {BODY_BYTES} AS nbytes {base} {tail}", args + tail_args)
    keep: list[str] = []
    used = 0
    for r in sizes:
        if keep and used + r["nbytes"] > budget:
            break
        keep.append(r["id"])
        used += r["nbytes"]
    if not keep:
        return Page([], False)
    rows = await store.all(
        f"SELECT {select} FROM {rows_from} WHERE m.id IN ({_marks(keep)}) AND m.deleted = 0",
        (rows_args or []) + keep,
    )
    order = {mid: i for i, mid in enumerate(keep)}
    rows.sort(key=lambda r: order[r["id"]])
    return Page(rows, len(keep) < len(sizes))


# -- messages --


async def message_row(store: Store, message_id: str) -> dict | None:
    return await store.one("SELECT * FROM messages WHERE id = ?", (message_id,))


async def thread_exists(store: Store, thread_id: str) -> bool:
    """Whether anything carries `thread_id`: a stored message, one the loop guard holds, or a
    schedule whose fires go into it (`schedule show` prints its thread before the first fire)."""
    return (
        await store.scalar(
            "SELECT 1 FROM messages WHERE thread_id = ?1 UNION ALL SELECT 1 FROM held WHERE thread_id = ?1"
            " UNION ALL SELECT 1 FROM schedules WHERE thread_id = ?1 LIMIT 1",
            (thread_id,),
        )
        is not None
    )


async def keyed_held_since(store: Store, cutoff: str) -> list[dict]:
    """Messages held since `cutoff` with an idempotency key and not released, oldest first: their
    keys are taken (issue 16). SQLite reads the key out of the held event: parsing every held event
    in Python cost an engine start ~100 ms at 17k held messages."""
    return await store.all(
        "SELECT author, message_id, held_at, json_extract(event, '$.data.idempotency_key') AS idem_key"
        " FROM held WHERE released_at IS NULL AND held_at >= ? AND idem_key IS NOT NULL ORDER BY held_at",
        (cutoff,),
    )


async def held_open(store: Store, message_id: str) -> dict | None:
    """The loop guard's hold on `message_id` (issue 16: reason, event); None when not held (or released)."""
    return await store.one(
        "SELECT reason, event FROM held WHERE message_id = ? AND released_at IS NULL", (message_id,)
    )


async def held_reason(store: Store, message_id: str) -> str | None:
    """Why the loop guard holds `message_id` (issue 16); None when it is not held (or released)."""
    row = await held_open(store, message_id)
    return row["reason"] if row else None


async def keyed_messages_since(store: Store, cutoff: str) -> list[dict]:
    """Messages sent with an idempotency key since `cutoff`, oldest first (issue 16)."""
    return await store.all(
        "SELECT author, idem_key, id, created_at FROM messages WHERE idem_key IS NOT NULL AND created_at >= ?"
        " ORDER BY created_at",
        (cutoff,),
    )


async def recipients_of(store: Store, message_id: str) -> list[str]:
    rows = await store.all("SELECT recipient FROM deliveries WHERE message_id = ?", (message_id,))
    return [r["recipient"] for r in rows]


# The columns of a listing's message row (`m.*` but `idem_key`, which no view shows), with the
# body and structured part left out (NULL) when the row alone would take more than `?` bytes.
def _message_columns() -> str:
    body = f"({BODY_BYTES}) <= ?"
    return (
        "m.id, m.author, m.thread_id, m.reply_to, m.format,"
        f" CASE WHEN {body} THEN m.content END AS content,"
        f" CASE WHEN {body} THEN m.structured END AS structured,"
        " m.created_at, m.updated_at, m.deleted, m.broadcast, m.addressed, m.mentions, m.scopes, m.refs,"
        f" m.meta, {BODY_BYTES} AS nbytes"
    )


_MESSAGE_COLUMNS = _message_columns()
# An inbox page read on the loop goes at most this deep (offset): past it, the reader's thread.
LOOP_MAX_OFFSET = 2000


async def _inbox_page_now(
    store: Store,
    me: str,
    floor: str,
    *,
    limit: int,
    offset: int,
    budget: int,
    unread_only: bool,
    oldest: bool,
) -> Page:
    """The plain inbox page (no filter on the message: `me`'s deliveries since `floor`, maybe only the
    unread) in one statement, with its total and the unread count in a second, both on the loop.

    A body is fetched with its row when the row alone fits `budget / limit` (then the page's
    bodies fit the budget together); a bigger one is left out and fetched afterwards by id, only
    when the budget keeps it, so a page of big bodies holds no more of them than `within_budget`."""
    inline = budget // max(limit, 1)
    direction = "ASC" if oldest else "DESC"
    sql = (
        f"SELECT {_MESSAGE_COLUMNS}, d.read_at, d.seen_at, d.recipient"
        " FROM deliveries d JOIN messages m ON m.id = d.message_id"
        f" WHERE d.recipient = ? AND {visible()}{' AND d.read_at IS NULL' if unread_only else ''}"
        # The tie-break on d.message_id (= m.id) is the listing index's own order after created_at:
        # no sort, and SQLite stops at the LIMIT.
        f" ORDER BY d.created_at {direction}, d.message_id {direction} LIMIT ? OFFSET ?"
    )
    found = await _read(store, sql, [inline, inline, me, floor, limit, offset])
    rows: list[dict] = []
    used = 0
    withheld: list[dict] = []
    for r in found:
        n = r.pop("nbytes")
        if rows and used + n > budget:
            break
        used += n
        rows.append(r)
        if n > inline:
            withheld.append(r)
    cut = len(rows) < len(found)
    if withheld:  # big bodies the budget keeps: fetched by id, on the reader's thread
        ids = [r["id"] for r in withheld]
        bodies = {
            b["id"]: b
            for b in await store.all(
                f"SELECT id, content, structured FROM messages WHERE id IN ({_marks(ids)})", ids
            )
        }
        for r in withheld:
            b = bodies.get(r["id"])
            if b is not None:
                r["content"], r["structured"] = b["content"], b["structured"]
            else:  # purged between the two reads: as `within_budget`, the page goes without it
                rows.remove(r)
    total, unread = await inbox_counts(store, me)
    return Page(rows, cut, unread if unread_only else total, unread)


async def inbox_counts(store: Store, me: str) -> tuple[int, int]:
    """`me`'s visible mail and unread mail (the trigger-kept `inbox_counts` and `unread` tables),
    in one small read."""
    rows = await _read(
        store,
        "SELECT (SELECT n FROM inbox_counts WHERE recipient = ?) AS total,"
        " (SELECT SUM(n) FROM unread WHERE recipient = ?) AS unread",
        [me, me],
    )
    return rows[0]["total"] or 0, rows[0]["unread"] or 0


async def inbox_page(
    store: Store,
    me: str,
    floor: str,
    *,
    limit: int,
    offset: int,
    budget: int,
    everything: bool = False,
    unread_only: bool = False,
    mentions: bool = False,
    author: str | None = None,
    scope: tuple[str, str] | None = None,
    oldest: bool = False,
    ref: tuple[str, list[str]] | None = None,
) -> Page:
    """One page of `me`'s inbox (`everything`: every message, mine marked by its delivery), each row
    with the delivery's read_at, seen_at and recipient (None: not addressed to me), and the total."""
    if not (everything or mentions or author or scope or ref) and offset <= LOOP_MAX_OFFSET:
        return await _inbox_page_now(
            store,
            me,
            floor,
            limit=limit,
            offset=offset,
            budget=budget,
            unread_only=unread_only,
            oldest=oldest,
        )
    args: list = [me]
    simple = False  # only delivery-level filters: the count can skip the messages table
    # The page's rows, found by message id: my delivery of each by its key (recipient, message_id).
    rows_from = "messages m CROSS JOIN deliveries d ON d.message_id = m.id AND d.recipient = ?"
    if everything:
        base = (
            "FROM messages m LEFT JOIN deliveries d ON d.message_id = m.id AND d.recipient = ?"
            " WHERE m.deleted = 0"
        )
        order_col = "m.created_at"
        rows_from = "messages m LEFT JOIN deliveries d ON d.message_id = m.id AND d.recipient = ?"
    else:
        base = (
            f"FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.recipient = ? AND {visible()}"
        )
        args.append(floor)
        order_col = "d.created_at"
        simple = True
    if unread_only:
        base += " AND d.read_at IS NULL"
    if mentions:
        base += " AND d.mentioned = 1"
    if author:
        simple = False
        base += " AND m.author = ?"
        args.append(author)
    if scope:
        simple = False
        base += " AND " + _HAS_SCOPE
        args += list(scope)
    if ref:
        simple = False
        base += " AND " + _has_ref(len(ref[1]))
        args += [ref[0], *ref[1]]
    direction = "ASC" if oldest else "DESC"
    page = await within_budget(
        store,
        "m.*, d.read_at, d.seen_at, d.recipient",
        base,
        args,
        f"ORDER BY {order_col} {direction}, m.id {direction} LIMIT ? OFFSET ?",
        [limit, offset],
        budget,
        rows_from=rows_from,
        rows_args=[me],
    )
    # The kept totals where the filters are theirs (the floor is `me`'s registration, as theirs is).
    if everything and not (unread_only or mentions or author or scope or ref):
        page.total = await message_count(store)  # every message, one row each
    elif simple and not mentions:
        page.total = await (unread_count(store, me) if unread_only else inbox_count(store, me))
    else:
        count_from = base.replace(" JOIN messages m ON m.id = d.message_id", "") if simple else base
        page.total = await store.scalar(f"SELECT COUNT(*) {count_from}", args)
    return page


async def inbox_count(store: Store, me: str) -> int:
    """`me`'s visible mail, read or not (from the trigger-kept `inbox_counts` table)."""
    return await store.scalar("SELECT n FROM inbox_counts WHERE recipient = ?", (me,)) or 0


async def unread_count(store: Store, me: str) -> int:
    """`me`'s unread mail (from the trigger-kept `unread` table)."""
    return await store.scalar("SELECT COALESCE(SUM(n), 0) FROM unread WHERE recipient = ?", (me,))


async def unread_counts(store: Store) -> dict[str, int]:
    """Unread mail per registered recipient (agents with none are absent)."""
    rows = await store.all("SELECT recipient, SUM(n) AS n FROM unread GROUP BY recipient HAVING SUM(n) > 0")
    return {r["recipient"]: r["n"] for r in rows}


async def unread_from(store: Store, recipient: str) -> dict[str, int]:
    """`recipient`'s unread mail counted by author."""
    rows = await store.all("SELECT author, n FROM unread WHERE recipient = ? AND n > 0", (recipient,))
    return {r["author"]: r["n"] for r in rows}


async def unread_ids(store: Store, me: str, floor: str) -> list[str]:
    rows = await store.all(
        f"SELECT d.message_id FROM deliveries d WHERE d.recipient = ? AND {UNREAD}", (me, floor)
    )
    return [r["message_id"] for r in rows]


async def read_state(store: Store, me: str, message_ids: list[str]) -> dict[str, str | None]:
    """message id -> when `me` read it (None: unread), for those of them delivered to `me`."""
    rows = await store.all(
        f"SELECT message_id, read_at FROM deliveries WHERE recipient = ? AND message_id IN ({_marks(message_ids)})",
        [me, *message_ids],
    )
    return {r["message_id"]: r["read_at"] for r in rows}


async def deliveries_for(store: Store, message_ids: list[str]) -> list[dict]:
    if not message_ids:
        return []
    return await store.all(
        # With each recipient's ask, if the message is one (issue 16: acked, the ack's note).
        "SELECT d.*, a.message_id IS NOT NULL AS ask, a.acked_at, a.note AS ack_note FROM deliveries d"
        " LEFT JOIN asks a ON a.message_id = d.message_id AND a.recipient = d.recipient"
        f" WHERE d.message_id IN ({_marks(message_ids)}) ORDER BY d.recipient",
        message_ids,
    )


async def sent_page(
    store: Store,
    author: str,
    *,
    limit: int,
    budget: int,
    to: str | None = None,
    unread_only: bool = False,
    ref: tuple[str, list[str]] | None = None,
    undelivered_only: bool = False,
) -> Page:
    base = "FROM messages m WHERE m.author = ? AND m.deleted = 0"
    args: list = [author]
    if to:
        base += " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.recipient = ?)"
        args.append(to)
    if unread_only:
        base += " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.read_at IS NULL)"
    if ref:
        base += " AND " + _has_ref(len(ref[1]))
        args += [ref[0], *ref[1]]
    if undelivered_only:  # issue 16: some recipient other than the author was never shown it
        base += (
            " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.recipient != m.author"
            " AND d.notified_at IS NULL AND d.seen_at IS NULL AND d.read_at IS NULL AND d.replied_at IS NULL)"
        )
    return await within_budget(
        store, "m.*", base, args, "ORDER BY m.created_at DESC LIMIT ?", [limit], budget
    )


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def feed_page(
    store: Store,
    *,
    limit: int,
    budget: int,
    involving: Iterable[list[str]] = (),
    scope: tuple[str, str] | None = None,
    monitors: bool = False,
    text: str | None = None,
    thread_id: str | None = None,
) -> Page:
    """Every message, newest first: for each group in `involving`, written by or delivered to one
    of its agents; `text` a case-insensitive substring of the body; `thread_id` the thread and its
    root."""
    where = ["m.deleted = 0"]
    args: list = []
    for group in involving:
        marks = _marks(group)
        where.append(
            f"(m.author IN ({marks}) OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id"
            f" AND d.recipient IN ({marks})))"
        )
        args += group + group
    if scope:
        where.append(_HAS_SCOPE)
        args += list(scope)
    if monitors:
        where.append("m.author LIKE 'monitor:%'")
    if text:
        where.append("m.content LIKE ? ESCAPE '\\'")
        args.append(_like(text))
    if thread_id:
        where.append("(m.thread_id = ? OR m.id = ?)")
        args += [thread_id, thread_id]
    return await within_budget(
        store,
        "m.*",
        f"FROM messages m WHERE {' AND '.join(where)}",
        args,
        "ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
        [limit],
        budget,
    )


async def recent_unread(store: Store, me: str, floor: str, limit: int = 5) -> list[dict]:
    """`me`'s newest unread messages (id, author, content, created_at), newest first."""
    return await store.all(
        "SELECT m.id, m.author, m.content, m.created_at FROM deliveries d JOIN messages m ON m.id = d.message_id"
        f" WHERE d.recipient = ? AND {UNREAD} ORDER BY d.created_at DESC LIMIT ?",
        (me, floor, limit),
    )


async def unread_backlog(store: Store, me: str, floor: str, after: str, limit: int = 100) -> list[dict]:
    """`me`'s unread mail delivered after `after`, notes to yourself left out (`SURFACED`), oldest
    first (what a `wait` that looks back returns before it waits).

    One bound on `created_at` (the later of the floor and `after`): with two, SQLite walked the
    recipient's whole history since `after` in `deliveries_inbox` (~20 ms at 1M messages) instead of
    only its unread mail in `deliveries_unread`."""
    bound = "d.created_at > ?" if after >= floor else "d.created_at >= ?"
    return await store.all(
        "SELECT m.*, d.read_at FROM deliveries d JOIN messages m ON m.id = d.message_id"
        f" WHERE d.recipient = ? AND d.read_at IS NULL AND d.deleted = 0 AND {bound} AND {SURFACED}"
        " ORDER BY d.created_at LIMIT ?",
        (me, max(after, floor), limit),
    )


async def nudge_backlog(store: Store, agents: list[str], cutoff: str) -> list[dict]:
    """Unread mail to these agents last nudged (or delivered) before `cutoff`, oldest first:
    (recipient, message_id, author) rows."""
    return await store.all(
        "SELECT d.recipient, d.message_id, m.author FROM deliveries d JOIN messages m ON m.id = d.message_id"
        f" {UNREAD_PER_AGENT} WHERE d.recipient IN ({_marks(agents)})"
        f" AND {SURFACED}"  # a note to yourself is never nudged
        " AND COALESCE(d.notified_at, d.created_at) < ? ORDER BY d.created_at",
        [*agents, cutoff],
    )


async def message_count(store: Store) -> int:
    """Messages not deleted (from the trigger-kept `counts` row)."""
    return await store.scalar("SELECT n FROM counts WHERE name = 'messages'") or 0


async def messages_before(store: Store, before: str) -> int:
    return await store.scalar("SELECT COUNT(*) FROM messages WHERE created_at < ?", (before,))


# -- agents, sessions, presence --


async def agents(store: Store) -> list[dict]:
    return await store.all("SELECT * FROM agents")


async def open_sessions(store: Store) -> list[dict]:
    return await store.all("SELECT * FROM sessions WHERE ended_at IS NULL ORDER BY started_at")


async def sessions(
    store: Store, *, active: bool = False, agent: str | None = None, limit: int = 500
) -> list[dict]:
    where, args = [], []
    if active:
        where.append("ended_at IS NULL")
    if agent:
        where.append("agent = ?")
        args.append(agent)
    sql = "SELECT * FROM sessions" + (" WHERE " + " AND ".join(where) if where else "")
    return await store.all(sql + " ORDER BY started_at DESC LIMIT ?", [*args, limit])


async def presence(store: Store) -> list[dict]:
    return await store.all("SELECT agent, last_seen FROM presence")


async def save_presence(store: Store, rows: Iterable[tuple[str, str]]) -> None:
    await store.write_local(
        "INSERT INTO presence(agent, last_seen) VALUES (?, ?)"
        " ON CONFLICT(agent) DO UPDATE SET last_seen=excluded.last_seen",
        rows,
    )


# -- name collisions (sync) --
async def collisions(store: Store) -> list[dict]:
    return await store.all(
        "SELECT name, kept, theirs, their_host, event_id FROM name_collisions ORDER BY event_id"
    )


async def save_collisions(store: Store, found: list[dict]) -> None:
    await store.write_local(
        "INSERT OR IGNORE INTO name_collisions(event_id, name, kept, theirs, their_host) VALUES (?, ?, ?, ?, ?)",
        [(c["event_id"], c["name"], c["kept"], c["theirs"], c["their_host"]) for c in found],
    )


async def meta(store: Store, key: str) -> str | None:
    return await store.scalar("SELECT value FROM meta WHERE key = ?", (key,))


async def set_meta(store: Store, key: str, value: str) -> None:
    await store.write_local("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [(key, value)])


# -- monitors --


async def monitor(store: Store, ident: str) -> dict | None:
    """The monitor with this id or name."""
    return await store.one("SELECT * FROM monitors WHERE id = ? OR name = ?", (ident, ident))


async def monitor_named(store: Store, name: str) -> dict | None:
    return await store.one("SELECT * FROM monitors WHERE name = ?", (name,))


async def monitor_ids(store: Store, *, running_only: bool) -> list[str]:
    where = " WHERE status = 'running'" if running_only else ""
    return [r["id"] for r in await store.all(f"SELECT id FROM monitors{where} ORDER BY created_at")]


async def monitor_log(store: Store, monitor_id: str, limit: int) -> list[dict]:
    """The monitor's last `limit` events, oldest first."""
    rows = await store.all(
        "SELECT at, kind, line, message_id, detail FROM monitor_events WHERE monitor_id = ?"
        " ORDER BY seq DESC LIMIT ?",
        (monitor_id, limit),
    )
    return rows[::-1]


async def insert_monitor(store: Store, row: dict) -> None:
    cols = ", ".join(row)
    await store.write_local(
        f"INSERT INTO monitors({cols}) VALUES ({', '.join('?' * len(row))})", [tuple(row.values())]
    )


MONITOR_EDITABLE = frozenset({"pattern", "target", "debounce", "schedule"})


async def update_monitor(store: Store, monitor_id: str, changes: dict, updated_at: str) -> None:
    """Change a rule's editable columns (`MONITOR_EDITABLE`; the names are never the caller's)."""
    assert changes and set(changes) <= MONITOR_EDITABLE
    sets = ", ".join(f"{k} = ?" for k in changes)
    await store.write_local(
        f"UPDATE monitors SET {sets}, updated_at = ? WHERE id = ?",
        [(*changes.values(), updated_at, monitor_id)],
    )


# -- asks (issue 16) --
# An ask is open for its recipient until the recipient acks it or answers in its thread: a reply to it
# (the delivery's replied_at) or any later message of the recipient's in the ask's thread. Answers are
# read here rather than projected onto the ask, so the order events are applied in never matters.
_ANSWERED = (
    "(d.replied_at IS NOT NULL OR (m.thread_id IS NOT NULL AND EXISTS (SELECT 1 FROM messages r"
    " WHERE r.thread_id = m.thread_id AND r.author = a.recipient AND r.created_at >= a.created_at"
    " AND r.id != m.id)))"
)


# ... and while its recipient is still the agent it was asked of: registered, since before the ask (the
# unread floor's rule). An ask to a deleted agent no one can answer is not open (walk, session 21: it
# stayed in the sender's asks and briefing for ever, and no overdue notice came).
_ASKED_IS_HERE = (
    "EXISTS (SELECT 1 FROM agents g WHERE g.name = a.recipient AND g.registered_at <= a.created_at)"
)


async def open_asks(
    store: Store, *, recipient: str | None = None, sender: str | None = None, limit: int = 1000
) -> list[dict]:
    sql = (
        "SELECT a.*, m.content, m.thread_id, d.notified_at, d.seen_at, d.read_at FROM asks a"
        " JOIN messages m ON m.id = a.message_id AND m.deleted = 0"
        " LEFT JOIN deliveries d ON d.message_id = a.message_id AND d.recipient = a.recipient"
        f" WHERE a.acked_at IS NULL AND NOT {_ANSWERED} AND {_ASKED_IS_HERE}"
    )
    args: list = []
    if recipient is not None and sender is not None:
        sql += " AND (a.recipient = ? OR a.sender = ?)"
        args += [recipient, sender]
    elif recipient is not None:
        sql += " AND a.recipient = ?"
        args.append(recipient)
    elif sender is not None:
        sql += " AND a.sender = ?"
        args.append(sender)
    return await store.all(sql + " ORDER BY a.created_at, a.message_id LIMIT ?", [*args, limit])


async def ask_row(store: Store, message_id: str, recipient: str) -> dict | None:
    return await store.one(
        f"SELECT a.*, {_ANSWERED} AS answered FROM asks a JOIN messages m ON m.id = a.message_id"
        " LEFT JOIN deliveries d ON d.message_id = a.message_id AND d.recipient = a.recipient"
        " WHERE a.message_id = ? AND a.recipient = ?",
        [message_id, recipient],
    )


async def wrote_any(store: Store, author: str) -> bool:
    """Whether `author` wrote any stored message (one step of `messages_author`)."""
    return await store.scalar("SELECT 1 FROM messages WHERE author = ? LIMIT 1", (author,)) is not None


async def received_any(store: Store, recipient: str) -> bool:
    """Whether anything was delivered to `recipient` (one step of the deliveries' primary key)."""
    return (
        await store.scalar("SELECT 1 FROM deliveries WHERE recipient = ? LIMIT 1", (recipient,)) is not None
    )

"""Schema and migrations. `PROJECTED` tables are rebuilt from the journal; `LOCAL`
tables hold machine-local state that `doctor rebuild` carries over."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 14

PROJECTED = ("applied_events", "shard_offsets", "agents", "sessions", "messages", "deliveries", "unread")
# Review tables (issue 14): reviews and their rounds are projected, pending comments are local.
PROJECTED += ("reviews", "review_rounds")
PROJECTED += ("counts", "inbox_counts")  # trigger-kept totals (v9)
PROJECTED += ("schedules",)  # issue 16: schedules (v10)
# Asks and held messages (issue 16, v11): projected from message.create (`ask`), ask.* and message.hold/release.
PROJECTED += ("asks", "held")
LOCAL = ("presence", "tmux_queue", "monitors", "monitor_events")
LOCAL += ("review_drafts",)
LOCAL += ("name_collisions",)  # v13: agent names two clones registered, as this clone saw them arrive

# How the unread counts find a delivery's author: v5 looked the message up (deliveries had no
# author then); v14 reads it off the delivery, which took the join out of the count: a lookup per
# delivery, 70 % of the count's time at the end of a rebuild (2.6 -> 0.8 us per delivery at 100k).
_V5_AUTHOR_JOIN = ("m.author", "JOIN messages m ON m.id = d.message_id")
_AUTHOR_ON_DELIVERY = ("d.author", "")


def _unread_recount(author: str, join: str) -> str:
    """Every recipient's unread mail counted afresh: v5's first fill, and the end of a rebuild
    (which drops the triggers while it loads)."""
    return f"""
    DELETE FROM unread;
    INSERT INTO unread(recipient, author, n)
        SELECT d.recipient, {author}, COUNT(*) FROM agents a
        JOIN deliveries d ON d.recipient = a.name AND d.read_at IS NULL AND d.deleted = 0
            AND d.created_at >= a.registered_at
        {join} GROUP BY d.recipient, {author}
"""


def _unread_recount_one(author: str, join: str) -> str:
    """A (re)registered agent's unread mail, counted afresh (the registration triggers)."""
    return f"""
    DELETE FROM unread WHERE recipient = NEW.name;
    INSERT INTO unread(recipient, author, n)
        SELECT NEW.name, {author}, COUNT(*) FROM deliveries d {join}
        WHERE d.recipient = NEW.name AND d.read_at IS NULL AND d.deleted = 0
            AND d.created_at >= NEW.registered_at
        GROUP BY {author};
"""


_V5_UNREAD_RECOUNT = _unread_recount(*_V5_AUTHOR_JOIN)
UNREAD_RECOUNT = _unread_recount(*_AUTHOR_ON_DELIVERY)
_V5_RECOUNT = _unread_recount_one(*_V5_AUTHOR_JOIN)
_RECOUNT = _unread_recount_one(*_AUTHOR_ON_DELIVERY)

# The messages not deleted, counted afresh: the counter's first fill, and the end of a rebuild.
MESSAGE_RECOUNT = """
    INSERT OR REPLACE INTO counts(name, n) SELECT 'messages', COUNT(*) FROM messages WHERE deleted = 0
"""

# Every recipient's inbox (visible deliveries: not deleted, since its registration) counted afresh.
INBOX_RECOUNT = """
    DELETE FROM inbox_counts;
    INSERT INTO inbox_counts(recipient, n)
        SELECT a.name, COUNT(*) FROM agents a
        JOIN deliveries d ON d.recipient = a.name AND d.deleted = 0 AND d.created_at >= a.registered_at
        GROUP BY a.name
"""

# A (re)registered agent's inbox, counted afresh (v9's triggers).
_INBOX_RECOUNT_ONE = """
    DELETE FROM inbox_counts WHERE recipient = NEW.name;
    INSERT INTO inbox_counts(recipient, n)
        SELECT NEW.name, COUNT(*) FROM deliveries d
        WHERE d.recipient = NEW.name AND d.deleted = 0 AND d.created_at >= NEW.registered_at;
"""

# The author of a delivery's message as v5's triggers found it (deliveries had no author then).
_V5_AUTHOR = "COALESCE((SELECT author FROM messages WHERE id = {row}.message_id), '')"


def _unread_triggers(new_author: str, old_author: str, recount: str) -> str:
    """The triggers that keep `unread` exact (v5; v14 reads the author off the delivery), given how
    they find a delivery's author and how a (re)registration recounts."""
    return f"""
    CREATE TRIGGER unread_delivered AFTER INSERT ON deliveries
    WHEN NEW.read_at IS NULL AND NEW.deleted = 0
        AND NEW.created_at >= (SELECT registered_at FROM agents WHERE name = NEW.recipient)
    BEGIN
        INSERT INTO unread(recipient, author, n) VALUES (NEW.recipient, {new_author}, 1)
        ON CONFLICT(recipient, author) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER unread_changed AFTER UPDATE OF read_at, deleted ON deliveries
    WHEN (OLD.read_at IS NULL AND OLD.deleted = 0) != (NEW.read_at IS NULL AND NEW.deleted = 0)
        AND NEW.created_at >= (SELECT registered_at FROM agents WHERE name = NEW.recipient)
    BEGIN
        INSERT INTO unread(recipient, author, n) VALUES
            (NEW.recipient, {new_author}, CASE WHEN NEW.read_at IS NULL AND NEW.deleted = 0 THEN 1 ELSE -1 END)
        ON CONFLICT(recipient, author) DO UPDATE SET n = n + excluded.n;
    END;
    CREATE TRIGGER unread_purged AFTER DELETE ON deliveries
    WHEN OLD.read_at IS NULL AND OLD.deleted = 0
        AND OLD.created_at >= (SELECT registered_at FROM agents WHERE name = OLD.recipient)
    BEGIN
        UPDATE unread SET n = n - 1 WHERE recipient = OLD.recipient AND author = {old_author};
    END;
    CREATE TRIGGER unread_registered AFTER INSERT ON agents
    BEGIN {recount} END;
    CREATE TRIGGER unread_reregistered AFTER UPDATE OF registered_at ON agents
    BEGIN {recount} END;
    """


def _v14(conn: sqlite3.Connection) -> str:
    """v14: each delivery carries its message's author, so the unread counts (per recipient and
    author) never look the message up: its triggers, and the end of a rebuild (issue 17). The
    column is added only if missing: a migration runs again on a store whose recorded version was
    set back (the upgrade tests do that)."""
    cols = {row[1] for row in conn.execute("PRAGMA table_info(deliveries)")}
    add = "" if "author" in cols else "ALTER TABLE deliveries ADD COLUMN author TEXT NOT NULL DEFAULT '';"
    return add + _V14


_V14 = f"""
    UPDATE deliveries SET author = COALESCE((SELECT m.author FROM messages m WHERE m.id = deliveries.message_id), '');
    DROP TRIGGER IF EXISTS unread_delivered;
    DROP TRIGGER IF EXISTS unread_changed;
    DROP TRIGGER IF EXISTS unread_purged;
    DROP TRIGGER IF EXISTS unread_registered;
    DROP TRIGGER IF EXISTS unread_reregistered;
    {_unread_triggers("NEW.author", "OLD.author", _RECOUNT)}
    """


# Each entry upgrades the schema from version i to i+1: SQL, or a function of the database that
# returns it.
MIGRATIONS: list[str | Callable[[sqlite3.Connection], str]] = [
    """
    CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE applied_events(id TEXT PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE shard_offsets(shard TEXT PRIMARY KEY, offset INTEGER NOT NULL);
    CREATE TABLE agents(
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        module TEXT NOT NULL DEFAULT '',
        display TEXT NOT NULL DEFAULT '',
        runtime TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL DEFAULT 'agent',
        worktree TEXT NOT NULL DEFAULT '',
        registered_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT '',
        status_at TEXT,
        intent TEXT NOT NULL DEFAULT '',
        task TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE sessions(
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        end_reason TEXT,
        intent TEXT NOT NULL DEFAULT '',
        task TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX sessions_agent ON sessions(agent, started_at);
    CREATE TABLE messages(
        id TEXT PRIMARY KEY,
        author TEXT NOT NULL,
        thread_id TEXT,
        reply_to TEXT,
        format TEXT NOT NULL,
        content TEXT NOT NULL,
        structured TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT,
        deleted INTEGER NOT NULL DEFAULT 0,
        broadcast INTEGER NOT NULL DEFAULT 0,
        addressed TEXT NOT NULL DEFAULT '[]',
        mentions TEXT NOT NULL DEFAULT '[]',
        scopes TEXT NOT NULL DEFAULT '[]',
        refs TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX messages_created ON messages(created_at);
    CREATE INDEX messages_author ON messages(author, created_at);
    CREATE INDEX messages_thread ON messages(thread_id);
    CREATE TABLE deliveries(
        recipient TEXT NOT NULL,
        message_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        mentioned INTEGER NOT NULL DEFAULT 0,
        deleted INTEGER NOT NULL DEFAULT 0,
        notified_at TEXT,
        seen_at TEXT,
        read_at TEXT,
        replied_at TEXT,
        PRIMARY KEY(recipient, message_id)
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_inbox ON deliveries(recipient, deleted, created_at);
    CREATE INDEX deliveries_unread ON deliveries(recipient, read_at, deleted, created_at);
    CREATE INDEX deliveries_message ON deliveries(message_id);
    CREATE TABLE presence(agent TEXT PRIMARY KEY, last_seen TEXT NOT NULL);
    """,
    # v2: the per-session command queue (machine-local: commands typed into this machine's panes).
    """
    CREATE TABLE tmux_queue(
        id TEXT PRIMARY KEY,
        session TEXT NOT NULL,
        command TEXT NOT NULL,
        requester TEXT,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        timeout REAL NOT NULL,
        silence REAL NOT NULL,
        output TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX tmux_queue_session ON tmux_queue(session, status, created_at);
    """,
    # v3: monitor rules and what they saw (machine-local: they watch this machine's processes and files).
    """
    CREATE TABLE monitors(
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        spec TEXT NOT NULL,
        pattern TEXT NOT NULL,
        target TEXT NOT NULL,
        debounce REAL NOT NULL,
        schedule TEXT,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        last_match_at TEXT,
        matches INTEGER NOT NULL DEFAULT 0,
        delivered INTEGER NOT NULL DEFAULT 0,
        restarts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE monitor_events(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        monitor_id TEXT NOT NULL,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        line TEXT NOT NULL DEFAULT '',
        message_id TEXT,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX monitor_events_monitor ON monitor_events(monitor_id, seq);
    """,
    # v4: a queued command's substance: its exit status and duration (a shell), or that it was a
    # prompt typed to an LLM runtime (walk bug 18).
    """
    ALTER TABLE tmux_queue ADD COLUMN kind TEXT NOT NULL DEFAULT 'command';
    ALTER TABLE tmux_queue ADD COLUMN runtime TEXT NOT NULL DEFAULT '';
    ALTER TABLE tmux_queue ADD COLUMN exit_code INTEGER;
    ALTER TABLE tmux_queue ADD COLUMN duration REAL;
    """,
    # v5: unread mail counted per (recipient, author), kept exact by triggers: the console's
    # refresh and `team` read a table of agents x authors instead of counting every unread
    # delivery (about 35 ms a refresh at 100k unread, the console's keystroke regression).
    # The unread rule: not read, not deleted, delivered since the recipient (re)registered.
    f"""
    CREATE TABLE unread(
        recipient TEXT NOT NULL,
        author TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY(recipient, author)
    ) WITHOUT ROWID;
    {_V5_UNREAD_RECOUNT};
    {_unread_triggers(_V5_AUTHOR.format(row="NEW"), _V5_AUTHOR.format(row="OLD"), _V5_RECOUNT)}
    CREATE TRIGGER unread_forgotten AFTER DELETE ON agents
    BEGIN
        DELETE FROM unread WHERE recipient = OLD.name;
    END;
    """,
    # v6: which path delivered a message first (delivery_paths.py: channel, wait, hook, nudge).
    """
    ALTER TABLE deliveries ADD COLUMN notified_via TEXT;
    """,
    # v7: where an agent was registered (clone id and host), so `team` can say which machine an agent
    # synced from runs on; '' for agents registered before sync.
    """
    ALTER TABLE agents ADD COLUMN origin TEXT NOT NULL DEFAULT '';
    ALTER TABLE agents ADD COLUMN host TEXT NOT NULL DEFAULT '';
    """,
    # v8: reviews (issue 14). `reviews` and `review_rounds` are projected from review.* events;
    # `review_drafts` holds the operator's pending comments on this machine until they are submitted.
    """
    CREATE TABLE reviews(
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        branch TEXT NOT NULL DEFAULT '',
        target TEXT NOT NULL DEFAULT '',
        opened_at TEXT NOT NULL,
        status TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        requested_at TEXT,
        requested_by TEXT,
        reviewed_head TEXT,
        reviewed_fingerprint TEXT,
        reviewed_at TEXT,
        reviewer TEXT,
        message_id TEXT,
        merged_at TEXT,
        merged_commit TEXT,
        strategy TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX reviews_agent ON reviews(agent, opened_at);
    CREATE TABLE review_rounds(
        event_id TEXT PRIMARY KEY,
        review_id TEXT NOT NULL,
        at TEXT NOT NULL,
        reviewer TEXT NOT NULL,
        verdict TEXT NOT NULL,
        head TEXT NOT NULL,
        base TEXT NOT NULL DEFAULT '',
        fingerprint TEXT NOT NULL DEFAULT '',
        summary TEXT NOT NULL DEFAULT '',
        comments TEXT NOT NULL DEFAULT '[]',
        message_id TEXT
    );
    CREATE INDEX review_rounds_review ON review_rounds(review_id, at);
    CREATE TABLE review_drafts(
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        path TEXT NOT NULL,
        line INTEGER,
        end_line INTEGER,
        side TEXT NOT NULL DEFAULT 'new',
        quote TEXT NOT NULL DEFAULT '',
        body TEXT NOT NULL,
        head TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    CREATE INDEX review_drafts_agent ON review_drafts(agent, created_at);
    """,
    # v9 (v12 at merge): totals kept by triggers, so listings read a row instead of counting the
    # history: the messages (`overview`, `inbox --all`: ~0.4-0.9 s at 1M messages) and each
    # recipient's inbox under the visible rule (the `total` of every `inbox` page: ~1-25 ms at 20k
    # deliveries, growing with the recipient's history). Maintained like v5's unread counts.
    f"""
    CREATE TABLE counts(name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    {MESSAGE_RECOUNT};
    CREATE TRIGGER messages_counted AFTER INSERT ON messages WHEN NEW.deleted = 0
    BEGIN
        UPDATE counts SET n = n + 1 WHERE name = 'messages';
    END;
    CREATE TRIGGER messages_recounted AFTER UPDATE OF deleted ON messages
    WHEN (OLD.deleted = 0) != (NEW.deleted = 0)
    BEGIN
        UPDATE counts SET n = n + CASE WHEN NEW.deleted = 0 THEN 1 ELSE -1 END WHERE name = 'messages';
    END;
    CREATE TRIGGER messages_uncounted AFTER DELETE ON messages WHEN OLD.deleted = 0
    BEGIN
        UPDATE counts SET n = n - 1 WHERE name = 'messages';
    END;
    CREATE TABLE inbox_counts(recipient TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    {INBOX_RECOUNT};
    CREATE TRIGGER inbox_delivered AFTER INSERT ON deliveries
    WHEN NEW.deleted = 0 AND NEW.created_at >= (SELECT registered_at FROM agents WHERE name = NEW.recipient)
    BEGIN
        INSERT INTO inbox_counts(recipient, n) VALUES (NEW.recipient, 1)
        ON CONFLICT(recipient) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER inbox_changed AFTER UPDATE OF deleted ON deliveries
    WHEN (OLD.deleted = 0) != (NEW.deleted = 0)
        AND NEW.created_at >= (SELECT registered_at FROM agents WHERE name = NEW.recipient)
    BEGIN
        INSERT INTO inbox_counts(recipient, n)
            VALUES (NEW.recipient, CASE WHEN NEW.deleted = 0 THEN 1 ELSE -1 END)
        ON CONFLICT(recipient) DO UPDATE SET n = n + excluded.n;
    END;
    CREATE TRIGGER inbox_purged AFTER DELETE ON deliveries
    WHEN OLD.deleted = 0 AND OLD.created_at >= (SELECT registered_at FROM agents WHERE name = OLD.recipient)
    BEGIN
        UPDATE inbox_counts SET n = n - 1 WHERE recipient = OLD.recipient;
    END;
    CREATE TRIGGER inbox_registered AFTER INSERT ON agents
    BEGIN {_INBOX_RECOUNT_ONE} END;
    CREATE TRIGGER inbox_reregistered AFTER UPDATE OF registered_at ON agents
    BEGIN {_INBOX_RECOUNT_ONE} END;
    CREATE TRIGGER inbox_forgotten AFTER DELETE ON agents
    BEGIN
        DELETE FROM inbox_counts WHERE recipient = OLD.name;
    END;
    """,
    # v10 (issue 16): idempotent sends and schedules. `idem_key` is the
    # sender's idempotency key, with no index of its own: the engine checks keys in memory and
    # loads the window's at start through `messages_created` (an index cost every keyed send ~3 %);
    # `meta` is what marks a message beyond its body (a schedule's fire: {"scheduled": ...}).
    # `schedules` is projected from schedule.* events: each pending one with its next fire time.
    """
    ALTER TABLE messages ADD COLUMN idem_key TEXT;
    ALTER TABLE messages ADD COLUMN meta TEXT;
    CREATE TABLE schedules(
        id TEXT PRIMARY KEY,
        author TEXT NOT NULL,
        addressed TEXT NOT NULL,
        content TEXT NOT NULL,
        format TEXT NOT NULL DEFAULT 'markdown',
        kind TEXT NOT NULL,
        at TEXT,
        cron TEXT,
        ask INTEGER NOT NULL DEFAULT 0,
        until_reply INTEGER NOT NULL DEFAULT 0,
        thread_id TEXT,
        created_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        next_at TEXT,
        fires INTEGER NOT NULL DEFAULT 0,
        last_fired_at TEXT,
        last_due TEXT,
        last_message_id TEXT,
        last_late INTEGER NOT NULL DEFAULT 0,
        ended_at TEXT,
        end_reason TEXT NOT NULL DEFAULT '',
        origin TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX schedules_pending ON schedules(status, next_at);
    CREATE INDEX schedules_thread ON schedules(thread_id) WHERE thread_id IS NOT NULL;
    """,
    # v11 (issue 16): asks, one row per (message, recipient), open until the
    # recipient answers in the thread (read from `messages` at query time, so the order events are
    # projected in never matters) or acks it; and messages the loop guard holds until the operator
    # releases them (the create event waits in `event`: nothing is delivered before the release).
    """
    CREATE TABLE asks(
        message_id TEXT NOT NULL,
        recipient TEXT NOT NULL,
        sender TEXT NOT NULL,
        created_at TEXT NOT NULL,
        due_at TEXT,
        acked_at TEXT,
        note TEXT NOT NULL DEFAULT '',
        reminders INTEGER NOT NULL DEFAULT 0,
        reminded_at TEXT,
        overdue_at TEXT,
        PRIMARY KEY(message_id, recipient)
    ) WITHOUT ROWID;
    CREATE INDEX asks_recipient ON asks(recipient, acked_at);
    CREATE INDEX asks_sender ON asks(sender, acked_at);
    CREATE INDEX asks_open ON asks(acked_at, created_at);
    CREATE TABLE held(
        message_id TEXT PRIMARY KEY,
        author TEXT NOT NULL,
        recipients TEXT NOT NULL DEFAULT '[]',
        thread_id TEXT,
        reason TEXT NOT NULL,
        content TEXT NOT NULL,
        event TEXT NOT NULL,
        held_at TEXT NOT NULL,
        released_at TEXT,
        released_by TEXT
    );
    CREATE INDEX held_open ON held(released_at, held_at);
    CREATE INDEX held_author ON held(author, held_at);
    """,
    # v12: a purge's cutoff is bounded by the purge's own time (store.apply.purge_cutoff). A store that
    # recorded one the older way (`--all` as now + 1 s, a future `--before` as given) may have dropped
    # messages sent after its purge: such a store is rebuilt from the journal at the next start
    # (REBUILD_DUE). A new or never purged store has no cutoff and needs nothing.
    """
    INSERT INTO meta(key, value) SELECT 'rebuild_due', 'purge cutoffs recorded by an older Thrum (schema v12)'
        WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'purged_before');
    """,
    # v13: the name collisions sync found (`sync status`), kept across restarts: the projection keeps
    # only the registration that won, so the other one is known only as it arrives.
    """
    CREATE TABLE IF NOT EXISTS name_collisions(
        event_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        kept TEXT NOT NULL,
        theirs TEXT NOT NULL,
        their_host TEXT NOT NULL DEFAULT ''
    ) WITHOUT ROWID;
    """,
    _v14,
]


def migration_sql(conn: sqlite3.Connection, version: int) -> str:
    """The SQL that takes `conn`'s schema from `version` to the next."""
    step = MIGRATIONS[version]
    return step if isinstance(step, str) else step(conn)


# A migration that cannot fix the projection in SQL alone leaves its reason here: the engine then
# rebuilds the projection from the journal (engine.core `_open_projection`).
REBUILD_DUE = "rebuild_due"

# The first schema that projects every event type and field the journal holds today. A store from
# before it recorded the events it could not project (a newer clone's, through sync) as applied and
# dropped them, so its upgrade rebuilds it once from the journal (walk B, 10: reviews, schedules, asks
# and held messages a newer clone sent never appeared). A migration that projects a new event type
# or field raises this to its own version.
PROJECTS_EVERY_EVENT_SINCE = 11

# What the end of a rebuild counts afresh (it drops the triggers while it loads).
RECOUNTS = f"{UNREAD_RECOUNT};{MESSAGE_RECOUNT};{INBOX_RECOUNT}"

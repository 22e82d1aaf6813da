"""Queries whose cost no longer grows with the store (issue 17): each rewrite gives exactly what the
slow formulation gave, on random journals in a real SQLite file, and its plan uses the index that
keeps it proportional to what it returns (EXPLAIN QUERY PLAN, never a timing)."""

from __future__ import annotations

import asyncio
from typing import Self

import pytest

from conftest import start_inproc_engine
from test_unread_counts import NAMES, _journal  # the random journal: sends, reads, deletes, purges
from thrum_engine.engine.caller import Caller
from thrum_engine.store import Store, queries
from thrum_engine.store.rebuild import build_projection, swap_in

FLOOR = "2026-01-01T00:00:00.000000Z"
MESSAGE_COUNT = "SELECT COUNT(*) FROM messages WHERE deleted = 0"
BIG = 1 << 30


def _with_scopes(events: list[dict]) -> list[dict]:
    """A third of the messages get a scope and a mention, so every inbox filter has rows."""
    for i, ev in enumerate(events):
        if ev["type"] == "message.create" and i % 3 == 0:
            ev["data"]["scopes"] = [{"type": "module", "value": "auth"}]
            ev["data"]["mentioned_agents"] = ev["data"]["recipients"][:1]
    return events


async def _store(tmp_path, seed: int, n: int = 400) -> Store:
    store = Store(str(tmp_path / f"s{seed}.sqlite"))
    await store.open()
    events = _with_scopes(_journal(seed, n))
    for i in range(0, len(events), 9):
        await store.apply(events[i : i + 9], {"x": i})
    return store


class Recorder:
    """The SQL a query function sends (to EXPLAIN it afterwards)."""

    def __init__(self, store: Store) -> None:
        self.store, self.sql = store, []
        self._all, self._now = store.all, store.now

    async def all(self, sql, params=()):
        self.sql.append((sql, list(params)))
        return await self._all(sql, params)

    def now(self, sql, params=()):
        self.sql.append((sql, list(params)))
        return self._now(sql, params)

    def __enter__(self) -> Self:
        self.store.all = self.all  # type: ignore[method-assign]
        self.store.now = self.now  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc) -> None:
        del self.store.all
        del self.store.now

    async def plan(self, containing: str) -> str:
        sql, params = next((s, p) for s, p in self.sql if containing in s)
        return " | ".join(r["detail"] for r in await self.store.all("EXPLAIN QUERY PLAN " + sql, params))


# -- the reference: the page as one query over the whole history (the slow formulation) --


async def _floors(store: Store) -> dict[str, str]:
    """Registered agents and their floors (the engine lists only a registered caller's inbox)."""
    return {r["name"]: r["registered_at"] for r in await store.all("SELECT name, registered_at FROM agents")}


async def _inbox_reference(store: Store, me: str, floor: str, **kw) -> tuple[list[tuple], int]:
    args: list = [me]
    if kw.get("everything"):
        base = (
            "FROM messages m LEFT JOIN deliveries d ON d.message_id = m.id AND d.recipient = ?"
            " WHERE m.deleted = 0"
        )
        order = "m.created_at"
    else:
        base = (
            "FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.recipient = ?"
            " AND d.deleted = 0 AND d.created_at >= ?"
        )
        args.append(floor)
        order = "d.created_at"
    if kw.get("unread_only"):
        base += " AND d.read_at IS NULL"
    if kw.get("mentions"):
        base += " AND d.mentioned = 1"
    if kw.get("author"):
        base += " AND m.author = ?"
        args.append(kw["author"])
    if kw.get("scope"):
        base += " AND EXISTS (SELECT 1 FROM json_each(m.scopes) s WHERE json_extract(s.value, '$.type') = ?"
        base += " AND json_extract(s.value, '$.value') = ?)"
        args += list(kw["scope"])
    way = "ASC" if kw.get("oldest") else "DESC"
    rows = await store.all(
        f"SELECT m.id, m.content, d.read_at, d.seen_at, d.recipient {base}"
        f" ORDER BY {order} {way}, m.id {way} LIMIT ? OFFSET ?",
        [*args, kw["limit"], kw["offset"]],
    )
    total = await store.scalar(f"SELECT COUNT(*) {base}", args)
    return [tuple(r.values()) for r in rows], total


INBOX_VARIANTS = [
    {},
    {"unread_only": True},
    {"mentions": True},
    {"author": "bob"},
    {"scope": ("module", "auth")},
    {"everything": True},
    {"everything": True, "unread_only": True},
    {"oldest": True},
    {"author": "carol", "unread_only": True},
]


@pytest.mark.parametrize("seed", range(3))
async def test_inbox_pages_are_what_the_whole_history_query_gives(tmp_path, seed):
    store = await _store(tmp_path, seed)
    try:
        floors = await _floors(store)
        assert floors
        for me, floor in floors.items():
            for variant in INBOX_VARIANTS:
                for limit, offset in ((5, 0), (7, 3), (100, 0)):
                    kw = {**variant, "limit": limit, "offset": offset}
                    page = await queries.inbox_page(store, me, floor, budget=BIG, **kw)
                    got = [
                        (r["id"], r["content"], r["read_at"], r["seen_at"], r["recipient"]) for r in page.rows
                    ]
                    want, total = await _inbox_reference(store, me, floor, **kw)
                    assert (got, page.total) == (want, total), (me, kw)
    finally:
        await store.close()


async def test_a_page_cut_by_the_byte_budget_is_the_same_prefix(tmp_path):
    store = await _store(tmp_path, 7)
    try:
        whole = await queries.inbox_page(store, "alice", FLOOR, limit=50, offset=0, budget=BIG)
        first = len(whole.rows[0]["content"])
        cut = await queries.inbox_page(store, "alice", FLOOR, limit=50, offset=0, budget=first)
        assert cut.cut and [r["id"] for r in cut.rows] == [r["id"] for r in whole.rows][: len(cut.rows)]
        assert len(cut.rows) >= 1
    finally:
        await store.close()


async def test_a_plain_inbox_page_is_one_read_on_the_loop(tmp_path):
    """The plain page (no filter on the message) is one statement through the recipient's listing
    index, run on the loop's own connection, and one read of the two kept counts; nothing else."""
    store = await _store(tmp_path, 1)
    try:
        for kw in ({}, {"unread_only": True}, {"oldest": True}):
            with Recorder(store) as rec:
                await queries.inbox_page(store, "alice", FLOOR, limit=10, offset=0, budget=BIG, **kw)
            assert len(rec.sql) == 2, rec.sql
            plan = await rec.plan("FROM deliveries d JOIN messages m")
            index = "deliveries_unread" if kw.get("unread_only") else "deliveries_inbox"
            assert f"SEARCH d USING INDEX {index} (recipient=?" in plan, plan
            assert "SEARCH m USING INDEX sqlite_autoindex_messages_1 (id=?)" in plan, plan
            assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
            counts = await rec.plan("inbox_counts")
            assert "SEARCH inbox_counts USING PRIMARY KEY" in counts, counts
            assert "SEARCH unread USING PRIMARY KEY" in counts, counts
    finally:
        await store.close()


@pytest.mark.parametrize("seed", range(2))
async def test_a_plain_page_under_any_budget_is_the_prefix_that_fits(tmp_path, seed):
    """Bodies bigger than the page's share of the budget are left out of the first read and fetched
    by id: whatever the budget, the page is the longest prefix of the whole page whose bodies fit
    (at least one), each body as stored."""
    store = await _store(tmp_path, seed)
    try:
        floors = await _floors(store)
        for me, floor in list(floors.items())[:3]:
            whole = await queries.inbox_page(store, me, floor, limit=12, offset=0, budget=BIG)
            if not whole.rows:
                continue
            sizes = [len(r["content"].encode()) for r in whole.rows]
            for budget in sorted({1, sizes[0], sizes[0] + 1, sum(sizes[:3]), sum(sizes) - 1, sum(sizes)}):
                if budget < 1:
                    continue
                page = await queries.inbox_page(store, me, floor, limit=12, offset=0, budget=budget)
                keep, used = 0, 0
                for n in sizes:
                    if keep and used + n > budget:
                        break
                    keep, used = keep + 1, used + n
                assert page.rows == whole.rows[:keep], (me, budget)
                assert page.cut == (keep < len(whole.rows)), (me, budget)
                assert (page.total, page.unread) == (whole.total, whole.unread)
    finally:
        await store.close()


async def test_inbox_and_sent_fetch_the_page_by_primary_key(tmp_path):
    """The second query of a page looks each kept id up (the messages' and my deliveries' keys), not
    the recipient's or author's whole history through their listing index."""
    store = await _store(tmp_path, 1)
    try:
        with Recorder(store) as rec:
            await queries.inbox_page(store, "alice", FLOOR, limit=10, offset=0, budget=BIG, author="bob")
            inbox = await rec.plan("m.id IN (")
        assert "SEARCH m USING INDEX sqlite_autoindex_messages_1 (id=?)" in inbox, inbox
        assert "SEARCH d USING PRIMARY KEY (recipient=? AND message_id=?)" in inbox, inbox
        assert "deliveries_inbox" not in inbox
        with Recorder(store) as rec:
            await queries.sent_page(store, "alice", limit=10, budget=BIG)
            sent = await rec.plan("m.id IN (")
        assert sent == "SEARCH m USING INDEX sqlite_autoindex_messages_1 (id=?)", sent
    finally:
        await store.close()


@pytest.mark.parametrize("seed", range(3))
async def test_sent_and_feed_pages_are_unchanged(tmp_path, seed):
    store = await _store(tmp_path, seed)
    try:
        for me in NAMES:
            page = await queries.sent_page(store, me, limit=8, budget=BIG)
            want = await store.all(
                "SELECT id FROM messages m WHERE m.author = ? AND m.deleted = 0"
                " ORDER BY m.created_at DESC LIMIT 8",
                (me,),
            )
            assert [r["id"] for r in page.rows] == [r["id"] for r in want]
            for to in NAMES:
                page = await queries.sent_page(store, me, limit=8, budget=BIG, to=to, unread_only=True)
                want = await store.all(
                    "SELECT id FROM messages m WHERE m.author = ? AND m.deleted = 0 AND EXISTS (SELECT 1"
                    " FROM deliveries d WHERE d.message_id = m.id AND d.recipient = ?) AND EXISTS (SELECT 1"
                    " FROM deliveries d WHERE d.message_id = m.id AND d.read_at IS NULL)"
                    " ORDER BY m.created_at DESC LIMIT 8",
                    (me, to),
                )
                assert [r["id"] for r in page.rows] == [r["id"] for r in want]
        feed = await queries.feed_page(store, limit=12, budget=BIG, involving=[["bob", "dave"]])
        want = await store.all(
            "SELECT id FROM messages m WHERE m.deleted = 0 AND (m.author IN ('bob','dave') OR EXISTS"
            " (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.recipient IN ('bob','dave')))"
            " ORDER BY m.created_at DESC, m.id DESC LIMIT 12"
        )
        assert [r["id"] for r in feed.rows] == [r["id"] for r in want]
    finally:
        await store.close()


@pytest.mark.parametrize("seed", range(3))
async def test_wait_backlog_is_unchanged_and_walks_only_unread_mail(tmp_path, seed):
    store = await _store(tmp_path, seed)
    try:
        for me in NAMES:
            for after in ("2025-06-01T00:00:00.000000Z", "2026-01-01T00:00:10.000010Z", FLOOR):
                for floor in (FLOOR, "2026-01-01T00:00:05.000005Z"):
                    got = await queries.unread_backlog(store, me, floor, after)
                    want = await store.all(
                        "SELECT m.*, d.read_at FROM deliveries d JOIN messages m ON m.id = d.message_id"
                        " WHERE d.recipient = ? AND d.read_at IS NULL AND d.deleted = 0 AND d.created_at >= ?"
                        " AND d.created_at > ? AND (m.author != ? OR json_extract(m.meta, '$.scheduled')"
                        " IS NOT NULL) ORDER BY d.created_at LIMIT 100",
                        (me, floor, after, me),
                    )
                    assert got == want, (me, after, floor)
        with Recorder(store) as rec:
            await queries.unread_backlog(store, "alice", FLOOR, "2025-06-01T00:00:00.000000Z")
            plan = await rec.plan("d.read_at IS NULL")
        assert "SEARCH d USING COVERING INDEX deliveries_unread" in plan, plan
    finally:
        await store.close()


async def _counted(store: Store) -> None:
    assert await queries.message_count(store) == await store.scalar(MESSAGE_COUNT)
    for me, floor in (await _floors(store)).items():
        assert await queries.inbox_count(store, me) == await store.scalar(
            "SELECT COUNT(*) FROM deliveries WHERE recipient = ? AND deleted = 0 AND created_at >= ?",
            (me, floor),
        )
    page = await queries.inbox_page(store, "alice", FLOOR, limit=1, offset=0, budget=BIG, everything=True)
    assert page.total == await store.scalar(MESSAGE_COUNT)


@pytest.mark.parametrize("seed", range(4))
async def test_the_kept_counts_follow_sends_deletes_purges_and_registrations(tmp_path, seed):
    events = _journal(seed, 500)
    store = Store(str(tmp_path / "live.sqlite"))
    await store.open()
    try:
        for i in range(0, len(events), 7):
            await store.apply(events[i : i + 7], {"x": i})
            if i % 49 == 0:
                await _counted(store)
        await _counted(store)
    finally:
        await store.close()


async def test_a_rebuild_counts_the_messages_afresh(tmp_path):
    """A rebuild drops the triggers while it loads: the count is made at its end, and is exact."""
    from thrum_engine.engine.writer import encode
    from thrum_engine.journal import Journal

    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    events = _journal(3, 600)
    (journal_dir / "all.jsonl").write_bytes(b"".join(encode(e) for e in events))
    journal = Journal(str(journal_dir), str(tmp_path / "q"))
    journal.open()
    db = str(tmp_path / "rebuilt.sqlite")
    swap_in(await build_projection(journal, db, local_from=None), db)
    store = Store(db)
    await store.open()
    try:
        assert await store.scalar(MESSAGE_COUNT) > 0
        await _counted(store)
    finally:
        await store.close()


@pytest.fixture
async def engine(tmp_path, monkeypatch):
    e = await start_inproc_engine(tmp_path, monkeypatch, "growth")
    yield e
    await e.stop()


async def test_team_list_reuses_a_recent_tmux_discovery(engine):
    """`team` asked tmux for its panes on every call (two forks); a discovery under 2 s old is reused,
    and callers arriving together share one."""
    assert engine.tmux is not None
    tmux = engine.tmux
    real, calls = tmux.discover, []

    async def counted() -> None:  # the real discovery, counted
        calls.append(1)
        await real()

    tmux.discover = counted  # type: ignore[method-assign]
    tmux._discovered_at = float("-inf")
    await engine.call("team.list", {"all": True}, Caller.trusted())
    for _ in range(3):
        await engine.call("team.list", {"all": True}, Caller.trusted())
    assert len(calls) == 1
    tmux._discovered_at = float("-inf")  # stale: the next listings discover again, once between them
    await asyncio.gather(*(engine.call("team.list", {"all": True}, Caller.trusted()) for _ in range(4)))
    assert len(calls) == 2


async def test_an_older_database_gets_its_counts_on_upgrade(tmp_path):
    """The migration that adds the kept counts fills them from the messages already there."""
    import sqlite3

    from thrum_engine.store.schema import MIGRATIONS, SCHEMA_VERSION

    store = await _store(tmp_path, 5)
    path = store.path
    await store.close()
    before = next(i for i, m in enumerate(MIGRATIONS) if "CREATE TABLE counts" in m)
    assert before < SCHEMA_VERSION
    # The migrations after it are undone too (they run again on open): issue 16's schedules, keys,
    # asks and held messages.
    later = (
        "DROP TABLE schedules; ALTER TABLE messages DROP COLUMN idem_key; ALTER TABLE messages DROP COLUMN meta;"
        " DROP TABLE asks; DROP TABLE held;"
    )
    with sqlite3.connect(path) as conn:  # back to the schema before the counts
        conn.executescript(
            later
            + "DROP TABLE counts; DROP TABLE inbox_counts;"
            + "".join(
                f"DROP TRIGGER {name};"
                for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                    " AND (name LIKE 'messages_%' OR name LIKE 'inbox_%')"
                )
            )
        )
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(before),))
    assert "counts" in MIGRATIONS[before]
    store = Store(path)
    await store.open()
    try:
        await _counted(store)
        assert await queries.message_count(store) > 0
    finally:
        await store.close()

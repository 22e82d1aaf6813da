"""SQLite projection of the journal (aiosqlite, WAL): schema, event application, queries."""

from thrum_engine.store.db import Store

__all__ = ["Store"]

"""After a compaction a runtime with no session start (Gemini, Cursor) is briefed again by the next
hook that can speak, and the note saved before the compaction is shown once. Real in-process engine;
a hook whose caller hung up is a caller whose connection's `gone` future is done."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from conftest import start_inproc_engine
from thrum_engine.engine.caller import Caller


async def fire(e, event: str, *, hung_up: bool = False) -> dict:
    gone = None
    if hung_up:
        gone = asyncio.get_running_loop().create_future()
        gone.set_result(None)
    params = {"event": event, "runtime": "gemini", "session": "g1"}
    return await e.call("hooks.fire", params, Caller(name="alice", gone=gone))


async def test_a_rebriefing_nobody_received_is_owed_still_and_keeps_its_note(tmp_path, monkeypatch):
    """A review of session 22: the note was removed and the re-briefing counted as given before the
    answer was known to go out, so a hook that gave up lost both."""
    e = await start_inproc_engine(tmp_path, monkeypatch, "compaction")
    try:
        await e.call("agent.register", {"name": "alice", "role": "dev"}, Caller())
        assert "# You are @alice" in (await fire(e, "session-start"))["context"]
        saved = (await fire(e, "pre-compact"))["saved"]
        assert "Before the last compaction" in Path(saved).read_text()
        assert (await fire(e, "prompt-submit", hung_up=True))["context"] is None
        assert "Before the last compaction" in Path(saved).read_text()  # nobody saw it: kept
        again = (await fire(e, "prompt-submit"))["context"]
        assert again.startswith("# You are @alice") and "Before the last compaction" in again
        assert "Before the last compaction" not in Path(saved).read_text()
        later = (await fire(e, "prompt-submit"))["context"] or ""
        assert "# You are @alice" not in later  # once
        assert os.path.exists(saved)
    finally:
        await e.stop()

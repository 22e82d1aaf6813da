"""`thrum hook EVENT --runtime R`: what the hooks Thrum installs run.

Reads the runtime's hook JSON on stdin, asks the engine (`hooks.fire`, one round trip, which also
records the firing), and answers in that runtime's shape. It must never break the runtime: no
repo, no Thrum state, no engine, no identity, a slow or failing engine -- all exit 0 with nothing
to add. It never starts an engine (a hook on every prompt must not spawn daemons). Stdlib only.
"""

from __future__ import annotations

import os
import sys

from thrum_engine.cli.call import CliError, Ctx
from thrum_engine.cli.output import error

EVENTS = ("session-start", "prompt-submit", "stop", "pre-compact")
RUNTIME_EVENT = {  # our event -> the runtime's own event name (for hookSpecificOutput)
    "claude": {"session-start": "SessionStart", "prompt-submit": "UserPromptSubmit"},
    "codex": {"session-start": "SessionStart", "prompt-submit": "UserPromptSubmit"},
    "gemini": {"session-start": "SessionStart", "prompt-submit": "BeforeAgent"},
}
CALL_TIMEOUT = 4.0  # under the shortest timeout we install (5 s for prompt-submit)


def _stdin_json() -> dict:
    if sys.stdin is None or sys.stdin.isatty():
        return {}
    try:
        raw = sys.stdin.buffer.read(4 * 1024 * 1024)
    except (OSError, ValueError):
        return {}
    if not raw.strip():
        return {}
    from thrum_engine.rpc.client import loads

    try:
        data = loads(raw.decode("utf-8", "replace"))
    except (ValueError, StopIteration, SystemError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _workdir(data: dict) -> str | None:
    cwd = data.get("cwd")
    roots = data.get("workspace_roots")
    if not isinstance(cwd, str) and isinstance(roots, list) and roots and isinstance(roots[0], str):
        cwd = roots[0]  # Cursor
    return cwd if isinstance(cwd, str) and os.path.isdir(cwd) else None


def _session_of(data: dict) -> str:
    """The runtime's session id (`session_id`; Cursor's `conversation_id`): the engine answers one
    session's hook once when two installed layers both run it."""
    for key in ("session_id", "conversation_id"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value[:200]
    return ""


def shape(runtime: str, event: str, r: dict) -> str:
    """The runtime's expected stdout for what the engine answered ('' for nothing)."""
    from thrum_engine.cli.output import to_json as dumps  # not `json`: it imports `re`

    context, block = r.get("context"), r.get("block")
    if runtime in ("claude", "codex", "gemini"):
        if event in ("session-start", "prompt-submit") and context:
            name = RUNTIME_EVENT[runtime][event]
            return dumps({"hookSpecificOutput": {"hookEventName": name, "additionalContext": context}})
        if event == "stop" and block:
            return dumps({"decision": "deny" if runtime == "gemini" else "block", "reason": block})
        return "{}" if runtime == "gemini" else ""  # Gemini parses stdout as JSON: never leave it empty
    if runtime == "cursor":
        if event == "session-start" and context:
            return dumps({"additional_context": context})
        if event == "prompt-submit":
            return dumps({"continue": True})
        if event == "stop" and block:
            return dumps({"followup_message": block})
        return "{}"
    return context or block or ""  # an unknown runtime: plain text (what most read as context)


def _fire(ctx: Ctx, params: dict) -> dict:
    """One connection, one call. Straight to the socket, not through `Ctx.client`: a hook never starts
    an engine, so the start-up machinery (`daemon.control`, its lock and file helpers) stays unloaded."""
    from thrum_engine.rpc.client import connect_engine

    me = ctx.me
    if me:
        params["caller"] = me
    client = connect_engine(ctx.layout, CALL_TIMEOUT)
    if client is None:
        raise CliError("the engine is not running")
    try:
        return client.call("hooks.fire", params, CALL_TIMEOUT)
    finally:
        client.close()


def run(ctx: Ctx) -> int:
    event, runtime = ctx.args["event"], ctx.args.get("runtime") or ""
    if event not in EVENTS:
        error(f"unknown hook event {event!r}: one of {', '.join(EVENTS)}")
        return 1
    data = _stdin_json()
    empty = shape(runtime, event, {})
    try:
        where = _workdir(data)
        if where and not ctx.args.get("repo"):
            os.chdir(where)
        if not ctx.layout.initialized():
            raise CliError("not initialised")
        stop_active = bool(data.get("stop_hook_active")) or bool(data.get("loop_count"))
        params = {
            "event": event,
            "runtime": runtime,
            "source": str(data.get("source") or ""),
            "trigger": str(data.get("trigger") or ""),
            "stop_hook_active": stop_active,
            "session": _session_of(data),
        }
        r = _fire(ctx, params)
    except (CliError, OSError):
        r = None
    except Exception:  # noqa: BLE001 -- a hook must never break the runtime, whatever went wrong
        r = None
    out = shape(runtime, event, r) if r else empty
    if out:
        sys.stdout.write(out + "\n")
    return 0

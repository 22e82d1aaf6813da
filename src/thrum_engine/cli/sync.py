"""sync status, sync force: the journal branch's exchange with the remote."""

from __future__ import annotations

from thrum_engine.cli.call import CliError, Ctx
from thrum_engine.cli.output import line


def _cycle_line(c: dict) -> str:
    parts = [f"{c['started_at'][:19].replace('T', ' ')}  {c['reason']}: {c['result']} in {c['seconds']}s"]
    if c.get("committed_shards"):
        parts.append(f"committed {c['committed_shards']} shard(s)")
    if c.get("applied_events"):
        parts.append(f"applied {c['applied_events']} event(s) from other clones")
    if c.get("pushed"):
        parts.append("pushed" + (f" after {c['push_retries']} retries" if c.get("push_retries") else ""))
    if c.get("error"):
        parts.append(f"error: {c['error']}")
    return ", ".join(parts) + "".join(f"\n    note: {n}" for n in c.get("notes") or [])


def status(ctx: Ctx) -> int:
    r = ctx.call("sync.status", {})
    if r.get("last_error") and r.get("remote"):  # failures back the timer off: how to look, how not to wait
        ctx.hint("check the remote with `git remote -v`; `thrum sync force` tries again now")

    def human(r: dict) -> None:
        line(f"Sync: {r['mode']} ({r['why']})")
        if r.get("url"):
            line(f"  remote: {r['remote']} {r['url']}  branch {r['branch']}")
        clone = r.get("clone") or {}  # an older engine's status has none
        if clone.get("id"):
            former = clone.get("former") or []
            line(
                f"  this clone: {clone['id']}" + (f" (wrote as {', '.join(former)} before)" if former else "")
            )
        line(f"  last sync: {r['last_sync_at'] or 'never'}")
        if r.get("last_error"):
            line(f"  last error: {r['last_error']} ({r['failures']} failed in a row)")
        if r.get("pending_writes"):
            line("  local writes waiting for the next cycle")
        if r.get("unpushed_commits"):
            line(f"  {r['unpushed_commits']} local commit(s) not pushed yet")
        if r.get("next_cycle_in_seconds") is not None:
            line(f"  next cycle in {r['next_cycle_in_seconds']}s")
        for c in r.get("collisions") or ():
            theirs = f"{c['theirs']} on {c['their_host']}" if c.get("their_host") else c["theirs"]
            line(
                f"  ⚠ @{c['name']} is registered on two clones: kept {c['kept'] or 'this one'}'s, not {theirs}'s"
            )
        for c in r.get("recent", [])[:5]:
            line("  " + _cycle_line(c))

    return ctx.emit(r, human)


def force(ctx: Ctx) -> int:
    wait = bool(ctx.args.get("wait"))
    r = ctx.call("sync.force", {"wait": wait}, timeout=None if wait else -1.0)

    def human(r: dict) -> None:
        if r.get("queued"):
            line("Sync cycle requested (`thrum sync status` shows its result).")
        else:
            line(_cycle_line(r["cycle"]))

    code = ctx.emit(r, human)
    if wait and r["cycle"]["result"] != "ok":
        raise CliError(f"the sync cycle failed: {r['cycle']['error']}")
    return code

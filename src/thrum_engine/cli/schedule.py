"""`thrum schedule create|list|show|cancel` (issue 16): messages the engine delivers later."""

from __future__ import annotations

from thrum_engine.cli.call import CliError, Ctx
from thrum_engine.cli.messaging import _at, _fmt, _when, body_of
from thrum_engine.cli.output import line


def _how(s: dict) -> str:
    how = f"cron {s['cron']}" if s["kind"] == "cron" else "once"
    flags = [f for f, on in (("ask", s["ask"]), ("until reply", s["until_reply"])) if on]
    return how + (f" [{', '.join(flags)}]" if flags else "")


def _absolute(text: str) -> str:
    """`--at` as an absolute UTC time. A time with no zone (or HH:MM) is the caller's local time,
    so it is read here, in the caller's zone: the engine's may differ (a daemon started from
    another shell, another TZ)."""
    import time
    from datetime import UTC, datetime

    from thrum_engine.errors import ThrumError
    from thrum_engine.schedules.model import parse_at

    try:
        when = parse_at(text, time.time())
    except ThrumError as exc:
        raise CliError(exc.message) from None
    except (OverflowError, OSError, ValueError):
        raise CliError(f"invalid --at {text!r}: out of range") from None
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def create(ctx: Ctx) -> int:
    a = ctx.args
    given = [f for f in ("at", "in", "cron") if a.get(f)]
    if len(given) != 1:
        raise CliError("a schedule needs exactly one of --at TIME, --in DURATION or --cron EXPR")
    if not a["to"]:
        raise CliError("a recipient is required: --to @name, --to @role or --to @me")
    params: dict = {
        "to": list(a["to"]),
        "body": body_of(ctx, a["text"]),
        "format": _fmt(ctx),
        "ask": a["ask"],
        "until_reply": a["until_reply"],
    }
    if a.get("in"):
        seconds = ctx.seconds("--in")
        if seconds is None or seconds <= 0:
            raise CliError(f"--in must be a positive duration (30s, 5m, 2h), not {a['in']!r}")
        params["in_seconds"] = seconds
    elif a.get("at"):
        params["at"] = _absolute(a["at"])
    else:
        params["cron"] = a["cron"]
    r = ctx.call("schedule.create", params)

    def human(r: dict) -> None:
        s = r["schedule"]
        line(f"✓ Schedule created: {s['schedule_id']} → {_at(r['recipients'])}, {_how(s)}")
        line(f"  next: {_when(s['next_at'])}")

    return ctx.emit(r, human)


def list_(ctx: Ctx) -> int:
    r = ctx.call("schedule.list", {"all": ctx.args["all"], "everyone": ctx.args["everyone"]})

    def human(r: dict) -> None:
        if not r["schedules"]:
            line("No pending schedules." if not ctx.args["all"] else "No schedules.")
            return
        for s in r["schedules"]:
            to = ", ".join(s["to"])
            state = f"next {_when(s['next_at'])}" if s["status"] == "pending" else s["status"]
            line(f"{s['schedule_id']}  @{s['author']} → {to}  {_how(s)}  {state}  fired {s['fires']}x")
            line("  " + (s["body"]["content"] or "").split("\n", 1)[0][:100])

    return ctx.emit(r, human)


def show(ctx: Ctx) -> int:
    r = ctx.call("schedule.show", {"schedule_id": ctx.args["schedule_id"]})

    def human(r: dict) -> None:
        s = r["schedule"]
        line(f"{s['schedule_id']}  @{s['author']} → {', '.join(s['to'])}  {_how(s)}")
        line(f"  status: {s['status']}" + (f" ({s['end_reason']})" if s["end_reason"] else ""))
        line(f"  next: {_when(s['next_at'])}")
        if s["fires"]:
            late = " (late)" if s["last_late"] else ""
            line(f"  fired {s['fires']}x, last {_when(s['last_fired_at'])}{late}: {s['last_message_id']}")
        line(f"  thread: {s['thread_id']}")
        for body_line in (s["body"]["content"] or "").rstrip("\n").split("\n"):
            line("  | " + body_line)

    return ctx.emit(r, human)


def cancel(ctx: Ctx) -> int:
    r = ctx.call("schedule.cancel", {"schedule_id": ctx.args["schedule_id"]})
    return ctx.emit(r, lambda r: line(f"✓ Schedule cancelled: {r['schedule']['schedule_id']}"))

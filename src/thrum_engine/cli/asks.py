"""ack, asks, held, release (issue 16)."""

from thrum_engine.cli.call import CliError, Ctx
from thrum_engine.cli.messaging import _when
from thrum_engine.cli.output import line
from thrum_engine.durations import human_age


def ack(ctx: Ctx) -> int:
    params = {"message_id": ctx.args["message_id"]}
    if ctx.args.get("note"):
        params["note"] = ctx.args["note"]
    r = ctx.call("ask.ack", params)

    def human(r: dict) -> None:
        if r["acked"]:
            line(f"✓ Acked: {r['message_id']} (@{r['sender']} is told by the ledger)")
        else:
            line(f"Already answered: {r['message_id']} ({r['already']})")

    return ctx.emit(r, human)


def _print_ask(a: dict, me: str | None) -> None:
    due = ""
    if a.get("due_at"):
        due = "  OVERDUE" if a["overdue"] else f"  due {_when(a['due_at'])}"
    who = f"@{a['sender']} → @{a['recipient']}"
    if me == a["recipient"]:
        who = f"from @{a['sender']}"
    elif me == a["sender"]:
        who = f"to @{a['recipient']}"
    seen = "" if a["seen"] else "  (not seen yet)"
    line(f"{a['message_id']}  {who}  {human_age(a['age_seconds'])} old{due}{seen}")
    line(f"  {a['preview'][:100]}")


def asks(ctx: Ctx) -> int:
    a = ctx.args
    if a["mine"] and a["to_me"]:
        raise CliError("--mine and --to-me are mutually exclusive (neither: both)")
    params = {"mine": a["mine"], "to_me": a["to_me"]}
    agent = ctx.agent_flag("--agent")
    if agent is not None:
        params["agent"] = agent
    r = ctx.call("ask.list", params)

    def human(r: dict) -> None:
        if not r["asks"]:
            line("No open asks.")
        for item in r["asks"]:
            _print_ask(item, r.get("agent"))

    return ctx.emit(r, human)


def held(ctx: Ctx) -> int:
    r = ctx.call("message.held", {"released": ctx.args["released"]})

    def human(r: dict) -> None:
        if not r["held"]:
            line("Nothing held.")
        for h in r["held"]:
            to = ", ".join("@" + x for x in h["recipients"])
            done = f"  released by @{h['released_by']}" if h.get("released_at") else ""
            line(f"{h['message_id']}  @{h['author']} → {to}  held {_when(h['held_at'])}{done}")
            line(f"  {h['reason']}")
            line(f"  {h['preview'].splitlines()[0][:100] if h['preview'] else ''}")

    return ctx.emit(r, human)


def release(ctx: Ctx) -> int:
    ids = ctx.args["message_ids"]
    if ctx.args["all"] and ids:
        raise CliError("--all and message ids are mutually exclusive")
    if not ctx.args["all"] and not ids:
        raise CliError("name held message ids to release, or pass --all")
    r = ctx.call("message.release", {"message_ids": ids, "all": ctx.args["all"]})

    def human(r: dict) -> None:
        if r["total"]:
            line(f"✓ Released {r['total']} held message{'' if r['total'] == 1 else 's'}: delivering now")
        else:
            line("Nothing held.")

    return ctx.emit(r, human)

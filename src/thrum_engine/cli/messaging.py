"""send, reply, inbox, sent, message get/edit/delete/read, wait, purge."""

import sys
import time

from thrum_engine.cli.args import exclusive
from thrum_engine.cli.call import CliError, Ctx, json_value, read_text, stdin_text
from thrum_engine.cli.output import line
from thrum_engine.durations import human_age, iso, parse_duration, parse_iso


def body_of(ctx: Ctx, words: list[str]) -> str:
    a = ctx.args
    sources = [bool(words), bool(a.get("stdin")), bool(a.get("body_file"))]
    if sum(sources) > 1:
        raise CliError("TEXT, --stdin and --body-file are mutually exclusive")
    if a.get("stdin"):
        return stdin_text()
    if a.get("body_file"):
        return read_text(a["body_file"], what="--body-file")
    if not words:
        raise CliError("a message body is required: TEXT, --stdin or --body-file")
    return " ".join(words)


def _fmt(ctx: Ctx) -> str:
    fmt = ctx.args.get("format") or "markdown"
    if fmt not in ("markdown", "plain", "json"):
        raise CliError(f"invalid --format {fmt!r}: use markdown, plain or json")
    return fmt


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _at(names: list[str]) -> str:
    return ", ".join("@" + n for n in names) if names else "nobody"


def idempotency_key(ctx: Ctx) -> str:
    """`--idempotency-key KEY`, or one made for this invocation: the CLI's own retry (the engine
    restarted mid-request) then stores the message once (issue 16)."""
    key = ctx.args.get("idempotency_key")
    if key is not None:
        return key
    import os

    # Letters only (hex with its digits moved to g-p): a run of 20 digits would send the request
    # and the journal line off the fast JSON parser (fastjson's long-number check).
    return "cli-" + os.urandom(12).hex().translate(_NO_DIGITS)


_NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")


def _again(r: dict) -> str:
    return " (nothing new stored: `thrum sent show` has its ledger)" if r.get("duplicate") else ""


def send(ctx: Ctx) -> int:
    a = ctx.args
    to = list(a["to"])
    if a["broadcast"] and to:
        raise CliError("--broadcast and --to are mutually exclusive (use --to @everyone alone)")
    if not to and not a["broadcast"]:
        raise CliError("a recipient is required: --to @name (repeatable), --to @role, or --broadcast")
    structured = None
    if a.get("structured"):
        structured = json_value(a["structured"], "--structured")
    params = {
        "body": body_of(ctx, a["text"]),
        "to": to,
        "broadcast": a["broadcast"],
        "mentions": a["mention"],
        "scopes": a["scope"],
        "refs": a["ref"],
        "format": _fmt(ctx),
        "structured": structured,
    }
    if a.get("thread") is not None:  # `--thread ''` is refused as a bad id, not dropped
        params["thread_id"] = a["thread"]
    ask_flags(ctx, params)
    params["idempotency_key"] = idempotency_key(ctx)
    r = ctx.call("message.send", params, retry=True)

    delivery_hints(ctx, r)

    def human(r: dict) -> None:
        if not report_held(r):
            line(f"{_sent_mark(r)}: {r['message_id']} → {_at(r['recipients'])}{_ask_note(r)}{_again(r)}")
        if r.get("review_id"):  # `--ref review:request`: the message asked for review
            line(f"✓ Review requested: {r['review_id']}")

    return ctx.emit(r, human)


def ask_flags(ctx: Ctx, params: dict) -> None:
    """`--ask` and `--due DURATION` (issue 16); a due time makes it an ask."""
    due = ctx.seconds("--due")
    if due is not None and due <= 0:
        raise CliError("--due must be a positive duration (30m, 2h)")
    if due is not None and due > 366 * 86400:  # the engine's bound (model.SendParams.due)
        raise CliError("--due must be at most 366d")
    if ctx.args.get("ask") or due is not None:
        params["ask"] = True
    if due is not None:
        params["due"] = due


def _sent_mark(r: dict, word: str = "Message") -> str:
    """`✓ Message sent` whether or not anyone could be shown it yet: scripts written for upstream
    grep that line (CLI.md), so "not yet delivered" is the hint line after it. A repeated key's
    answer is the first message, whose delivery this answer does not know."""
    if r.get("duplicate"):
        return "✓ Already stored with this key"
    return f"✓ {word} sent"


def _ask_note(r: dict) -> str:
    if not r.get("ask"):
        return ""
    return f" (ask, due {_when(r['due_at'])})" if r.get("due_at") else " (ask: open until answered or acked)"


def report_held(r: dict) -> bool:
    if not r.get("held"):
        return False
    line(f"⏸ Message held, not delivered: {r['message_id']} → {_at(r['recipients'])}")
    line(f"  {r['held']}")
    return True


def delivery_hints(ctx: Ctx, r: dict) -> None:
    """What a send or a reply has not done yet, as hints: who could not be shown it, or who can
    release it when it is held."""
    if r.get("held"):
        ctx.hint("The operator was told and can release it (`thrum held`, `thrum release`).")
    for u in r.get("undelivered") or ():
        ctx.hint(f"⚠ not yet delivered to @{u['recipient']}: {u['reason']}")


def reply(ctx: Ctx) -> int:
    params = {
        "message_id": ctx.args["message_id"],
        "body": body_of(ctx, ctx.args["text"]),
        "format": _fmt(ctx),
        "idempotency_key": idempotency_key(ctx),
    }
    ask_flags(ctx, params)
    r = ctx.call("message.reply", params, retry=True)
    delivery_hints(ctx, r)

    def human(r: dict) -> None:
        if report_held(r):
            return
        mark = _sent_mark(r, "Reply")
        thread = f" (thread {r['thread_id']})" if r.get("thread_id") else ""
        line(f"{mark}: {r['message_id']} → {_at(r['recipients'])}{thread}{_ask_note(r)}{_again(r)}")

    return ctx.emit(r, human)


# The engine's bounds (model.py), repeated here so the CLI stays free of pydantic: checked first
# for a clear error, enforced by the engine.
MAX_PAGE_SIZE = 1000
MAX_PAGE = 1_000_000


def _when(ts: str | None) -> str:
    """A time to read: `2026-12-02 19:55:00Z (in 3m)` or `(5s ago)`."""
    if not ts:
        return "-"
    left = parse_iso(ts) - time.time()
    rel = f"in {human_age(left)}" if left >= 0 else f"{human_age(-left)} ago"
    return f"{ts[:19].replace('T', ' ')}Z ({rel})"


def ago(ts: str | None) -> str:
    if not ts:
        return ""
    return human_age(time.time() - parse_iso(ts)) + " ago"


# What `print_message` reads: all a human inbox asks the engine for (the whole page, parsed in pure
# Python, was ~0.4 ms of a ~11 ms `thrum inbox`; these keys are half of it).
SHOWN = ["message_id", "agent_id", "to", "created_at", "is_read", "meta", "refs", "reply_to", "body"]


def print_message(m: dict, *, show_read: bool = True) -> None:
    to = ", ".join(m.get("to") or []) or "you"
    flag = ""
    if show_read and m.get("is_read") is False:
        flag = " [new]"
    scheduled = (m.get("meta") or {}).get("scheduled")
    if scheduled:  # delivered by a schedule (issue 16)
        flag += " [scheduled, late]" if scheduled.get("late") else " [scheduled]"
    tasks = [
        r["value"] if r["value"].startswith("bd-") else "bd-" + r["value"]
        for r in m.get("refs") or ()
        if r.get("type") == "bd"
    ]
    if tasks:
        flag += " " + " ".join(f"[{t}]" for t in tasks)
    line(f"{m['message_id']}  @{m['agent_id']} → {to}  {ago(m['created_at'])}{flag}")
    if m.get("reply_to"):
        line(f"  ↳ reply to {m['reply_to']}")
    for body_line in (m["body"]["content"] or "").rstrip("\n").split("\n"):
        line("  " + body_line)
    line()


def inbox(ctx: Ctx) -> int:
    a = ctx.args
    exclusive(a, "--limit", "--page-size")
    params = {
        "unread": a["unread"],
        "mentions": a["mentions"],
        "all": a["all"],
        "oldest": a["oldest"],
        "page": ctx.whole("--page", high=MAX_PAGE) or 1,
    }
    size = ctx.whole("--page-size", high=MAX_PAGE_SIZE) or ctx.whole("--limit", high=MAX_PAGE_SIZE)
    if size:
        params["page_size"] = size
    offset = ctx.whole("--offset", low=0, high=MAX_PAGE * MAX_PAGE_SIZE)
    if offset is not None:
        params["offset"] = offset
    sender = ctx.agent_flag("--from")
    if sender is not None:
        params["from_agent"] = sender
    if a.get("scope"):
        params["scope"] = a["scope"]
    if a.get("ref"):
        params["ref"] = a["ref"]
    if not ctx.json:
        params["fields"] = SHOWN
    r = ctx.call("message.inbox", params)
    if r.get("truncated") and r.get("next_offset") is not None:
        ctx.hint(f"page cut short by its size: `thrum inbox --offset {r['next_offset']}` for the next ones")

    def human(r: dict) -> None:
        first = r.get("offset", (r["page"] - 1) * r["page_size"]) + 1
        if not r["messages"] and r["total"]:  # past the last page: say so, not "no messages"
            line(f"Nothing from {first} on: {_count(r['total'], 'message')} in all · {r['unread']} unread")
            return
        if not r["messages"]:
            line("No messages." if not a["unread"] else "No unread messages.")
            return
        for m in r["messages"]:
            print_message(m)
        line(f"Showing {first}-{first + len(r['messages']) - 1} of {r['total']} · {r['unread']} unread")

    return ctx.emit(r, human)


def _state_word(d: dict) -> str:
    return d["state"] if d.get("delivered", True) else f"{d['state']} (not yet delivered)"


def _print_deliveries(m: dict) -> None:
    states = (
        ", ".join(f"@{d['recipient']} {_state_word(d)}" for d in m.get("deliveries", [])) or "no recipients"
    )
    line(f"{m['message_id']}  {ago(m['created_at'])}  {states}")
    line("  " + (m["body"]["content"] or "").split("\n", 1)[0][:100])


def sent(ctx: Ctx) -> int:
    params = {
        "unread": ctx.args["unread"],
        "undelivered": ctx.args["undelivered"],
        "limit": ctx.whole("--limit", high=1000) or 50,
    }
    to = ctx.agent_flag("--to")
    if to is not None:
        params["to"] = to
    if ctx.args.get("ref"):
        params["ref"] = ctx.args["ref"]
    r = ctx.call("message.sent", params)

    def human(r: dict) -> None:
        held = r.get("held") or []
        if not r["messages"] and not held:
            line("No undelivered messages." if ctx.args["undelivered"] else "No sent messages.")
        for m in r["messages"]:
            _print_deliveries(m)
        for h in held:
            line(f"{h['message_id']}  {ago(h['held_at'])}  held: {h['reason']}")
            line("  " + h["preview"].split("\n", 1)[0][:100])

    return ctx.emit(r, human)


def _took(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"+{seconds * 1000:.0f}ms"
    return f"+{seconds:.1f}s" if seconds < 60 else "+" + human_age(seconds)


def sent_show(ctx: Ctx) -> int:
    r = ctx.call("message.get", {"message_id": ctx.args["message_id"]})

    def human(r: dict) -> None:
        m = r["message"]
        print_message(m, show_read=False)
        for d in m["deliveries"]:
            via = f" (via {d['via']})" if d.get("via") else ""
            line(f"  @{d['recipient']}: {_state_word(d)}{via}")
            for st in d.get("steps", ()):
                how = f" via {st['via']}" if st.get("via") else ""
                took = _took(st.get("after_seconds")) if st["state"] != "stored" else ""
                line(f"    {st['state']:<9} {_when(st['at'])}  {took}{how}".rstrip())
            if not d.get("delivered", True):
                line(
                    f"    not yet delivered ({d.get('waiting_seconds', 0):g}s): {d.get('undelivered_reason', '')}"
                )
            if d.get("ack_note"):
                line(f"    ack note: {d['ack_note']}")

    return ctx.emit(r, human)


def get(ctx: Ctx) -> int:
    r = ctx.call("message.get", {"message_id": ctx.args["message_id"]})
    return ctx.emit(r, lambda r: print_message(r["message"]))


def edit(ctx: Ctx) -> int:
    r = ctx.call(
        "message.edit", {"message_id": ctx.args["message_id"], "body": body_of(ctx, ctx.args["text"])}
    )
    return ctx.emit(r, lambda r: line(f"✓ Message edited: {r['message_id']}"))


def delete(ctx: Ctx) -> int:
    if not ctx.args["force"]:
        raise CliError("deleting a message cannot be undone: pass --force")
    r = ctx.call("message.delete", {"message_id": ctx.args["message_id"], "force": True})
    return ctx.emit(r, lambda r: line(f"✓ Message deleted: {r['message_id']}"))


def read(ctx: Ctx) -> int:
    ids = ctx.args["message_ids"]
    if ctx.args["all"] and ids:
        raise CliError("--all and message ids are mutually exclusive")
    if not ctx.args["all"] and not ids:
        raise CliError("name message ids to mark read, or pass --all")
    r = ctx.call("message.read", {"message_ids": ids, "all": ctx.args["all"]})

    def human(r: dict) -> None:
        if r["marked"]:
            line(f"✓ Marked {_count(r['marked'], 'message')} as read")
        else:
            line("No unread messages.")

    return ctx.emit(r, human)


def wait(ctx: Ctx) -> int:
    """Exit 0 with the message, 1 on timeout, 2 on any error."""
    try:
        timeout = ctx.seconds("--timeout", 30.0)
        if timeout is None or timeout < 0:
            raise CliError("--timeout must not be negative")
        params: dict = {"timeout": timeout}
        after = ctx.seconds("--after")
        if after is not None:
            params["after"] = after
        if ctx.args.get("scope"):
            params["scope"] = ctx.args["scope"]
        for flag, key in (("--mention", "mention"), ("--from", "from_agent")):
            name = ctx.agent_flag(flag)
            if name is not None:
                params[key] = name
        r = ctx.call("message.wait", params, timeout=timeout + 30.0)
    except CliError as exc:
        exc.code = 2
        raise
    if r["status"] == "timeout":
        if ctx.json:
            ctx.emit(r, None)
        elif not ctx.quiet:
            sys.stderr.write(f"No message within {timeout:g}s\n")
        return 1

    def human(r: dict) -> None:
        for m in r["messages"]:
            print_message(m, show_read=False)

    return ctx.emit(r, human)


def purge(ctx: Ctx) -> int:
    a = ctx.args
    exclusive(a, "--before", "--all")
    if not a["before"] and not a["all"]:
        raise CliError("purge needs --before DUR|DATE or --all")
    params: dict = {"all": a["all"], "confirm": a["confirm"]}
    if a["before"]:
        text = a["before"]
        try:
            params["before"] = iso(parse_iso(text))
        except ValueError:
            try:
                params["before"] = iso(time.time() - abs(parse_duration(text)))
            except ValueError:
                raise CliError(
                    f"invalid --before {text!r}: a duration (7d, 12h) or a date (2026-01-31)"
                ) from None
    r = ctx.call("message.purge", params)

    def human(r: dict) -> None:
        if r["purged"]:
            line(f"✓ Purged {_count(r['messages'], 'message')} created before {r['before']}")
        elif r["messages"]:
            line(
                f"{_count(r['messages'], 'message')} created before {r['before']} would be purged;"
                " add --confirm to delete them"
            )
        else:
            line("No messages to purge.")

    return ctx.emit(r, human)

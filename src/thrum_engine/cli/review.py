"""review request|list|show|comments|submit|preflight|merge|history: the review queue from a shell, for agents
(ask for review, read what the reviewer said) and scripts (merge what was approved)."""

from __future__ import annotations

from thrum_engine.cli.args import exclusive
from thrum_engine.cli.call import Ctx
from thrum_engine.cli.output import line
from thrum_engine.durations import human_age


def _where(c: dict) -> str:
    """A comment's place as `--comment` takes it: `PATH:LINE`, `PATH:START-END`, `PATH (file)`."""
    if not c.get("line"):
        return f"{c['path']} (file)"
    end = c.get("end_line")
    return f"{c['path']}:{c['line']}" + (f"-{end}" if end and end != c["line"] else "")


def _which(ctx: Ctx) -> dict:
    """A review by its id, or an agent's (`--agent A`, or a bare `A` / `@A` where the id goes: the
    other review commands take the agent's name there, and `review show impl` said "invalid review
    id 'impl'", walk session 21)."""
    params = {}
    given = ctx.args.get("id")
    agent = ctx.agent_flag("--agent")
    if given and not given.startswith("rev_") and agent is None:
        agent = given.removeprefix("@")
    elif given:
        params["review_id"] = given
    if agent is not None:
        params["agent"] = agent
    return params


def request(ctx: Ctx) -> int:
    params = {"note": ctx.args.get("note") or ""}
    agent = ctx.agent_flag("--agent")
    if agent is not None:
        params["agent"] = agent
    r = ctx.call("review.request", params)

    def human(r: dict) -> None:
        line(f"✓ Review requested for @{r['agent']} ({r['branch']} → {r['target']}): {r['review_id']}")

    return ctx.emit(r, human)


def list_(ctx: Ctx) -> int:
    r = ctx.call("review.list", {"all": ctx.args["all"]})

    def human(r: dict) -> None:
        if not r["reviews"]:
            line("Nothing to review.")
        for e in r["reviews"]:
            tests = e["tests"]["label"] if e["tests"] else "no tests run"
            changed = "  changed since your review" if e["changed_since_review"] else ""
            asked = f"  asked {human_age(e['request_age'])} ago" if e["request_age"] is not None else ""
            dirty = (
                f"  {e['uncommitted'] + e['untracked']} uncommitted"
                if e["uncommitted"] + e["untracked"]
                else ""
            )
            if e.get("no_worktree"):
                line(
                    f"{'●' if e['needs_you'] else ' '} @{e['agent']}  {e['branch'] or 'detached'}  {e['status']}"
                    f"  no worktree on this machine{asked}"
                )
                continue
            line(
                f"{'●' if e['needs_you'] else ' '} @{e['agent']}  {e['branch'] or 'detached'}  {e['status']}"
                f"  ↑{e['ahead']} ↓{e['behind']}  {e['files']} files +{e['added']} −{e['removed']}"
                f"{dirty}  {tests}{asked}{changed}"
            )

    return ctx.emit(r, human)


def show(ctx: Ctx) -> int:
    r = ctx.call("review.show", _which(ctx))

    def human(r: dict) -> None:
        rv = r["review"]
        line(f"{rv['id']}  @{rv['agent']}  {rv['branch']} → {rv['target']}  {rv['status']}")
        if rv.get("note"):
            line(f"  note: {rv['note']}")
        st = r["state"]
        if st:
            line(
                f"  ↑{st['ahead']} ↓{st['behind']}  {len(st['files'])} files +{st['added']} −{st['removed']}"
            )
        if r.get("changed_since_review"):
            line("  changed since the last review")
        for c in r["commits"]:
            line(f"  {c['sha'][:8]} {c['subject']}")
        for rd in r["rounds"]:
            line(
                f"\n{rd['at']} @{rd['reviewer']}: {rd['verdict'].replace('_', ' ')} ({len(rd['comments'])} comments)"
            )
            if rd["summary"]:
                line(f"  {rd['summary']}")
            for c in rd["comments"]:
                where = _where(c)
                line(f"  {where}: {c['body']}")
        for m in r["replies"]:
            line(f"\n↩ @{m['author']} {m['created_at']}: {m['content']}")

    return ctx.emit(r, human)


def comments(ctx: Ctx) -> int:
    r = ctx.call("review.comments", _which(ctx))

    def human(r: dict) -> None:
        if r["review_id"] is None:
            line(f"No review of @{r['agent']} yet.")
            return
        verdict = (r["verdict"] or "pending").replace("_", " ")
        line(
            f"{r['review_id']}  @{r['agent']}  {verdict}"
            + ("  (changed since)" if r["changed_since_review"] else "")
        )
        if r["summary"]:
            line(f"  {r['summary']}")
        for c in r["comments"]:
            where = _where(c)
            line(
                f"{'~' if c['outdated'] else '-'} {where}: {c['body']}"
                + ("  [outdated]" if c["outdated"] else "")
            )
        for c in r.get("pending") or []:
            line(f"* pending {_where(c)}: {c['body']}")

    return ctx.emit(r, human)


def comment_of(text: str) -> dict:
    """`--comment`'s value as a review comment: `PATH:LINE: TEXT`, `PATH:START-END: TEXT` (a
    range) or `PATH: TEXT` (the whole file), the shape of a compiler's or grep's line, so a
    reviewer agent writes what it reads. The first `:LINE:` decides, so a colon in the text is
    kept; a line comment is on the branch's side of the diff."""
    from thrum_engine.cli.call import CliError

    at = text.find(":")
    while at > 0:
        span, sep, body = text[at + 1 :].partition(":")
        first, dash, last = span.partition("-")
        if sep and first.isdigit() and (not dash or last.isdigit()):
            if int(first) < 1 or (dash and int(last) < int(first)):
                raise CliError(
                    f"--comment {text!r}: lines start at 1, and a range ends at or after its start"
                )
            if not body.strip():
                raise CliError(f"--comment {text!r}: the comment needs text after PATH:LINE:")
            out = {"path": text[:at], "line": int(first), "body": body.strip()}
            if dash:
                out["end_line"] = int(last)
            return out
        at = text.find(":", at + 1)
    path, sep, body = text.partition(": ")
    if sep and path.strip() and body.strip():
        return {"path": path, "body": body.strip()}
    raise CliError(f"--comment {text!r}: write PATH:LINE: TEXT (or PATH:START-END: TEXT, or PATH: TEXT)")


def submit(ctx: Ctx) -> int:
    a = ctx.args
    exclusive(a, "--approve", "--request-changes")
    if not (a["approve"] or a["request_changes"]):
        from thrum_engine.cli.call import CliError

        raise CliError("say --approve or --request-changes")
    r = ctx.call(
        "review.submit",
        {
            "agent": a["name"],
            "verdict": "approve" if a["approve"] else "request_changes",
            "summary": a.get("summary") or "",
            "comments": [comment_of(c) for c in a["comment"]],
        },
    )

    def human(r: dict) -> None:
        what = "Approved" if r["verdict"] == "approve" else "Requested changes from"
        line(
            f"✓ {what} @{r['agent']} ({r['comments']} comments): {r['review_id']}, message {r['message_id']}"
        )

    return ctx.emit(r, human)


def _strategy(a: dict) -> str:
    exclusive(a, "--squash", "--rebase")
    return "squash" if a["squash"] else "rebase" if a["rebase"] else "merge"


def preflight(ctx: Ctx) -> int:
    r = ctx.call("review.preflight", {"agent": ctx.args["name"], "strategy": _strategy(ctx.args)})

    def human(r: dict) -> None:
        line(
            f"{r['strategy']} {r['branch'] or 'HEAD (detached)'} → {r['target']}:"
            f" ↑{r['ahead']} ↓{r['behind']}, {r['files']} files"
        )
        for p in r["problems"]:
            line(f"{'!' if p['forceable'] else '✗'} {p['text']}")
            for f in p["files"][:10]:
                line(f"    {f}")
        line(
            "✓ ready to merge"
            if r["ok"]
            else "! mergeable only with --force"
            if r["mergeable"]
            else "✗ not mergeable"
        )

    code = ctx.emit(r, human)
    # A check: `thrum review preflight A && thrum review merge A` runs the merge only when it would
    # go through (as `doctor` exits 1 on a problem); what --force would take is in the JSON
    # (`mergeable`) and in the lines above (walk: exit 0, then the plain merge refused).
    return code if r["ok"] else 1


def merge(ctx: Ctx) -> int:
    a = ctx.args
    r = ctx.call(
        "review.merge",
        {
            "agent": a["name"],
            "strategy": _strategy(a),
            "force": a["force"],
            "teardown": a["teardown"],
            "delete_branch": a["delete_branch"],
            "keep_agent": a["keep_agent"],
        },
        timeout=None,
    )

    def human(r: dict) -> None:
        if r["forced"]:
            line("! forced past: " + ", ".join(r["forced"]))
        line(
            f"✓ Merged @{r['agent']}'s {r['branch']} into {r['target']} ({r['strategy']}): {r['merged_commit'][:12]}"
        )
        t = r["teardown"]
        if t:
            line(f"✓ Archived as {t['archive_ref']}; removed worktree {t['name']}")
            if t["branch_deleted"]:
                line(f"✓ Deleted branch {r['branch']}")
            for n in t["agents_deleted"]:
                line(f"✓ Ended agent @{n}")

    return ctx.emit(r, human)


def history(ctx: Ctx) -> int:
    from thrum_engine.review.words import history_line

    params: dict = {}
    agent = ctx.agent_flag("--agent")
    if agent is not None:
        params["agent"] = agent
    limit = ctx.whole("--limit", high=1000)  # the engine's bound (review.history)
    if limit is not None:
        params["limit"] = limit
    r = ctx.call("review.history", params)

    def human(r: dict) -> None:
        if not r["events"]:
            line("No reviews yet.")
        for e in r["events"]:
            line(f"{e['at'][:16].replace('T', ' ')}  {e['review_id']}  {history_line(e)}")

    return ctx.emit(r, human)

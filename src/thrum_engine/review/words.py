"""How a review event reads, one line: the CLI's `review history`, the console's feed and an
agent's conversation say it the same way. Pure, and light enough for the CLI path."""

from __future__ import annotations


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def history_line(e: dict, me: str | None = None) -> str:
    """One `review.history` event, e.g. "@ada requested changes on @alice's feature/alice
    (2 comments): return 2"; `me` reads as "you"."""

    def who(name: str) -> str:
        return "you" if name == me else f"@{name}"

    author, agent, kind = who(e["author"]), who(e["agent"]), e["kind"]
    work = f"{agent}'s {e['branch'] or 'work'}"
    if kind == "requested":
        asked = f"{agent} asked for review of {e['branch'] or 'its work'}"
        if e["author"] != e["agent"]:
            asked = f"{author} asked for review of {work}"
        return asked + (f": {_one_line(e.get('note'))}" if e.get("note") else "")
    if kind == "merged":
        return f"{author} merged {work} into {e['target']} ({e['strategy']}, {e['merged_commit'][:8]})"
    n = e.get("comments") or 0
    verb = "approved" if kind == "approved" else "requested changes on"
    return (
        f"{author} {verb} {work}"
        + (f" ({n} comment{'s' if n != 1 else ''})" if n else "")
        + (f": {_one_line(e.get('summary'))}" if e.get("summary") else "")
    )

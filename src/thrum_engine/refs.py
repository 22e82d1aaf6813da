"""Refs that name work items (issue 16): a beads task is `bd-123`, referred to as `--ref bd:123`
(or `bd:bd-123`) on a message and as `session set-task bd-123` on a session. One spelling, the
task chip, is shown everywhere (`team`, `prime`, `who-has`, the feed, the console)."""

from __future__ import annotations

BEADS = "bd"


def same_ref_values(kind: str, value: str) -> list[str]:
    """The values a ref filter matches: for beads, `123` and `bd-123` are one task."""
    if kind != BEADS:
        return [value]
    bare = value.removeprefix("bd-")
    return [bare, "bd-" + bare]


def chip(kind: str, value: str) -> str:
    """The task chip for a ref: `bd:123` -> `bd-123`; other kinds as `kind:value`."""
    if kind == BEADS:
        return value if value.startswith("bd-") else "bd-" + value
    return f"{kind}:{value}"


def task_chip(task: str) -> str:
    """A session's task as a chip: `bd:123` and `bd-123` -> `bd-123`; anything else as written."""
    task = task.strip()
    if task.startswith("bd:"):
        return chip(BEADS, task[3:])
    return task


def message_tasks(refs: list[dict]) -> list[str]:
    """The task chips of a message's refs (beads refs only: the work items)."""
    return [chip(r["type"], r["value"]) for r in refs if r.get("type") == BEADS and r.get("value")]

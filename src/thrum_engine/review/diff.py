"""Git's unified diff as data: files, hunks and lines with their old and new line numbers.

Pure (no IO), so the engine (quoting code in a review, finding outdated comments) and the console
(drawing the diff) read a diff the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")

# What `git diff` is asked for everywhere: no colour, no external tools, renames found, paths raw.
DIFF_ARGS = ("-c", "core.quotePath=false", "diff", "--no-color", "--no-ext-diff", "-M")


@dataclass(slots=True)
class DiffLine:
    """`kind`: "@" a hunk header, " " context, "+" added, "-" removed, "\\" a no-newline note."""

    kind: str
    text: str
    old: int | None = None
    new: int | None = None


@dataclass(slots=True)
class FileDiff:
    path: str
    old_path: str
    status: str = "M"  # A added, D deleted, M modified, R renamed
    binary: bool = False
    added: int = 0
    removed: int = 0
    lines: list[DiffLine] = field(default_factory=list)
    hunks: list[int] = field(default_factory=list)  # index in `lines` of each hunk header

    def line_at(self, new: int | None = None, old: int | None = None) -> DiffLine | None:
        """The diff line showing new-side line `new` (or old-side `old`), if the diff shows it."""
        for ln in self.lines:
            if ln.kind == "@":
                continue
            if new is not None and ln.new == new and ln.kind != "-":
                return ln
            if new is None and old is not None and ln.old == old and ln.kind != "+":
                return ln
        return None


def _strip_prefix(p: str) -> str:
    p = p.rstrip("\n")
    if p.startswith('"') and p.endswith('"'):
        p = (
            p[1:-1]
            .encode("latin-1", "backslashreplace")
            .decode("unicode_escape")
            .encode("latin-1")
            .decode("utf-8", "replace")
        )
    return p[2:] if p[:2] in ("a/", "b/") else p


def _paths_of_header(rest: str) -> tuple[str, str]:
    """`a/X b/Y` from a `diff --git` line; when X == Y (the usual case) spaces in it are fine."""
    half = (len(rest) - 1) // 2
    if rest[:half][2:] == rest[half + 1 :][2:]:
        return rest[:half][2:], rest[half + 1 :][2:]
    a, _, b = rest.partition(" b/")
    return _strip_prefix(a), b


def _header_line(cur: FileDiff, raw: str) -> None:
    if raw.startswith("new file mode"):
        cur.status = "A"
    elif raw.startswith("deleted file mode"):
        cur.status = "D"
    elif raw.startswith("rename from "):
        cur.status, cur.old_path = "R", raw[12:]
    elif raw.startswith("rename to "):
        cur.path = raw[10:]
    elif raw.startswith(("Binary files ", "GIT binary patch")):
        cur.binary = True
    elif raw.startswith("--- ") and raw[4:] != "/dev/null":
        cur.old_path = _strip_prefix(raw[4:])
    elif raw.startswith("+++ ") and raw[4:] != "/dev/null":
        cur.path = _strip_prefix(raw[4:])


def parse_diff(text: str) -> list[FileDiff]:
    files: list[FileDiff] = []
    cur: FileDiff | None = None
    old_no = new_no = 0
    for raw in text.split("\n"):
        if raw.startswith("diff --git "):
            a, b = _paths_of_header(raw[11:])
            cur = FileDiff(path=b, old_path=a)
            files.append(cur)
            continue
        if cur is None:
            continue
        if raw.startswith("@@"):
            m = _HUNK.match(raw)
            if m is None:
                continue
            old_no, new_no = int(m.group(1)), int(m.group(3))
            cur.hunks.append(len(cur.lines))
            cur.lines.append(DiffLine("@", raw))
            continue
        if not cur.hunks:
            _header_line(cur, raw)
            continue
        tag = raw[:1]
        if tag == "+":
            cur.lines.append(DiffLine("+", raw[1:], None, new_no))
            cur.added += 1
            new_no += 1
        elif tag == "-":
            cur.lines.append(DiffLine("-", raw[1:], old_no, None))
            cur.removed += 1
            old_no += 1
        elif tag == " ":
            cur.lines.append(DiffLine(" ", raw[1:], old_no, new_no))
            old_no += 1
            new_no += 1
        elif tag == "\\":
            cur.lines.append(DiffLine("\\", raw))
    return files

"""The runtime files Thrum installs into a worktree, kept out of `git status` there and out of the
safety audits, and only those.

An install into a linked worktree (`worktree create --runtime X`, `tmux create`, the console's
new-agent dialog) or with `--stealth` adds anchored rules for the files it created to the common
`info/exclude` (linked worktrees read only the common git dir's) and records each file's hash in
the worktree's `.thrum/runtime-files.json`. A rule there hides a path in every worktree, so the
audits (teardown, review, merge) add back any file a Thrum rule hides that is not, byte for byte,
the one Thrum installed in that worktree: a user's own `.mcp.json`, or Thrum's file the user
edited, still counts as work. Stdlib only.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

HEADER = "# thrum: runtime files"
MANIFEST = os.path.join(".thrum", "runtime-files.json")


def _common_exclude(worktree: str) -> str:
    from thrum_engine.layout import common_git_dir

    return os.path.join(common_git_dir(worktree), "info", "exclude")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError):
        return ""


def digest(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


def rules(worktree: str) -> set[str]:
    """The anchored paths (without the `/`) Thrum's runtime sections of the common exclude hide."""
    out: set[str] = set()
    inside = False
    for raw in _read(_common_exclude(worktree)).splitlines():
        line = raw.strip()
        if line.startswith("#"):
            inside = line.startswith(HEADER)
            continue
        if inside and line.startswith("/") and len(line) > 1:
            out.add(line[1:])
    return out


def exclude(worktree: str, rels: list[str], why: str) -> list[str]:
    """Anchored rules for `rels` in the common `info/exclude`; returns the rules added."""
    path = _common_exclude(worktree)
    text = _read(path)
    have = set(text.split())
    missing = [f"/{r}" for r in dict.fromkeys(rels) if f"/{r}" not in have]
    if missing:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(
                ("" if not text or text.endswith("\n") else "\n")
                + f"{HEADER} ({why})\n"
                + "".join(m + "\n" for m in missing)
            )
    return missing


def manifest(worktree: str) -> dict[str, str]:
    try:
        data = json.loads(_read(os.path.join(worktree, MANIFEST)) or "{}")
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def record(worktree: str, rels: list[str]) -> None:
    """Remember what Thrum installed here, by content hash (the worktree's `.thrum/`, itself excluded)."""
    data = manifest(worktree)
    for rel in rels:
        h = digest(os.path.join(worktree, rel))
        if h:
            data[rel] = h
    path = os.path.join(worktree, MANIFEST)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def hidden_not_ours(worktree: str) -> list[str]:
    """Untracked files in `worktree` that only a Thrum runtime rule keeps out of `git status` and
    that are not the file Thrum installed there: the audits count them as untracked work."""
    paths = rules(worktree)
    if not paths:
        return []
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--", *sorted(paths)],
        cwd=worktree,
        capture_output=True,
        text=True,
        check=False,
    )
    candidates = [p for p in listed.stdout.split("\0") if p in paths]
    # Only those hidden by Thrum's own rule: a file the user ignores in .gitignore stays ignored.
    ours_rule = hidden_by_thrum(worktree, candidates, {f"/{p}" for p in paths})
    installed = manifest(worktree)
    return sorted(p for p in ours_rule if installed.get(p) != digest(os.path.join(worktree, p)))


def hidden_by_thrum(worktree: str, candidates: list[str], patterns: set[str]) -> list[str]:
    """Those of the ignored `candidates` (paths relative to `worktree`; a directory with its `/`)
    that one of Thrum's `patterns` in the common `info/exclude` hides, not a rule of the user's."""
    if not candidates:
        return []
    exclude_file = os.path.realpath(_common_exclude(worktree))
    check = subprocess.run(
        ["git", "check-ignore", "-v", "-z", "--stdin"],
        cwd=worktree,
        input="".join(p + "\0" for p in candidates),
        capture_output=True,
        text=True,
        check=False,
    )
    fields = check.stdout.split("\0")
    out: list[str] = []
    for i in range(0, len(fields) - 3, 4):
        source, _line, pattern, path = fields[i : i + 4]
        src = source if os.path.isabs(source) else os.path.join(worktree, source)
        if os.path.realpath(src) == exclude_file and pattern in patterns:
            out.append(path)
    return out

"""The merge layer every runtime installer writes through: plan first, write last, never clobber.

A `Workspace` reads the files of one worktree once and collects what each runtime wants them to
become; nothing touches the disk until `apply`. The rules, the same for every format:

* the user's own entries are kept (Thrum only adds or replaces what it recognises as its own: a
  hook whose command is `thrum hook ...`, an MCP server named `thrum`, a marked block);
* a file that does not parse is an error naming it, and nothing at all is written;
* Thrum's existing entries are left as they are unless `force` (so a re-run is a byte-identical
  no-op, and a user's tweak to Thrum's entry survives until they ask for a refresh);
* a file whose content would not change is not rewritten (its bytes, mode and mtime stay).
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
import shlex
import shutil
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from thrum_engine.errors import InvalidInput

MD_BEGIN = "<!-- thrum:begin (managed by thrum: `thrum init --force` rewrites this block) -->"
MD_END = "<!-- thrum:end -->"
TOML_BEGIN = "# thrum:begin (managed by thrum: `thrum init --force` rewrites this block)"
TOML_END = "# thrum:end"
_MD_BLOCK = re.compile(r"<!-- thrum:begin[^\n]*-->\n.*?<!-- thrum:end -->\n?", re.DOTALL)
_TOML_BLOCK = re.compile(r"# thrum:begin[^\n]*\n.*?# thrum:end\n?", re.DOTALL)
# A hook command Thrum installed: `thrum hook EVENT`, `/abs/path/thrum hook EVENT`, quoted or not.
_OURS = re.compile(r"""(?:^|[\s/'"])thrum['"]?\s+hook\s""")


# How a runtime reads its JSON config files (checked against each runtime's loader and docs):
# "json" strict (Claude Code, Cursor: a trailing comma in .cursor/mcp.json is an error there; Amp;
# Codex's hooks.json); "comments": `//` and `/* */` comments
# are stripped first (Gemini CLI: strip-json-comments in its settings loader); "jsonc": comments and
# trailing commas (OpenCode: "OpenCode supports JSON and JSONC", opencode.json and opencode.jsonc).
JSON_DIALECT: dict[str, str] = {"gemini": "comments", "opencode": "jsonc"}


def strip_jsonc(text: str, *, trailing_commas: bool) -> str:
    """`text` with its comments (and, if asked, trailing commas) blanked out, strings left alone:
    what the runtimes that read JSONC parse. Comments become spaces, so error positions hold."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif ch == "," and trailing_commas and re.match(r"\s*[}\]]", _rest(text, i + 1)):
            out.append(" ")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _rest(text: str, start: int) -> str:
    """What follows `start` with comments skipped (a trailing comma may be followed by one)."""
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", text[start : start + 4096], flags=re.DOTALL)


def loads(text: str, dialect: str = "json") -> Any:
    """Parse a config file the way the runtime that reads it does (see JSON_DIALECT)."""
    if dialect == "json":
        return json.loads(text)
    return json.loads(strip_jsonc(text, trailing_commas=dialect == "jsonc"))


def _changed_entries(before: dict, after: dict) -> list[tuple[str, Any]]:
    """The entries (`key.sub`, or `key`) that differ between two versions of a config object, with
    their new values: what to tell a user who adds them by hand."""
    out: list[tuple[str, Any]] = []
    for k, v in after.items():
        old = before.get(k, {})
        if old == v:
            continue
        if isinstance(old, dict) and isinstance(v, dict):
            out += [(f"{k}.{k2}", v2) for k2, v2 in v.items() if old.get(k2) != v2]
        else:
            out.append((k, v))
    return out


def _entries_text(entries: list[tuple[str, Any]]) -> str:
    """One entry with its value (short enough for one line), several by name."""
    if len(entries) == 1:
        return f"`{entries[0][0]}` = {json.dumps(entries[0][1], ensure_ascii=False)}"
    return ", ".join(f"`{path}`" for path, _ in entries)


class InstallError(InvalidInput):
    """A file the installer cannot merge into (it does not parse, or holds the wrong shape)."""


def is_thrum_hook(command: object) -> bool:
    return isinstance(command, str) and bool(_OURS.search(command))


def thrum_executable() -> str:
    """The `thrum` this process runs from (a venv nobody activated included), else the one on PATH."""
    here = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "thrum")
    if os.access(here, os.X_OK):
        return here
    return shutil.which("thrum") or "thrum"


def thrum_command() -> str:
    """How installed hooks and MCP entries start thrum: the bare name when the PATH finds this very
    thrum (robust across worktrees and machines sharing the file), else its absolute path, so an
    install in an unactivated venv still works from inside the runtime."""
    exe = thrum_executable()
    found = shutil.which("thrum")
    if found and os.path.realpath(found) == os.path.realpath(exe):
        return "thrum"
    return shlex.quote(exe)


def thrum_argv() -> list[str]:
    """`thrum_command()` as an argv head (MCP configs take a command and args, not a shell line)."""
    cmd = thrum_command()
    return ["thrum"] if cmd == "thrum" else [thrum_executable()]


def hook_command(event: str, runtime: str) -> str:
    return f"{thrum_command()} hook {event} --runtime {runtime}"


@dataclass
class Change:
    rel: str
    old: str | None
    new: str
    parts: list[str] = field(default_factory=list)  # "runtime:part" that touched it

    @property
    def action(self) -> str:
        if self.old is None:
            return "create"
        return "keep" if self.old == self.new else "update"


class Workspace:
    """The files of one worktree as the installers would leave them."""

    # Modes of the files and directories an install creates (an existing file keeps its own).
    file_mode = 0o644
    dir_mode = 0o755
    scope = "the worktree"  # where every file it writes must really be (UserWorkspace: the home)

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.changes: dict[str, Change] = {}
        self.notes: list[str] = []
        # Thrum's own content the user changed, left as it is (without force): an install that
        # writes nothing must not read as "all in place" when doctor would flag the edit.
        self.kept: list[str] = []

    def keep_edited(self, what: str) -> None:
        """Record that `what` (a file, a block in one, an entry) differs from Thrum's and was kept."""
        if what not in self.kept:
            self.kept.append(what)

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def real_path(self, rel: str) -> str:
        """Where `rel` really is, refused when a link takes it out of `scope`: the file itself or
        any directory above it. A cloned repo may commit `.codex -> ../../.codex`, and following
        it would merge Thrum's hooks and MCP server into the user's global config, for every
        project, unasked; so the parents are resolved too, not only the last name."""
        real = os.path.realpath(self.path(rel))
        if real.startswith(self.root + os.sep):
            return real
        parts = rel.split("/")
        first = 2 if rel.startswith("~/") else 1  # UserWorkspace's `~/` stands for the root
        link = next(
            (
                "/".join(parts[:i])
                for i in range(first, len(parts) + 1)
                if os.path.islink(self.path("/".join(parts[:i])))
            ),
            rel,
        )
        target = os.path.realpath(self.path(link))
        raise InstallError(f"{link} is a link out of {self.scope} ({target}); not touching it")

    def read(self, rel: str) -> str | None:
        if rel in self.changes:
            return self.changes[rel].new
        path = self.real_path(rel)
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            raise InstallError(f"{rel} is not UTF-8 text; fix or remove it, nothing was written") from None
        except OSError as exc:
            raise InstallError(f"cannot read {rel}: {exc.strerror or exc}") from None

    def write(self, rel: str, text: str, part: str) -> None:
        ch = self.changes.get(rel)
        if ch is None:
            ch = self.changes[rel] = Change(rel, self.read(rel), text)
        ch.new = text
        ch.parts.append(part)

    # -- formats --

    def owned_file(self, rel: str, text: str, part: str, force: bool) -> None:
        """A file that is Thrum's alone (a skill, a command): created, or rewritten with force."""
        old = self.read(rel)
        if old is not None and old != text and not force:
            self.keep_edited(rel)
        self.write(rel, text if old is None or force else old, part)

    def block(
        self, rel: str, body: str, part: str, force: bool, *, heading: str = "", limit: int | None = None
    ) -> None:
        """Thrum's block between markers in a Markdown file; the rest of the file is the user's.
        `limit`: the runtime reads only the file's first `limit` bytes (Codex: AGENTS.md, 32 KiB),
        so a block that would end past it goes first in the file instead (and one already there,
        past the cut, is moved up: where it is, the agent never sees it)."""
        old = self.read(rel)
        block = f"{MD_BEGIN}\n{body.rstrip()}\n{MD_END}\n"
        if old is None:
            new = (heading + "\n\n" if heading else "") + block
        elif m := _MD_BLOCK.search(old):
            new = _MD_BLOCK.sub(lambda _m: block, old, count=1) if force else old
            if not force and m.group(0).rstrip("\n") != block.rstrip("\n"):
                self.keep_edited(f"Thrum's block in {rel}")
            if limit is not None and not block_within(new, limit):
                kept = (block if force else m.group(0)).rstrip("\n") + "\n"
                new = kept + "\n" + _MD_BLOCK.sub("", old, count=1)
        else:
            new = (
                old + ("" if old.endswith("\n") or not old else "\n") + ("\n" if old.strip() else "") + block
            )
            if limit is not None and not block_within(new, limit):
                new = block + "\n" + old
                self.notes.append(
                    f"{rel} is over {limit // 1024} KiB, more than the runtime reads: Thrum's block"
                    " goes at its top, where it is read"
                )
        self.write(rel, new, part)

    def json(
        self,
        rel: str,
        part: str,
        mutate: Callable[[dict], None],
        *,
        dialect: str = "json",
        force: bool = False,
    ) -> None:
        """Merge into a JSON object file: `mutate` edits a copy; unchanged data keeps the old bytes.
        `dialect`: how the runtime reads the file (JSON_DIALECT). A file with comments is not
        rewritten unless `force` (json.dumps would drop them, and they are the user's): the error
        names the entries to add by hand; entries already there leave the file as it is."""
        old = self.read(rel)
        data: Any = {}
        if old is not None and old.strip():
            try:
                data = loads(old, dialect)
            except ValueError as exc:
                what = "JSON" if dialect == "json" else "JSON (comments allowed)"
                raise InstallError(
                    f"{rel} is not valid {what} ({exc}); fix it first, nothing was written"
                ) from None
            if not isinstance(data, dict):
                raise InstallError(f"{rel} is not a JSON object; fix it first, nothing was written")
        before = copy.deepcopy(data)
        mutate(data)
        if old is not None and data == before:
            self.write(rel, old, part)
            return
        if old is not None and dialect != "json" and _has_comments(old):
            if not force:
                entries = _entries_text(_changed_entries(before, data))
                raise InstallError(
                    f"{rel} has comments, which rewriting it would drop: add {entries} to it"
                    " by hand (`--dry-run --force` shows them), or pass --force to rewrite it without"
                    " its comments; nothing was written"
                )
            self.notes.append(f"{rel}: rewritten without its comments (--force)")
        self.write(rel, json.dumps(data, indent=2, ensure_ascii=False) + "\n", part)

    def toml_block(
        self, rel: str, block_body: str, part: str, force: bool, *, present: Callable[[dict], bool]
    ) -> None:
        """Thrum's tables in a TOML file, as a marked block (the stdlib reads TOML but cannot write
        it, and a block keeps the user's comments and layout). `present(data)` says whether the
        user already defines what the block would (then the block is not added)."""
        old = self.read(rel)
        if old is not None:
            try:
                outside = tomllib.loads(_TOML_BLOCK.sub("", old))
            except tomllib.TOMLDecodeError as exc:
                raise InstallError(
                    f"{rel} is not valid TOML ({exc}); fix it first, nothing was written"
                ) from None
            if present(outside) and not _TOML_BLOCK.search(old):
                self.notes.append(f"{rel}: keeps your own entry (Thrum adds none)")
                self.write(rel, old, part)
                return
        block = f"{TOML_BEGIN}\n{block_body.rstrip()}\n{TOML_END}\n"
        if old is None:
            new = block
        elif m := _TOML_BLOCK.search(old):
            new = _TOML_BLOCK.sub(lambda _m: block, old, count=1) if force else old
            if not force and m.group(0).rstrip("\n") != block.rstrip("\n"):
                self.keep_edited(f"Thrum's block in {rel}")
        else:
            new = (
                old + ("" if old.endswith("\n") or not old else "\n") + ("\n" if old.strip() else "") + block
            )
        try:
            tomllib.loads(new)
        except tomllib.TOMLDecodeError as exc:
            raise InstallError(
                f"{rel}: adding Thrum's block would break it ({exc}); nothing was written"
            ) from None
        self.write(rel, new, part)

    # -- the plan --

    def pending(self) -> list[Change]:
        return [c for c in self.changes.values() if c.action != "keep"]

    def diff(self) -> str:
        out = []
        for c in self.pending():
            out += difflib.unified_diff(
                (c.old or "").splitlines(keepends=True),
                c.new.splitlines(keepends=True),
                fromfile="/dev/null" if c.old is None else f"a/{c.rel}",
                tofile=f"b/{c.rel}",
            )
        return "".join(line if line.endswith("\n") else line + "\n" for line in out)

    def apply(self) -> list[str]:
        """Write every pending change (atomically each); returns the paths written."""
        written = []
        # Checked again, all before the first write: a link planted since the plan read them
        # refuses the whole install, not what is left of it.
        paths = {c.rel: self.real_path(c.rel) for c in self.pending()}
        for c in self.pending():
            path = paths[c.rel]
            _makedirs(os.path.dirname(path), self.dir_mode)
            mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else self.file_mode
            tmp = f"{path}.thrum-{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(c.new)
                os.chmod(tmp, mode)
                os.replace(tmp, path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            written.append(c.rel)
        return written


def _has_comments(text: str) -> bool:
    """Whether `text` holds comments, which a rewrite by json.dumps would lose (a trailing comma it
    drops is no loss; comments are comments in both dialects)."""
    return strip_jsonc(text, trailing_commas=False) != text


def _makedirs(path: str, mode: int) -> None:
    """`os.makedirs`, every directory it creates (not only the last) with `mode`, whatever the umask;
    existing ones are left as they are."""
    if os.path.isdir(path):
        return
    _makedirs(os.path.dirname(path), mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return
    os.chmod(path, mode)


def block_within(text: str, limit: int) -> bool:
    """Whether Thrum's Markdown block in `text` ends within its first `limit` bytes (UTF-8)."""
    m = _MD_BLOCK.search(text)
    return m is not None and len(text[: m.end()].rstrip("\n").encode("utf-8")) <= limit


def hook_groups(
    data: dict,
    rel: str,
    event: str,
    group: dict,
    force: bool,
    kept: Callable[[str], None] | None = None,
) -> None:
    """Claude-shaped hooks (also Codex's and Gemini's): `hooks.<Event>` is a list of matcher groups,
    each with its own `hooks` list. Thrum's group is added once; force replaces it. `kept` is told
    when Thrum's hook there is left as it is but differs from `group` (edited, or another version)."""
    hooks = data.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise InstallError(f"{rel}: `hooks` is not an object; fix it first, nothing was written")
    groups = hooks.setdefault(event, [])
    if not isinstance(groups, list):
        raise InstallError(f"{rel}: `hooks.{event}` is not a list; fix it first, nothing was written")

    def ours(h: object) -> bool:
        return isinstance(h, dict) and is_thrum_hook(h.get("command"))

    present = any(ours(h) for g in groups if isinstance(g, dict) for h in (g.get("hooks") or []))
    if present and not force:
        if kept is not None and group not in groups:
            kept(f"{rel}: Thrum's `hooks.{event}` hook")
        return
    if present:
        others = []
        for g in groups:
            if isinstance(g, dict) and isinstance(g.get("hooks"), list):
                rest = [h for h in g["hooks"] if not ours(h)]
                if not rest:
                    continue
                g = {**g, "hooks": rest}
            others.append(g)
        groups[:] = others
    groups.append(group)


def flat_hooks(
    data: dict,
    rel: str,
    event: str,
    entry: dict,
    force: bool,
    kept: Callable[[str], None] | None = None,
) -> None:
    """Cursor-shaped hooks: `hooks.<event>` is a flat list of `{command, ...}` entries (`kept`: as
    in hook_groups)."""
    hooks = data.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise InstallError(f"{rel}: `hooks` is not an object; fix it first, nothing was written")
    entries = hooks.setdefault(event, [])
    if not isinstance(entries, list):
        raise InstallError(f"{rel}: `hooks.{event}` is not a list; fix it first, nothing was written")
    present = [e for e in entries if isinstance(e, dict) and is_thrum_hook(e.get("command"))]
    if present and not force:
        if kept is not None and entry not in present:
            kept(f"{rel}: Thrum's `hooks.{event}` hook")
        return
    entries[:] = [e for e in entries if e not in present] + [entry]


def named_entry(
    data: dict,
    rel: str,
    key: str,
    name: str,
    value: dict,
    force: bool,
    kept: Callable[[str], None] | None = None,
) -> None:
    """An entry `data[key][name]` (an MCP server): added when missing, replaced only with force;
    `kept` is told of one left as it is that differs from `value` (so the install can say so)."""
    table = data.setdefault(key, {})
    if not isinstance(table, dict):
        raise InstallError(f"{rel}: `{key}` is not an object; fix it first, nothing was written")
    if name not in table or force:
        table[name] = value
    elif kept is not None and table[name] != value:
        kept(f"{rel}: `{key}.{name}`")


PARTS: tuple[str, ...] = ("instructions", "prime", "hooks", "mcp")


@dataclass
class Wiring:
    """What one install run knows: where, for whom, which parts, and how to start thrum."""

    root: str  # the worktree the files go into
    repo: str  # the main checkout (role templates live under its .thrum/)
    block: str  # the instruction block's body, already rendered from the role template
    force: bool = False
    parts: tuple[str, ...] = PARTS
    mcp: bool = True  # `thrum mcp serve` exists in this thrum

    def wants(self, part: str) -> bool:
        return part in self.parts


# -- the pieces several runtimes write alike --


def instructions(ws: Workspace, w: Wiring, runtime: str, rel: str, *, limit: int | None = None) -> None:
    """Thrum's block in a runtime's Markdown instruction file (CLAUDE.md, AGENTS.md, GEMINI.md);
    `limit`: the bytes of it the runtime reads (see Workspace.block)."""
    if w.wants("instructions"):
        ws.block(rel, w.block, f"{runtime}:instructions", w.force, heading=f"# {rel}", limit=limit)


def prime_markdown(ws: Workspace, w: Wiring, runtime: str, *, skill: bool) -> None:
    """The prime entry point as a Markdown skill or command file, where `entries.PRIME_FILE` says."""
    from thrum_engine.integrations import prime_text
    from thrum_engine.integrations.entries import PRIME_FILE

    if w.wants("prime"):
        text = prime_text.markdown("thrum-prime", skill=skill)
        ws.owned_file(PRIME_FILE[runtime] or "", text, f"{runtime}:prime", w.force)


def claude_style_hooks(
    ws: Workspace, w: Wiring, runtime: str, rel: str, hooks: dict[str, tuple[str, str | None, int]]
) -> None:
    """Claude's hook file shape (Codex reads the same): per event a matcher group whose one command
    hook runs `thrum hook`. `hooks` maps the runtime's event to (thrum event, matcher, timeout s)."""
    if not w.wants("hooks"):
        return

    def mutate(data: dict) -> None:
        for event, (ours, matcher, timeout) in hooks.items():
            group: dict = {
                "hooks": [{"type": "command", "command": hook_command(ours, runtime), "timeout": timeout}]
            }
            if matcher:
                group = {"matcher": matcher, **group}
            hook_groups(data, rel, event, group, w.force, ws.keep_edited)

    ws.json(rel, f"{runtime}:hooks", mutate)


def mcp_server(**extra: object) -> dict:
    """`thrum mcp serve` as a `{command, args}` server entry (plus the runtime's own keys first)."""
    argv = thrum_argv()
    return {**extra, "command": argv[0], "args": [*argv[1:], "mcp", "serve"]}


def mcp_json(ws: Workspace, w: Wiring, runtime: str, rel: str, key: str, server: dict) -> None:
    """The `thrum` server under `key` in a JSON config file (added once; force replaces it)."""
    if w.wants("mcp") and w.mcp:
        ws.json(
            rel,
            f"{runtime}:mcp",
            lambda d: named_entry(d, rel, key, "thrum", server, w.force, ws.keep_edited),
        )

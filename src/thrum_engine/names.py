"""Every name rule in one place: agents, roles, modules, worktrees, tmux sessions, runtimes, monitors.

Names end up in file names (identity files, context files, pane logs), git refs (archives), tmux
targets and shell-visible places, so a name is never allowed to be a path: the character sets below
hold no `/`, `\\`, NUL, newline or space, and leading `.`/`-` are refused where a name could start a
path component or a command-line flag. The CLI checks early (friendly errors before any file is
touched), the engine checks again (it is the authority for callers that skip the CLI).

No `re`: the CLI imports this on every call and `re` costs ~6 ms of start-up.
"""

# Names that already mean something as an address or an author: an agent holding one could never be
# reached (`--to @me` is the sender's note to itself) or would take another meaning's mail (`@operator`
# is the console's role, `@coordinator` the supervisors' default, `@reviewer` every reviewer).
ADDRESS_WORDS = frozenset({"me", "all", "everyone", "broadcast"})  # messaging.resolve's own words
AUTHOR_WORDS = frozenset({"daemon", "system", "thrum"})  # the engine's own authors
# The roles addresses name by default: the console's operator, the supervisors' `@coordinator`, the
# shipped role templates (integrations.roles.SHIPPED_ROLES) and the role of an agent given none.
ROLE_WORDS = frozenset(
    {"operator", "coordinator", "orchestrator", "implementer", "reviewer", "planner", "tester", "agent"}
)
RESERVED = ADDRESS_WORDS | AUTHOR_WORDS | ROLE_WORDS
MAX_NAME = 64

_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
_MIXED = _LOWER + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# kind -> (allowed characters, max length, what the error says is allowed); '.' and '-' never come first
_RULES: dict[str, tuple[frozenset[str], int, str]] = {
    "agent": (frozenset(_LOWER + "_"), MAX_NAME, "lowercase letters, digits and _"),
    "role": (frozenset(_LOWER + "_"), MAX_NAME, "lowercase letters, digits and _"),
    "module": (frozenset(_LOWER + "_"), MAX_NAME, "lowercase letters, digits and _"),
    "monitor": (frozenset(_MIXED + "_-"), MAX_NAME, "letters, digits, '_' and '-' (not first)"),
    "session": (frozenset(_MIXED + "_-"), MAX_NAME, "letters, digits, '_' and '-' (not first)"),
    "runtime": (frozenset(_MIXED + "_-"), MAX_NAME, "letters, digits, '_' and '-' (not first)"),
    "worktree": (frozenset(_MIXED + "._-"), 100, "letters, digits, '.', '_' and '-' (not first)"),
}


def _show(name: str) -> str:
    """The name as the error shows it: quoted, escaped, and cut so a megabyte name stays one line."""
    shown = repr(name[: MAX_NAME + 16])
    return shown + ("…" if len(name) > MAX_NAME + 16 else "")


def problem(kind: str, name: object) -> str | None:
    """Why `name` is not a valid `kind` name (`invalid <kind> name ...`), or None when it is."""
    chars, limit, allowed = _RULES[kind]
    what = f"{kind} name"
    if not isinstance(name, str):
        return f"invalid {what}: expected text, got {type(name).__name__}"
    if not name:
        return f"invalid {what}: it must not be empty"
    if len(name) > limit:
        return f"invalid {what} {_show(name)}: longer than {limit} characters"
    if not set(name) <= chars:
        return f"invalid {what} {_show(name)}: use {allowed}"
    if name[0] in ".-" or ".." in name:
        return f"invalid {what} {_show(name)}: use {allowed}"
    return None


def name_problem(name: str, *, what: str = "agent name") -> str | None:
    """Agent/role/module rules; `what` is "agent name", "role" or "module"."""
    return problem(what.split()[0], name)


def agent_name_problem(name: str, role: str | None = None) -> str | None:
    """An agent name: the charset, not reserved (addresses and event authors), and not its own role."""
    found = problem("agent", name)
    if found:
        return found
    if name in RESERVED:
        return reserved_problem(name)
    if role is not None and name == role:
        return f"invalid agent name {name!r}: it must differ from its role"
    return None


def reserved_problem(name: str, why: str = "") -> str:
    if not why:
        why = (
            "an address word"
            if name in ADDRESS_WORDS
            else "an engine author"
            if name in AUTHOR_WORDS
            else "a role"
        )
    return (
        f"invalid agent name {name!r}: it is reserved, @{name} already names {why}"
        f" (reserved: {', '.join(sorted(RESERVED))}); pick another name"
    )


def runtime_name_problem(name: object) -> str | None:
    """A runtime name (`--runtime R`, a preset's key, an agent's stored runtime): `[A-Za-z0-9_-]+`
    as CLI.md says, since it is typed into a pane's command line, tagged on tmux sessions and
    written into identity files; checked wherever one enters, so a stored one is always safe."""
    return problem("runtime", name)


def identity_name_problem(name: str) -> str | None:
    """A claimed identity (THRUM_NAME, an identity file's stem, `--agent`): a name that could be registered."""
    return problem("agent", name)


# Short texts shown on one line of the team table, `prime` and the console: (max length, spaces allowed)
_TEXTS: dict[str, tuple[str, int, bool]] = {
    "task": ("task", 100, False),
    "intent": ("intent", 500, True),
    "display": ("display name", 100, True),
}


def text_problem(kind: str, text: str) -> str | None:
    """Why `text` cannot be a session's task (an id such as `bd-123`: no spaces), an intent or a
    display name, or None. One printable line: a newline or an escape sequence would break the
    row it is shown on (or restyle the operator's terminal)."""
    what, limit, spaces = _TEXTS[kind]
    if len(text) > limit:
        return f"invalid {what} {_show(text)}: longer than {limit} characters"
    if not text.isprintable():
        return f"invalid {what} {_show(text)}: one line of printable text (no control characters)"
    if not spaces and " " in text:
        return f"invalid {what} {_show(text)}: an id without spaces (such as bd-123)"
    return None


def strip_at(address: str) -> str:
    return address.removeprefix("@")


def empty_name_problem(address: str, what: str = "agent") -> str | None:
    """Why `address` names nobody when it holds no name at all (`''`, a bare `@`, spaces), or None.
    Looked up, such an address was "no agent named @" or "unknown recipient: @", and a dropped
    `--agent ''` or `--from ''` quietly meant "me" or "anyone"."""
    if strip_at(address.strip()):
        return None
    return f"invalid {what} {_show(address)}: the agent name must not be empty (use @name)"


def named(address: str, what: str = "agent") -> str:
    """The agent name in an address (`@bob`, `bob`); an empty one is refused (InvalidName) as
    empty_name_problem says."""
    name = strip_at(address.strip())
    if not name:
        from thrum_engine.errors import InvalidName

        raise InvalidName(str(empty_name_problem(address, what)))
    return name

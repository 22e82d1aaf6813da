"""A small declarative argument parser.

argparse costs ~8 ms per call (it pulls in `re` and `gettext`), a quarter of
the CLI's start-up budget; agents call `thrum send`/`inbox` many times a
minute. This parser knows exactly our shapes: positionals, boolean flags,
valued flags, repeatable flags, `--flag=value`, and `--` to end flags.
"""

BOOL, VALUE, LIST = "bool", "value", "list"


class UsageError(Exception):
    pass


class Spec:
    def __init__(
        self,
        path: str,
        handler: str,
        summary: str,
        *,
        positionals: tuple[str, ...] = (),
        flags: dict[str, str] | str | None = None,
        aliases: dict[str, str] | None = None,
        rest: bool = False,
        usage_exit: int = 1,
    ) -> None:
        self.path = path  # "agent register"
        self.handler = handler  # "module:function" under thrum_engine.cli
        self.summary = summary
        # Positional names; a trailing "?" makes one optional, "*" collects the remainder.
        self.positionals = positionals
        # The compact form ("to:l broadcast:b format:v") is kept as text and read only when the
        # command runs: ~110 commands are declared on every call, one of them is used.
        self._flags: dict[str, str] | str = flags if isinstance(flags, str) else dict(flags or {})
        self.aliases = dict(aliases or {})
        self.rest = rest  # everything after `--` is kept verbatim
        self.usage_exit = usage_exit  # `wait` keeps exit 1 for its timeout, so usage errors are 2 there

    @property
    def flags(self) -> dict[str, str]:
        if isinstance(self._flags, str):
            kinds = {"b": BOOL, "v": VALUE, "l": LIST}
            parsed = {}
            for item in self._flags.split():
                name, _, kind = item.partition(":")
                parsed["--" + name] = kinds[kind or "b"]
            self._flags = parsed
        return self._flags


GLOBAL_FLAGS = {
    "--json": BOOL,
    "--quiet": BOOL,
    "--verbose": BOOL,
    "--repo": VALUE,
    "--role": VALUE,
    "--module": VALUE,
    "--help": BOOL,
}
GLOBAL_ALIASES = {"-h": "--help", "-q": "--quiet", "-v": "--verbose"}


def key(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def parse(spec: Spec, argv: list[str]) -> dict:
    flags = {**GLOBAL_FLAGS, **spec.flags}
    aliases = {**GLOBAL_ALIASES, **spec.aliases}
    out: dict = {
        key(f): ([] if kind == LIST else (False if kind == BOOL else None)) for f, kind in flags.items()
    }
    positionals: list[str] = []
    out["rest"] = []
    given: set[str] = set()  # the valued flags seen so far
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok == "--":
            if spec.rest:
                out["rest"] = argv[i:]
            else:
                positionals.extend(argv[i:])
            break
        if tok.startswith("-") and len(tok) > 1 and not _is_number(tok):
            name, eq, value = tok.partition("=")
            name = aliases.get(name, name)
            kind = flags.get(name)
            if kind is None:
                raise UsageError(f"unknown flag: {name}")
            if kind == BOOL:
                if eq:
                    raise UsageError(f"{name} takes no value")
                out[key(name)] = True
                continue
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"{name} needs a value")
                value = argv[i]
                i += 1
            if kind == LIST:
                out[key(name)].append(value)
            elif name in given and out[key(name)] != value:
                # The last one winning silently dropped what the caller meant (`--runtime claude
                # --runtime codex` installed codex alone): the same value twice is harmless.
                raise UsageError(f"{name} given twice ({out[key(name)]!r} and {value!r}): give it once")
            else:
                out[key(name)] = value
                given.add(name)
            continue
        positionals.append(tok)
    _bind_positionals(spec, positionals, out)
    return out


def _is_number(tok: str) -> bool:
    # "-30s" and "-5" are values (durations), not flags.
    return len(tok) > 1 and (tok[1].isdigit() or tok[1] == ".")


def _bind_positionals(spec: Spec, values: list[str], out: dict) -> None:
    names = list(spec.positionals)
    for n in names:
        bare = n.rstrip("?*")
        if n.endswith("*"):
            out[bare] = values
            values = []
        elif values:
            out[bare] = values.pop(0)
        elif n.endswith("?"):
            out.setdefault(bare, None)  # an optional positional may also come as --flag (`--name X`)
        else:
            raise UsageError(f"missing argument: {bare.upper()} (usage: thrum {usage(spec)})")
    if values:
        raise UsageError(f"unexpected argument: {values[0]!r} (usage: thrum {usage(spec)})")


def usage(spec: Spec) -> str:
    parts = [spec.path]
    for n in spec.positionals:
        bare = n.rstrip("?*").upper()
        parts.append(f"[{bare}]" if n.endswith("?") else f"[{bare}...]" if n.endswith("*") else bare)
    for f, kind in spec.flags.items():
        parts.append(
            f"[{f}]" if kind == BOOL else f"[{f} {key(f).upper()}]" + ("..." if kind == LIST else "")
        )
    if spec.rest:
        parts.append("-- CMD ARGS...")
    return " ".join(parts)


def exclusive(args: dict, *names: str) -> None:
    given = [n for n in names if args.get(key(n))]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)} are mutually exclusive")

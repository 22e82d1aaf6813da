"""What every command shares: the repo layout, the caller's identity, a call into
the engine (starting it when needed), and printing in human or `--json` form."""

import os
import sys
import time

from thrum_engine.cli.args import Spec, UsageError
from thrum_engine.cli.output import error, hints_wanted, line, print_json
from thrum_engine.layout import BadThrumHome, Layout, NotARepo
from thrum_engine.names import empty_name_problem, identity_name_problem
from thrum_engine.rpc.client import (
    Client,
    EngineNotAnswering,
    EngineUnavailable,
    ForeignServer,
    RpcError,
    connect_engine,
)
from thrum_engine.rpc.lightjson import loads


class CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# What can go wrong in talking to the engine, and so what `engine_errors` turns into one CliError:
# these, and a ThrumError raised in this process (settings, a local rebuild). That one exists only
# once `thrum_engine.errors` is loaded, which a call whose engine answers never does (its 13
# classes were 160 us of a ~12 ms `thrum send`).
_TRANSPORT_FAILURES = (RpcError, EngineUnavailable, TimeoutError)


def _thrum_error(exc: BaseException) -> bool:
    errors = sys.modules.get("thrum_engine.errors")
    return errors is not None and isinstance(exc, errors.ThrumError)


def engine_failure(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSPORT_FAILURES) or _thrum_error(exc)


def engine_failures() -> tuple[type[BaseException], ...]:
    """The classes, for an `except` clause (evaluated only once something was raised)."""
    from thrum_engine.errors import ThrumError

    return (*_TRANSPORT_FAILURES, ThrumError)


# Seconds before each resend of a retried request after the connection was lost (then a last try).
RETRY_PAUSES = (0.05, 0.2)


def cli_error(exc: BaseException, doing: str = "the request") -> CliError:
    """The one translation of an engine failure into the CLI's one line (httpx's `map_exceptions`
    shape: written once, most specific first). An RpcError carries a ThrumError's message and kind
    across the socket; a ThrumError raised in this process (settings, a local rebuild) is the same."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, RpcError) or _thrum_error(exc):
        return CliError(exc.message)  # type: ignore[attr-defined]  # a ThrumError has one too
    if isinstance(exc, ForeignServer):
        return CliError(str(exc))
    if isinstance(exc, EngineNotAnswering):
        return CliError(f"{exc}: check `thrum daemon status`, `thrum daemon stop` stops it")
    if isinstance(exc, EngineUnavailable):
        return CliError(f"lost the engine mid-request ({exc}); check `thrum daemon status`")
    if isinstance(exc, TimeoutError):
        return CliError(f"the engine did not answer {doing} in time")
    return CliError(str(exc))


class engine_errors:  # lower case: used as `with engine_errors(...)`, like a function
    """`with engine_errors("agent.register"):` raises `cli_error(...)` for an engine failure inside.
    A class, not `contextlib.contextmanager`: contextlib is not otherwise loaded on the hot path."""

    def __init__(self, doing: str = "the request") -> None:
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ, exc, tb) -> None:
        if exc is not None and engine_failure(exc) and not isinstance(exc, CliError):
            raise cli_error(exc, self.doing) from None


def _decode(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"{what} is not valid UTF-8 text (bad byte at offset {exc.start})") from None


def read_text(path: str, *, what: str) -> str:
    """A text file named on the command line: one CliError for any reason it can't be had (missing, not UTF-8)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise CliError(f"cannot read {what}: {exc.strerror or exc}: {path}") from None
    return _decode(raw, f"{what} {path}")


def stdin_text() -> str:
    """All of stdin, strictly UTF-8 (the locale's decoder may let bad bytes through as surrogates)."""
    return _decode(sys.stdin.buffer.read(), "stdin")


def json_value(text: str, what: str):
    """`text` parsed as JSON, or one CliError saying `what` is not JSON."""
    try:
        return loads(text)
    except ValueError:
        raise CliError(f"{what} must be JSON") from None


class AmbiguousIdentity(CliError):
    """Several identity files and nothing to pick one: only an error for commands that need an identity."""


_BROKEN = "; fix it, delete it, or run `thrum quickstart --force` again"


def read_identity_file(path: str) -> dict | None:
    """The identity file's record; None when there is none. A file that exists but is not a JSON
    object is an error naming it: silently acting as nobody would hide the problem."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CliError(f"cannot read identity file {path}: {exc.strerror or exc}") from None
    try:
        data = json_value(raw.decode("utf-8"), "identity file")
    except (UnicodeDecodeError, CliError):
        data = None
    if not isinstance(data, dict):
        raise CliError(f"identity file {path} is empty or not a JSON object{_BROKEN}")
    return data


def _check_claim(name: str, source: str) -> str:
    problem = identity_name_problem(name)
    if problem:
        raise CliError(f"{problem} (from {source})")
    return name


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    for _ in range(64):
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
                stat = fh.read()
        except OSError:
            break
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        if ppid <= 1:
            break
        pids.add(ppid)
        pid = ppid
    return pids


def identity_home(layout: Layout, name: str) -> str | None:
    """The worktree of this repo whose identity folder holds `name` (this one first), or None:
    who an agent is and where it lives, read from the files, for commands that work without the
    engine and must still answer what it would."""
    from thrum_engine.layout import registered_worktrees

    if os.path.exists(layout.identity_path(name)):
        return layout.worktree
    for wt in sorted(registered_worktrees(layout.repo)):
        if os.path.exists(layout.identity_path(name, wt)):
            return wt
    return None


def resolve_identity(layout: Layout) -> tuple[str | None, dict | None]:
    """THRUM_NAME -> the only identity file in this worktree -> pid match -> error listing candidates."""
    env = os.environ.get("THRUM_NAME")
    if env:
        _check_claim(env, "THRUM_NAME")
        return env, read_identity_file(layout.identity_path(env))
    d = layout.identities_dir()
    try:
        files = sorted(f for f in os.listdir(d) if f.endswith(".json"))
    except OSError:
        return None, None
    if not files:
        return None, None
    for f in files:
        _check_claim(f[:-5], f"identity file {os.path.join(d, f)}")
    if len(files) == 1:
        data = read_identity_file(os.path.join(d, files[0]))
        return files[0][:-5], data
    ancestors = _ancestors()
    for f in files:
        data = read_identity_file(os.path.join(d, f))
        if data and data.get("agent_pid") in ancestors:
            return f[:-5], data
    names = ", ".join(f[:-5] for f in files)
    raise AmbiguousIdentity(f"several identities in this worktree ({names}): set THRUM_NAME to pick one")


class Ctx:
    def __init__(self, spec: Spec, args: dict) -> None:
        self.spec = spec
        self.args = args
        self.json = bool(args.get("json"))
        self.quiet = bool(args.get("quiet"))
        self._layout: Layout | None = None
        self._identity: tuple[str | None, dict | None] | None = None
        self._identity_error: CliError | None = None
        self._client: Client | None = None
        self.hints: list[str] = []
        self.verbose = bool(args.get("verbose"))
        self._start_ms: float | None = None  # this call started the engine, and took so long to

    def hint(self, text: str) -> None:
        """Advice beside the result (what is not done yet, what to run next). One way for every
        command: printed after its human output, under `"hints"` with `--json` (CLI.md), and
        dropped with THRUM_NO_HINTS=1, so scripts and agents can turn the advice off."""
        if hints_wanted():
            self.hints.append(text)

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            try:
                self._layout = Layout.discover(self.args.get("repo") or None)
            except BadThrumHome as exc:
                raise CliError(str(exc)) from None
            except (NotARepo, OSError) as exc:
                raise CliError(f"{exc}; run thrum inside a git repository or pass --repo PATH") from None
        return self._layout

    def _resolve(self) -> tuple[str | None, dict | None]:
        if self._identity is None:
            try:
                self._identity = resolve_identity(self.layout)
            except AmbiguousIdentity as exc:
                # Ambiguous (several identities here): fine for commands that need none; the
                # engine's "no identity" refusal is then reported as this clearer error.
                self._identity_error = exc
                self._identity = (None, None)
        return self._identity

    @property
    def me(self) -> str | None:
        return self._resolve()[0]

    @property
    def identity_file(self) -> dict | None:
        return self._resolve()[1]

    def require_me(self) -> str:
        name = self.me
        if name is None:
            raise self._identity_error or CliError(
                "no identity here: run `thrum quickstart --name NAME --role ROLE` or set THRUM_NAME"
            )
        return name

    @property
    def connected(self) -> bool:
        """An engine answered on this call's connection (an error then is the engine's answer)."""
        return self._client is not None

    def client(self, start: bool = True) -> Client:
        if self._client is None:
            try:
                client = connect_engine(self.layout)
            except ForeignServer as exc:
                raise CliError(str(exc)) from None
            if client is None and start:
                from thrum_engine.daemon.control import StartFailed
                from thrum_engine.daemon.control import start as start_engine

                began = time.monotonic()
                try:
                    start_engine(self.layout)
                except StartFailed as exc:
                    raise CliError(str(exc)) from None
                self._start_ms = (time.monotonic() - began) * 1000
                client = connect_engine(self.layout)
            if client is None:
                raise CliError("the engine is not running: start it with `thrum daemon start`")
            self._client = client
        return self._client

    def call(
        self,
        method: str,
        params: dict | None = None,
        *,
        timeout: float | None = -1.0,
        start: bool = True,
        as_caller: bool = True,
        retry: bool = False,
    ) -> dict:
        """`method` on the engine, as this identity unless `as_caller` is False (registering, where
        we are only becoming someone). Every failure is one CliError, from `cli_error`.

        `retry`: when the connection is lost mid-request (the engine died or restarted), send the
        same request again, to the engine started anew (a few times: a dying engine's socket can
        still take a connection for a moment, then drop it). Only for requests that are safe to
        repeat: a send carrying its idempotency key stores one message however often it arrives."""
        params = dict(params or {})
        if as_caller and self.me:
            params.setdefault("caller", self.me)
        if not self.verbose:
            return self._call(method, params, timeout, start, retry)
        began, outcome = time.monotonic(), "failed"
        try:
            result = self._call(method, params, timeout, start, retry)
            outcome = "ok"
            return result
        finally:
            self._trace(method, began, outcome)

    def _trace(self, method: str, began: float, outcome: str) -> None:
        """`--verbose`: what the call to the engine was, on stderr (stdout stays the result): the
        socket, the method, whether this call had to start the engine, and the round trip."""
        took = (time.monotonic() - began) * 1000
        if self._start_ms is not None:
            how = f"started the engine for this call ({self._start_ms:.0f} ms of it)"
            self._start_ms = None
        else:
            how = "engine already running" if self._client is not None else "no engine"
        sock = self._client.path if self._client is not None else self.layout.socket_path  # the one used
        sys.stderr.write(f"thrum: {method} via {sock}: {outcome} in {took:.1f} ms, {how}\n")

    def _call(self, method: str, params: dict, timeout: float | None, start: bool, retry: bool) -> dict:
        with engine_errors(method):
            try:
                for pause in RETRY_PAUSES if retry else ():
                    try:
                        return self.client(start).call(method, params, timeout)
                    except EngineUnavailable as exc:
                        if isinstance(exc, ForeignServer | EngineNotAnswering):
                            raise
                        self.close()
                        self._client = None
                        time.sleep(pause)
                return self.client(start).call(method, params, timeout)
            except RpcError as exc:
                if self._identity_error is not None and exc.message.startswith("no identity"):
                    raise self._identity_error from None
                raise

    def seconds(
        self, flag: str, default: float | None = None, *, low: float | None = None, high: float | None = None
    ) -> float | None:
        """A duration flag (`30s`, `5m`, `-30s`, `45`) in seconds; `default` when absent. Every
        duration option reads through here: NaN, infinities and overflowing values are one error
        line (durations.MAX_DURATION), and `low`/`high` bound it further."""
        v = self.args.get(flag.lstrip("-").replace("-", "_"))
        if v is None:
            return default
        from thrum_engine.durations import human_age, parse_duration

        try:
            n = parse_duration(v)
        except ValueError as exc:
            raise CliError(f"{flag}: {exc}") from None
        if (low is not None and n < low) or (high is not None and n > high):
            lo = "" if low is None else f"at least {human_age(low)}" if low else "not negative"
            hi = "" if high is None else f"at most {human_age(high)}"
            raise CliError(f"{flag} must be {' and '.join(x for x in (lo, hi) if x)}, not {v[:40]!r}")
        return n

    def agent_flag(self, flag: str) -> str | None:
        """An agent-name flag (`--agent`, `--from`, `--to`, `--mention`) as given; None when absent.
        `''` or a bare `@` is refused as empty: dropped, it had meant "me" or "anyone", and looked
        up, it had been "no agent named @"."""
        v = self.args.get(flag.lstrip("-").replace("-", "_"))
        if v is None:
            return None
        problem = empty_name_problem(v, flag)
        if problem:
            raise CliError(problem)
        return v

    def whole(self, flag: str, *, low: int = 1, high: int = 1000) -> int | None:
        """A whole-number flag (`--limit`, `--lines`, `--page`) within [low, high]; None when absent."""
        v = self.args.get(flag.lstrip("-").replace("-", "_"))
        if v is None:
            return None
        s = v.strip()
        # int() takes `1_000` and `١٢` and is slow on a huge digit string: plain ASCII digits only
        digits = s[1:] if s[:1] in "+-" else s
        if not digits or len(digits) > 20 or not (digits.isascii() and digits.isdigit()):
            raise CliError(f"{flag} needs a whole number between {low} and {high}, not {v[:40]!r}")
        n = int(s)
        if not low <= n <= high:
            raise CliError(f"{flag} must be between {low} and {high}, not {n}")
        return n

    def emit(self, result, human) -> int:
        if self.json:
            if self.hints and isinstance(result, dict):
                result = {**result, "hints": self.hints}
            print_json(result)
        elif not self.quiet:
            human(result)
            for text in self.hints:
                line("  " + text)
        return 0

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def run(ctx: Ctx, handler: str) -> int:
    module, _, fn = handler.partition(":")
    mod = __import__(f"thrum_engine.cli.{module}", fromlist=[fn])
    try:
        return int(getattr(mod, fn)(ctx) or 0)
    except CliError as exc:
        error(exc.message)
        return exc.code
    except engine_failures() as exc:  # a handler that called the engine without Ctx.call: still one line
        error(cli_error(exc).message)
        return 1
    except UsageError as exc:
        error(str(exc))
        return ctx.spec.usage_exit
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:
        ctx.close()
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            pass

"""`thrum` entry point: find the command, parse its flags, run it, map errors to exit codes."""

import os
import sys

from thrum_engine.cli.args import VALUE, Spec, UsageError, parse, usage
from thrum_engine.cli.output import error, line

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs the CLI a few ms of start-up
    from typing import NoReturn


Row = tuple  # (path, handler, summary, positionals, flags, Spec's other keywords): one command


def _s(path: str, handler: str, summary: str, pos: tuple[str, ...] = (), flags: str = "", **kw) -> Row:
    """One command's row: flags="to:l broadcast:b format:v" -> {"--to": LIST, ...} (read when used).
    Rows, not `Spec`s: ~110 commands are declared on every call and one is used; building a `Spec`
    for each was two thirds of this module's import (88 against 32 us here, warm)."""
    return (path, handler, summary, pos, flags, kw)


def _spec(row: Row) -> Spec:
    path, handler, summary, pos, flags, kw = row
    return Spec(path, handler, summary, positionals=pos, flags=flags, **kw)


_MSG_FORMAT = "format:v stdin:b body-file:v"
_IDENT = "name:v role:v module:v display:v runtime:v intent:v"

_ROWS: list[Row] = [
    # setup and identity
    _s("version", "orientation:version", "print the version"),
    _s(
        "init",
        "setup:init",
        "create .thrum/ and the a-sync journal branch in this repo",
        flags="stealth:b force:b dry-run:b non-interactive:b no-daemon:b name:v worktrees-root:v"
        " runtime:v skills:b roles:v user:b",
    ),
    _s(
        "quickstart",
        "setup:quickstart",
        "init if needed, register, start a session, write the identity file",
        flags=f"{_IDENT} preamble-file:v force:b no-init:b no-agent-pid:b",
    ),
    _s(
        "whoami",
        "identity:whoami",
        "resolved identity and session (works without the engine)",
        flags="field:v",
    ),
    _s("agent whoami", "identity:whoami", "same as whoami", flags="field:v"),
    _s(
        "agent register",
        "identity:register",
        "register an agent for this worktree",
        pos=("name?",),
        flags=f"{_IDENT} force:b",
    ),
    _s("agent list", "identity:agent_list", "list agents", flags="context:b"),
    _s(
        "agent delete",
        "identity:agent_delete",
        "delete an agent (your own; any, as the operator)",
        pos=("name",),
        flags="force:b",
    ),
    _s(
        "agent cleanup",
        "identity:agent_cleanup",
        "find (and with --force, as the operator, delete) stale agents",
        flags="dry-run:b force:b threshold:v",
    ),
    _s(
        "agent set-status",
        "identity:set_status",
        "working|idle|blocked|stuck (--agent: yours; any, as the operator)",
        pos=("status",),
        flags="agent:v",
    ),
    _s("session start", "identity:session_start", "start a work session", flags="intent:v"),
    _s("session end", "identity:session_end", "end the current session", flags="reason:v"),
    _s("session list", "identity:session_list", "list sessions", flags="active:b agent:v"),
    _s("session heartbeat", "identity:heartbeat", "record that I am alive"),
    _s("session set-intent", "identity:set_intent", "what I am working on", pos=("text*",), flags="clear:b"),
    _s("session set-task", "identity:set_task", "the task id I am on", pos=("text*",), flags="clear:b"),
    _s("prime", "orientation:prime", "the session briefing"),
    _s(
        "setup claude-md",
        "setup:setup_claude_md",
        "print Thrum's CLAUDE.md block (--apply: put it into CLAUDE.md)",
        flags="apply:b force:b",
    ),
    _s("roles list", "roles:list_", "role templates and the agents using each"),
    _s(
        "roles deploy",
        "roles:deploy",
        "render role templates into agents' preambles and instruction blocks",
        flags="dry-run:b agent:v",
    ),
    _s(
        "hook",
        "hook:run",
        "what installed runtime hooks run (the runtime's hook JSON on stdin)",
        pos=("event",),
        flags="runtime:v",
    ),
    _s("status", "orientation:status", "me, my session, the engine"),
    _s("overview", "orientation:overview", "team, worktrees, my inbox at a glance"),
    _s("config show", "orientation:config_show", "effective settings"),
    _s(
        "single-agent-mode",
        "orientation:single_agent_mode",
        "show, or set with true|false, whether one agent works alone (the briefing leaves the team out)",
        pos=("value?",),
    ),
    _s("context save", "context:save", "save context (stdin or --file)", flags="file:v"),
    _s(
        "context show",
        "context:show",
        "show saved context (--session: mine only; --project: the project state)",
        flags="agent:v raw:b no-preamble:b session:b project:b",
    ),
    _s("context sync", "context:sync", "commit my saved context to the a-sync branch", flags="agent:v"),
    _s("context clear", "context:clear", "delete saved context"),
    _s("context preamble", "context:preamble", "show or set the preamble", flags="init:b file:v"),
    # messaging
    _s(
        "send",
        "messaging:send",
        "send a message",
        pos=("text*",),
        flags=(
            "to:l broadcast:b mention:l scope:l ref:l thread:v structured:v ask:b due:v idempotency-key:v"
            f" {_MSG_FORMAT}"
        ),
    ),
    _s(
        "reply",
        "messaging:reply",
        "reply in a message's thread (answers an ask)",
        pos=("message_id", "text*"),
        flags=f"ask:b due:v idempotency-key:v {_MSG_FORMAT}",
    ),
    _s(
        "ack", "asks:ack", "close an ask addressed to me without a reply", pos=("message_id",), flags="note:v"
    ),
    _s(
        "asks",
        "asks:asks",
        "open asks (--mine: I sent, --to-me: waiting for my answer), with age",
        flags="mine:b to-me:b agent:v",
    ),
    _s(
        "inbox",
        "messaging:inbox",
        "my messages, newest first (listing marks them read)",
        flags="unread:b mentions:b from:v scope:v ref:v all:b page-size:v page:v offset:v limit:v oldest:b",
    ),
    _s(
        "sent",
        "messaging:sent",
        "my outbox with delivery state (--undelivered: not yet shown to someone, or held)",
        flags="to:v unread:b undelivered:b ref:v limit:v",
    ),
    _s(
        "sent show",
        "messaging:sent_show",
        "one sent message: each recipient's ledger, step by step with times",
        pos=("message_id",),
    ),
    _s("held", "asks:held", "messages the loop guard holds for the operator", flags="released:b"),
    _s(
        "release",
        "asks:release",
        "deliver held messages (the operator's)",
        pos=("message_ids*",),
        flags="all:b",
    ),
    _s("message get", "messaging:get", "show a message", pos=("message_id",)),
    # An edit replaces the text and keeps the message's format (the event carries the content only).
    _s(
        "message edit",
        "messaging:edit",
        "edit my message",
        pos=("message_id", "text*"),
        flags="stdin:b body-file:v",
    ),
    _s("message delete", "messaging:delete", "delete my message", pos=("message_id",), flags="force:b"),
    _s("message read", "messaging:read", "mark messages read", pos=("message_ids*",), flags="all:b"),
    _s(
        "wait",
        "messaging:wait",
        "block until a message for me arrives",
        flags="timeout:v after:v scope:v mention:v from:v",
        usage_exit=2,
    ),
    # schedules (issue 16)
    _s(
        "schedule create",
        "schedule:create",
        "deliver a message later: --at TIME | --in DURATION | --cron EXPR (cron in UTC)",
        pos=("text*",),
        flags=f"to:l at:v in:v cron:v ask:b until-reply:b {_MSG_FORMAT}",
    ),
    _s(
        "schedule list", "schedule:list_", "my pending schedules (--all: ended too)", flags="all:b everyone:b"
    ),
    _s(
        "schedule show", "schedule:show", "one schedule: next fire, fires, how it ended", pos=("schedule_id",)
    ),
    _s("schedule cancel", "schedule:cancel", "cancel a pending schedule", pos=("schedule_id",)),
    _s("team", "orientation:team", "who is here and what they do", flags="all:b"),
    _s("ping", "orientation:ping", "presence of one agent", pos=("agent",)),
    _s("who-has", "orientation:who_has", "which worktrees are changing FILE", pos=("file",)),
    _s(
        "purge",
        "messaging:purge",
        "preview, then (as the operator) delete old messages",
        flags="before:v all:b confirm:b",
    ),
    # worktrees
    _s(
        "worktree create",
        "worktree:create",
        "add a worktree under worktrees.base_path/<repo>/NAME",
        pos=("worktree",),
        flags=f"branch:v base:v detach:b {_IDENT}",
        aliases={"-b": "--branch"},
    ),
    _s("worktree list", "worktree:list_", "this repo's worktrees and their agents"),
    _s("worktree archives", "worktree:archives", "the archives teardowns wrote, newest first"),
    _s(
        "worktree restore",
        "worktree:restore",
        "bring an archive back as a new worktree (uncommitted work included)",
        pos=("archive",),
        flags="name:v",
    ),
    _s(
        "worktree teardown",
        "worktree:teardown",
        "audit, archive and remove a worktree (your own; any, as the operator)",
        pos=("worktree",),
        flags="force:b delete-branch:b keep-agent:b",
    ),
    # review and merge
    _s("review request", "review:request", "ask for review of your work", flags="note:v agent:v"),
    _s("review list", "review:list_", "what needs review: ahead/behind, +/−, tests, age", flags="all:b"),
    _s(
        "review show",
        "review:show",
        "a review (its id, or an agent's name): rounds, comments, replies",
        pos=("id?",),
        flags="agent:v",
    ),
    _s(
        "review comments",
        "review:comments",
        "the comments on my (or an agent's) review",
        pos=("id?",),
        flags="agent:v",
    ),
    _s(
        "review submit",
        "review:submit",
        "approve or request changes, with line comments (--comment 'PATH:LINE: TEXT')",
        pos=("name",),
        flags="approve:b request-changes:b summary:v comment:l",
    ),
    _s(
        "review preflight",
        "review:preflight",
        "what a merge would meet (exit 1: a plain merge would refuse)",
        pos=("name",),
        flags="squash:b rebase:b",
    ),
    _s(
        "review merge",
        "review:merge",
        "merge an approved review into the target (operator)",
        pos=("name",),
        flags="squash:b rebase:b teardown:b delete-branch:b keep-agent:b force:b",
    ),
    _s(
        "review history",
        "review:history",
        "requests, verdicts and merges, newest first",
        flags="agent:v limit:v",
    ),
    # agents in tmux
    _s(
        "tmux create",
        "tmux:create",
        "a detached session for an agent, identity registered first",
        pos=("session",),
        flags=f"cwd:v {_IDENT} no-agent:b force:b",
    ),
    _s(
        "tmux launch",
        "tmux:launch",
        "start the runtime in the pane and prime it (an agent: relaunch in place)",
        pos=("session",),
        flags="runtime:v prompt:v",
    ),
    _s(
        "tmux start",
        "tmux:start",
        "create + launch in the current directory",
        flags=f"{_IDENT} prompt:v force:b",
    ),
    _s("tmux status", "tmux:status", "this repo's sessions and their pane state"),
    _s("tmux list", "tmux:status", "same as tmux status"),
    _s("tmux kill", "tmux:kill", "kill a session", pos=("session",)),
    _s("tmux connect", "tmux:connect", "attach this terminal to a session", pos=("session?",)),
    _s(
        "tmux send",
        "tmux:send",
        "type text into a session of your worktree (literally, then Enter)",
        pos=("session", "text*"),
        flags="no-enter:b",
    ),
    _s("tmux capture", "tmux:capture", "print a session's screen", pos=("session",), flags="lines:v"),
    _s(
        "tmux restart",
        "tmux:restart",
        "restart the session's shell and runtime",
        pos=("session",),
        flags="force:b runtime:v",
    ),
    _s(
        "tmux queue",
        "tmux:queue",
        "queue a command; typed when the pane is idle",
        pos=("session", "command*"),
        flags="wait:b timeout:v silence:v",
    ),
    _s(
        "tmux queue-status", "tmux:queue_status", "a session's queued and finished commands", pos=("session",)
    ),
    _s("tmux cancel", "tmux:cancel", "cancel a queued or running command", pos=("command_id",)),
    _s(
        "tmux snapshot save",
        "snapshot:save",
        "save my conversation state for the session after a restart",
        flags="reason:v",
    ),
    _s("tmux snapshot restore", "snapshot:restore", "print my restart snapshot and remove it"),
    _s("tmux snapshot check", "snapshot:check", "is there a restart snapshot for me (exit 0) or not (1)"),
    _s("runtime list", "tmux:runtime_list", "runtime presets"),
    _s("runtime show", "tmux:runtime_show", "one preset in full", pos=("runtime",)),
    _s(
        "runtime set-default",
        "tmux:runtime_set_default",
        "the runtime used when none is named",
        pos=("runtime",),
    ),
    # monitors
    _s(
        "monitor start",
        "monitor:start",
        "watch a command's output: monitor start ... -- CMD ARGS",
        flags="name:v match:v to:v debounce:v schedule:v cwd:v env:l",
        rest=True,
    ),
    _s(
        "monitor watch-pane",
        "monitor:watch_pane",
        "watch an agent's pane stream",
        flags="name:v session:v match:v to:v debounce:v",
    ),
    _s(
        "monitor watch-file",
        "monitor:watch_file",
        "watch lines appended to a file",
        flags="name:v path:v match:v to:v debounce:v allow-outside:b",
    ),
    _s("monitor list", "monitor:list_", "running monitors (--all: every rule)", flags="all:b"),
    _s("monitor show", "monitor:show", "one rule", pos=("id",)),
    _s("monitor stop", "monitor:stop", "stop a rule (one you created; any, as the operator)", pos=("id",)),
    _s("monitor restart", "monitor:restart", "restart a rule", pos=("id",)),
    _s("monitor logs", "monitor:logs", "a rule's matches and errors", pos=("id",), flags="limit:v"),
    _s(
        "tui",
        "console:tui",
        "the console: team, conversations, compose (hosts the engine or attaches)",
        flags="stop-engine:b",
    ),
    # agent runtimes
    _s(
        "mcp serve",
        "mcp:serve",
        "MCP stdio server for this agent (tools; channel push into Claude Code: --channel on when the"
        " session was started with channels, auto pushes without counting it delivered, off)",
        flags="agent-id:v channel:v",
    ),
    # engine
    _s("daemon start", "engine:start", "start the headless engine", flags="local:b"),
    _s("daemon stop", "engine:stop", "stop the engine (not from outside every worktree)"),
    _s("daemon restart", "engine:restart", "restart the engine", flags="local:b"),
    _s("daemon status", "engine:status", "is the engine running"),
    _s(
        "sync status",
        "sync:status",
        "the journal's sync: mode and why, remote, last sync, errors, recent cycles",
    ),
    _s(
        "sync force",
        "sync:force",
        "run a sync cycle now (--wait: until it finished, and print it)",
        flags="wait:b",
    ),
    _s("daemon logs", "engine:logs", "the engine's log", flags="lines:v since:v follow:b"),
    _s("doctor", "engine:doctor", "check journal and projection consistency"),
    _s(
        "doctor rebuild",
        "engine:rebuild",
        "rebuild the projection from the journal",
        flags="force:b",
    ),
    _s(
        "doctor integrations",
        "orientation:doctor_integrations",
        "runtime files, prime entries, hooks and MCP per runtime and agent, with fixes",
        flags="agent:v",
    ),
]

# `agent start|end|...` are the same as `session ...`.
_ROWS += [
    (f"agent {r[0].split()[1]}", *r[1:])
    for r in _ROWS
    if r[0] in ("session start", "session end", "session heartbeat", "session set-intent", "session set-task")
]

BY_PATH: dict[str, Row] = {r[0]: r for r in _ROWS}


def commands() -> list[Spec]:
    """Every command's `Spec`, in the order of the table."""
    return [_spec(r) for r in _ROWS]


def _global_flag(tok: str) -> tuple[str, str | None, bool]:
    """A token read as a global flag: (its name, its kind or None when it is none, whether its value
    is in it, `--repo=P`)."""
    from thrum_engine.cli.args import GLOBAL_ALIASES, GLOBAL_FLAGS

    name, eq, _ = tok.partition("=")
    name = GLOBAL_ALIASES.get(name, name)
    return name, GLOBAL_FLAGS.get(name), bool(eq)


def find(argv: list[str]) -> tuple[Spec | None, list[str]]:
    """Match the longest command path; global flags may come before it (`thrum --repo P team`)."""
    words: list[int] = []
    i = 0
    while i < len(argv) and len(words) < 3:  # `tmux snapshot save` is three words
        tok = argv[i]
        if tok == "--":
            break
        if tok.startswith("-"):
            _name, kind, inline = _global_flag(tok)
            if kind == VALUE and not inline:
                i += 1
            elif kind is None:
                break
        else:
            words.append(i)
        i += 1
    for n in range(len(words), 0, -1):
        row = BY_PATH.get(" ".join(argv[j] for j in words[:n]))
        if row:
            drop = set(words[:n])
            return _spec(row), [t for j, t in enumerate(argv) if j not in drop]
    return None, argv


def _global_run(argv: list[str]) -> tuple[int, str | None]:
    """How many leading tokens are global flags with their values, and the global flag left
    without its value (`thrum --repo`), if one is."""
    i = 0
    while i < len(argv):
        name, kind, inline = _global_flag(argv[i])
        if kind is None:
            break
        if kind == VALUE and not inline:
            if i + 1 >= len(argv):
                return i, name
            i += 1
        i += 1
    return i, None


def _past_globals(argv: list[str]) -> str:
    """The first token after the leading global flags: the word that named no command."""
    n, _ = _global_run(argv)
    return argv[n] if n < len(argv) else argv[0]


def only_globals(argv: list[str]) -> str | None:
    """The error for a command line of global flags alone (`thrum --repo`, `thrum --json`), else
    None: such a flag is known, so "unknown flag" misled; what is missing is its value or a command."""
    n, valueless = _global_run(argv)
    if valueless:
        return f"{valueless} needs a value"
    return f"{argv[0].partition('=')[0]} needs a command (run `thrum --help`)" if n == len(argv) else None


AUTHORITY = """who may do what:
  the operator (the console, or a caller in the main checkout) may do everything;
  an agent (a caller in one of the repo's worktrees) acts on its own agent, tmux sessions, monitor rules
    and worktree, and may send, register itself and stop/restart the engine;
  outside every worktree (or in a directory git does not list as one): read only.
  purge --confirm, agent cleanup --force and runtime set-default are the operator's."""


def help_text(prefix: str = "") -> str:
    groups = [(path, row[2]) for path, row in BY_PATH.items() if path.startswith(prefix)]
    width = max(len(path) for path, _ in groups)
    lines = [f"usage: thrum {prefix}COMMAND [flags]   (global: --json --quiet --verbose --repo PATH)", ""]
    lines += [f"  {path.ljust(width)}  {summary}" for path, summary in groups]
    if not prefix:
        lines += ["", AUTHORITY]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        line(help_text())
        return 0
    if argv[0] == "--version":
        argv = ["version"]
    spec, rest = find(argv)
    if spec is None:
        groups = {path.split()[0] for path in BY_PATH if " " in path}
        head = _past_globals(argv)
        head = head.partition("=")[0] if head.startswith("-") else head
        if head in groups and head not in BY_PATH:
            words = [t for t in argv if not t.startswith("-")][:2]
            group = " ".join(words)  # `tmux snapshot`: a group inside a group
            if len(words) < 2 or not any(path.startswith(group + " ") for path in BY_PATH):
                group = head
            depth = len(group.split())
            if "--help" in argv or "-h" in argv or "help" in words[1:]:
                line(help_text(group + " "))  # `thrum schedule --help`: the group's commands
                return 0
            choices = ", ".join(
                dict.fromkeys(path.split()[depth] for path in BY_PATH if path.startswith(group + " "))
            )
            bare = [t for t in argv if not t.startswith("-")]
            given = bare[depth] if len(bare) > depth else None
            error(
                f"unknown {group} subcommand: {given} (use {choices})"
                if given
                else f"{group} needs a subcommand: {choices}"
            )
        elif (missing := only_globals(argv)) is not None:
            error(missing)
        elif head.startswith("-"):
            error(f"unknown flag: {head}")
        else:
            error(f"unknown command: {head} (run `thrum --help`)")
        return 1
    flags_part = rest[: rest.index("--")] if "--" in rest else rest
    wants_help = "--help" in flags_part or "-h" in flags_part
    try:
        args = parse(spec, rest)
    except UsageError as exc:
        if not wants_help:  # `thrum agent delete --help` needs no NAME
            error(str(exc))
            return spec.usage_exit
        args = {"help": True}
    if args.get("help"):
        line("usage: thrum " + usage(spec) + "\n\n" + spec.summary)
        return 0
    from thrum_engine.cli.call import Ctx, run

    return run(Ctx(spec, args), spec.handler)


def exit_with(code: int) -> "NoReturn":
    """End the process with `code`, skipping the interpreter's teardown when nothing needs it.

    Teardown frees every module and object one by one: ~2 ms here, a sixth of a `thrum send`,
    for a process that is about to vanish anyway (Instagram's `os._exit` at shutdown, for the same
    reason). It is skipped only when no exit work can be pending: `atexit` was never imported (so
    nothing registered a callback: logging's flush, weakref.finalize, tempfile, multiprocessing,
    concurrent.futures all import it), and `threading` was never imported (so no thread waits to
    be joined). Every file the CLI writes is closed by a `with`; stdout and stderr are flushed
    here. Anything else (a command that spawned the engine, used threads or logging) exits the
    normal way."""
    modules = sys.modules
    if "atexit" in modules or "threading" in modules:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (BrokenPipeError, ValueError):  # a reader that went away (`| head`), or closed
            pass
        except OSError:
            code = code or 1  # output that could not be written (a full disk) is a failure
    os._exit(code)


if __name__ == "__main__":
    exit_with(main())

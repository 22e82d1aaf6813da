"""Engine methods for sessions: create, launch, start, status, kill, send, capture, restart."""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from thrum_engine import integrations, names
from thrum_engine.durations import iso
from thrum_engine.engine.authority import agent_worktree, require_agent_owner, require_operator, require_owner
from thrum_engine.engine.caller import Caller
from thrum_engine.engine.registry import method
from thrum_engine.errors import Conflict, InvalidInput, InvalidName, NotFound, RuntimeExited, ThrumError
from thrum_engine.files import create_private
from thrum_engine.identity import author_of, enroll, require_room
from thrum_engine.integrations.engine_side import install_for
from thrum_engine.layout import current_branch, worktree_of
from thrum_engine.model import Params
from thrum_engine.tmux import health, results, runtimes
from thrum_engine.tmux.manager import Session, TmuxManager
from thrum_engine.tmux.server import TmuxError, default_shell, shell_command

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

T = TypeVar("T")

SCRUB_ENV = (
    "THRUM_NAME",
    "THRUM_ROLE",
    "THRUM_MODULE",
    "THRUM_HOME",
    "THRUM_SOCKET",
    "THRUM_LOCAL",
    "THRUM_NO_HINTS",
)


class CreateParams(Params):
    session: str
    cwd: str
    agent: str | None = None
    role: str | None = None
    module: str = ""
    intent: str = ""
    runtime: str | None = None
    no_agent: bool = False
    force: bool = False


class SessionParams(Params):
    session: str


class LaunchParams(Params):
    session: str
    runtime: str | None = None
    prompt: str | None = None


class StartParams(CreateParams):
    prompt: str | None = None


class SendParams(Params):
    session: str
    text: str
    enter: bool = True


class CaptureParams(Params):
    session: str
    lines: int = 50


class RestartParams(Params):
    session: str
    force: bool = False
    runtime: str | None = None


def manager(engine: Engine) -> TmuxManager:
    m = engine.tmux
    if m is None:
        raise ThrumError("tmux is not available to this engine (is tmux installed?)")
    return m


def check_session_name(name: str) -> None:
    problem = names.problem("session", name)
    if problem:
        raise InvalidName(problem)


def get_session(engine: Engine, name: str) -> Session:
    check_session_name(name)
    s = manager(engine).sessions.get(name)
    if s is None:
        raise NotFound(f"no session {name} in this repo (see `thrum tmux list`)")
    return s


def session_owner(engine: Engine, s: Session) -> str | None:
    """The worktree a session belongs to: its agent's, else the one its pane was started in."""
    return engine.agents.get(s.agent, {}).get("worktree") or worktree_of(engine.layout.repo, s.cwd)


def owned_session(engine: Engine, caller: Caller, name: str, action: str) -> Session:
    """The session, once the caller may act on it (its own worktree's, or the operator)."""
    s = get_session(engine, name)
    require_owner(engine, caller, session_owner(engine, s), f"{action} session {s.name}")
    return s


def runtime_for(engine: Engine, name: str | None) -> runtimes.Runtime:
    return runtimes.get(engine.layout.repo, name or engine.settings.runtimes.default)


def session_state(engine: Engine, s: Session) -> str:
    """Upstream's words, which its scripts test: `dead` (the pane's process is gone), `stale` (nothing
    has changed in the pane for the presence offline threshold), `alive`."""
    if s.stream.dead or s.state.state == "exited":
        return "dead"
    quiet = time.time() - s.state.since
    return "stale" if quiet > engine.settings.presence.offline_after_seconds else "alive"


def session_view(engine: Engine, s: Session) -> dict:
    wt = engine.agents.get(s.agent, {}).get("worktree") or s.cwd
    return {
        "name": s.name,
        "agent": s.agent or None,
        "runtime": s.runtime.name,
        "pane_id": s.pane_id,
        "cwd": s.cwd,
        "state": session_state(engine, s),
        # CLI.md: the pane's working/idle/blocked state is a key of its own, a word scripts compare
        # (`.pane_state == "idle"`); what it was read from and when are under `pane`.
        "pane_state": s.state.state,
        "pane": s.state.view(),
        "branch": current_branch(wt) if wt and os.path.isdir(wt) else None,
    }


def pane_command(engine: Engine, agent: str | None, inherited: list[str], path: str) -> str:
    """A clean shell: no inherited THRUM_* (the pane's own THRUM_NAME is its agent), and `path`
    (health.agent_pane_path) so `thrum` resolves in the pane however it was installed."""
    unset = tuple(dict.fromkeys([*SCRUB_ENV, *inherited]))
    env = {"THRUM_NAME": agent} if agent else {}
    return shell_command(
        engine.settings.tmux.shell or default_shell(), env={**env, "PATH": path}, unset=unset
    )


def inherited_thrum_vars(m: TmuxManager) -> list[str]:
    """THRUM_* names a pane could inherit: the engine's own env and the tmux server's global env."""
    names = [k for k in os.environ if k.startswith("THRUM_")]
    try:
        names += [
            ln.split("=", 1)[0] for ln in m.tmux.cmd("show-environment", "-g") if ln.startswith("THRUM_")
        ]
    except TmuxError:
        pass  # no server yet: it will start with the engine's env, covered above
    return sorted(set(names))


def tmux_call(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except TmuxError as exc:
        raise ThrumError(f"tmux: {exc}") from None


async def tmux_call_async(work: Awaitable[T]) -> T:
    """`tmux_call` for the manager's own async typing."""
    try:
        return await work
    except TmuxError as exc:
        raise ThrumError(f"tmux: {exc}") from None


def session_place(engine: Engine, cwd: str) -> tuple[str, str]:
    """(the pane's directory, the worktree it is in), or why a session cannot start there."""
    real = os.path.realpath(os.path.expanduser(cwd))
    if not os.path.isdir(real):
        raise InvalidInput(f"--cwd {cwd} is not a directory")
    wt = worktree_of(engine.layout.repo, real)
    if wt is None:
        raise InvalidInput(f"--cwd {real} is not inside a worktree of {engine.layout.repo}")
    return real, wt


def session_agent(engine: Engine, p: CreateParams) -> tuple[str | None, str]:
    """(the agent the session runs, its role): the agent name defaults to the session's."""
    agent = None if p.no_agent else (p.session if p.agent is None else p.agent)  # "" is a bad name
    role = p.role or (engine.agents.get(agent, {}).get("role") if agent else None) or "agent"
    if agent is not None:
        problem = names.agent_name_problem(agent, role)
        if problem:
            raise InvalidName(problem + " (the agent name defaults to the session name; pass --name)")
    return agent, role


async def create_tmux_session(
    engine: Engine,
    *,
    session: str,
    cwd: str,
    worktree: str,
    runtime: runtimes.Runtime,
    agent: str | None = None,
    role: str = "agent",
    module: str = "",
    intent: str = "",
    force: bool = False,
) -> Session:
    """A new session (a shell until launched) in `cwd`, inside `worktree`; `agent` is registered
    there first, so the identity exists before anything runs in the pane. `force` replaces a
    session of this repo with the same name. Callers check who may (see `create`)."""
    m = manager(engine)
    check_session_name(session)
    m.check_stream(session)
    async with m.lock:
        await m.discover()
        if await session_clash(engine, session, force):
            await m.kill(session)
        if agent:
            await enroll(
                engine,
                name=agent,
                role=role,
                worktree=os.path.realpath(worktree),
                module=module,
                runtime=runtime.name,
                intent=intent,
                force=force,
                tmux_session=session,
            )
        tags = {
            "@thrum_repo": engine.layout.repo,
            "@thrum_agent": agent or "",
            "@thrum_runtime": runtime.name,
        }
        inherited = await asyncio.to_thread(inherited_thrum_vars, m)
        command = pane_command(engine, agent, inherited, health.agent_pane_path())
        row = await asyncio.to_thread(tmux_call, m.tmux.create, session, cwd, command, tags=tags)
        stream = m.stream_path(session)
        await asyncio.to_thread(create_private, stream, b"")  # a new session starts a new stream
        await asyncio.to_thread(tmux_call, m.tmux.pipe, row["pane_id"], stream)
        s = await m.adopt(session, row["pane_id"], agent or "", runtime, cwd)
        s.launched = False  # a shell until `launch`: not a runtime that exited
        s.saw(row)
    return s


async def session_clash(engine: Engine, session: str, force: bool = False) -> bool:
    """Whether a session of this repo named `session` is there to replace (with `force`); raises
    Conflict when the name is taken and may not be replaced. tmux names sessions per server, not
    per repo: another repo's agent of the same name holds it. Ask before creating anything that
    the session would belong to (walk bug 4: a worktree, branch and agent left behind)."""
    check_session_name(session)
    rows = await asyncio.to_thread(manager(engine).tmux.sessions)
    clash = next((r for r in rows if r["session_name"] == session), None)
    if clash is None:
        return False
    if clash["@thrum_repo"] != engine.layout.repo:
        raise Conflict(
            f"tmux session {session} exists and is not this repo's (tmux session names are per"
            " server: pick another agent name)"
        )
    if not force:
        raise Conflict(f"session {session} already exists (pass --force to replace it)")
    return True


async def checked_create(engine: Engine, caller: Caller, p: CreateParams) -> Session:
    """`tmux.create` once the caller may: its own worktree's session (or the operator), and an
    agent moved here only by whoever owns the agent's home."""
    check_session_name(p.session)
    cwd, wt = session_place(engine, p.cwd)
    require_owner(engine, caller, wt, f"creating a session in {wt}")
    runtime = runtime_for(engine, p.runtime or ("shell" if p.no_agent else None))  # no agent: a plain shell
    agent, role = session_agent(engine, p)
    home = agent_worktree(engine, agent)
    if home and os.path.realpath(home) != os.path.realpath(wt):  # moving it: the caller must own its home
        require_owner(engine, caller, home, f"moving @{agent} here")
    await session_clash(engine, p.session, p.force)  # a name another repo holds: before any file is written
    manager(engine).check_stream(p.session)  # a planted log link, likewise
    if agent:  # the same refusal `enroll` makes, before runtime files are installed
        await require_room(os.path.realpath(wt), agent, named_by_env=True, force=p.force)
    # The files of the runtime the session will run (the default one too, when none is named):
    # `launch` types that runtime's prime command, which exists only once its skill is installed.
    await install_for(engine, wt, runtime.name, agent, p.role, p.module)
    return await create_tmux_session(
        engine,
        session=p.session,
        cwd=cwd,
        worktree=wt,
        runtime=runtime,
        agent=agent,
        role=role,
        module=p.module,
        intent=p.intent,
        force=p.force,
    )


@method("tmux.create", CreateParams, writes=True)
async def create(engine: Engine, caller: Caller, p: CreateParams) -> dict:
    return {"session": session_view(engine, await checked_create(engine, caller, p))}


async def check_runtime(engine: Engine, runtime: runtimes.Runtime) -> None:
    """Refuse at once a runtime whose binary the pane could not run: the shell would say
    `command not found` while the launch waited its whole timeout for a prompt."""
    path = health.agent_pane_path()
    binary = health.missing_binary(runtime, path)
    if binary:
        raise InvalidInput(health.not_found_message(binary, path))


async def launch_runtime(engine: Engine, s: Session, runtime: runtimes.Runtime, prompt: str | None) -> dict:
    """Type the runtime's command into the pane's shell, wait for its prompt, then prime it.

    Every way a runtime is started in a pane comes through here (launch, start, restart, relaunch),
    so the runtime's files are installed here, in the session's worktree: the pane may have been
    created for another runtime (or for the default one, before its files existed), and what is
    typed must be a command that runtime knows. Raises RuntimeExited when the runtime is back at
    the shell at once (not found, not logged in, a crash): it was not launched."""
    m = manager(engine)
    await check_runtime(engine, runtime)
    worktree = worktree_of(engine.layout.repo, s.cwd)
    if worktree is not None:
        agent = engine.agents.get(s.agent or "", {})
        await install_for(
            engine, worktree, runtime.name, s.agent or None, agent.get("role"), agent.get("module") or ""
        )
    s.runtime = runtime
    s.stream.runtime = runtime
    await asyncio.to_thread(
        tmux_call, m.tmux.cmd, "set-option", "-t", f"={s.name}:", "@thrum_runtime", runtime.name
    )
    if s.agent and s.agent in engine.agents and engine.agents[s.agent].get("runtime") != runtime.name:
        await engine.commit(
            engine.event("agent.update", s.agent, {"name": s.agent, "fields": {"runtime": runtime.name}})
        )
    result = {
        "session": s.name,
        "runtime": runtime.name,
        "launched": False,
        "primed": False,
        "prompted": False,
        "state": None,
    }
    if not runtime.command:
        if prompt:  # the shell is the runtime: the first prompt is typed into it
            await m.type_into(s, prompt)
            result["prompted"] = True
        result["state"] = s.state.view()
        return result
    started = time.time()
    await m.type_into(s, shlex.join(runtime.command))
    s.typed_runtime()
    result["launched"] = True
    state = await wait_for_prompt(engine, s, started)
    if state is None:
        lines = [ln for ln in await asyncio.to_thread(tmux_call, m.tmux.capture, s.pane_id, 20) if ln.strip()]
        said = (
            lines[-2].strip() if len(lines) >= 2 else "its pane is at the shell again"
        )  # (the last: the prompt)
        raise RuntimeExited(f"{runtime.name} exited at once in session {s.name}: {said}")
    result["state"] = state.view()
    if state.state != "idle":
        result["note"] = "not primed: " + (
            "a dialog is open in the pane"
            if state.state == "blocked"
            else f"the runtime did not reach its prompt ({state.state})"
        )
        return result
    prime = runtime.prime
    missing = integrations.prime_missing(runtime.name, worktree) if prime and worktree else None
    if missing:
        prime = None
        result["note"] = f"not primed: {missing}"
    elif prime and s.agent and runtime.name in HOOK_PRIMES and hook_primed(engine, s.agent, started):
        # RUNTIMES.md: the prime is skipped when the SessionStart hook primes; typed as well, the
        # agent read its briefing twice (walk, session 21).
        prime = None
        result["primed"] = True
        result["primed_by"] = "hook"
    for text in filter(None, (prime, prompt)):
        typed_at = time.time()
        await m.type_into(s, text)
        if text == prime:
            result["primed"] = True
        else:
            result["prompted"] = True
        if prompt and text == prime:
            await m.wait_state(
                s,
                {"idle", "blocked"},
                output_after=typed_at,
                timeout=engine.settings.tmux.launch_timeout_seconds,
            )
    result["state"] = s.state.view()
    return result


# The runtimes whose SessionStart hook puts the briefing in front of the model as the session starts
# (RUNTIMES.md: Claude Code's additionalContext; Gemini's, "injected as the first turn in history";
# Cursor's additional_context). Only a hook seen answering since the launch counts, so Gemini with its
# hooks switched off, say, is still typed the prime. OpenCode's plugin records the start but briefs on
# the first prompt, and Codex runs SessionStart with the first turn: without the typed prime nothing
# would come (the prime's own words say to skip it once the hook's briefing is in context).
HOOK_PRIMES = frozenset({"claude", "gemini", "cursor"})


def hook_primed(engine: Engine, agent: str, since: float) -> bool:
    """Whether `agent`'s session-start hook fired since `since` (it gave the briefing the prime would)."""
    from thrum_engine import hooks_log

    ag = hooks_log.state(engine).agents.get(agent)
    fired = ag.fired.get("session-start") if ag is not None else None
    return bool(fired) and float(fired.get("at", 0)) >= since and not fired.get("unanswered")


# A runtime seen at the shell prompt this long after it was typed has exited (or never started),
# once the shell has read the line: a shell still starting (its rc files, a loaded machine) is the
# pane's command too, with the line still queued on its tty.
EXITED_AFTER_SECONDS = 1.0


async def wait_for_prompt(engine: Engine, s: Session, started: float):
    """The pane's state once the runtime shows its prompt (or a dialog), or at the launch timeout;
    None as soon as the pane is back at its shell: a runtime that fails at start (not logged in, a
    crash, a broken install) is told in a second, not after the whole timeout."""
    m = manager(engine)
    deadline = time.monotonic() + engine.settings.tmux.launch_timeout_seconds
    while True:
        left = deadline - time.monotonic()
        state = await m.wait_state(
            s, {"idle", "blocked"}, output_after=started, timeout=max(min(left, 1.0), 0)
        )
        if (state.state in ("idle", "blocked") and s.stream.last_output_wall > started) or left <= 1.0:
            return state
        if time.time() - started >= EXITED_AFTER_SECONDS:
            try:
                out = await asyncio.to_thread(m.tmux.cmd, "display-message", "-p", "-t", s.pane_id, PANE_NOW)
            except TmuxError:
                return None  # the pane is gone
            command, _, tty = (out[0] if out else "").partition("\t")
            s.saw({"pane_current_command": command.strip(), "pane_tty": tty.strip()})
            if s.exited:
                return None


PANE_NOW = "#{pane_current_command}\t#{pane_tty}"  # what `Session.saw` reads, for one pane


@method("tmux.launch", LaunchParams, writes=True, timeout=False)
async def launch(engine: Engine, caller: Caller, p: LaunchParams) -> dict:
    check_session_name(p.session)
    m = manager(engine)
    await m.discover()
    s = m.sessions.get(p.session) or m.for_agent(p.session)
    adopted = False
    if s is None:
        from thrum_engine.tmux.adoption import adopt_foreign

        if p.runtime:
            await check_runtime(engine, runtime_for(engine, p.runtime))  # refuse before taking it on
        s = await adopt_foreign(engine, m, caller, p.session)  # a session made by hand: taken on
        adopted = s is not None
    if s is None:
        return await relaunch(engine, caller, p)
    require_owner(engine, caller, session_owner(engine, s), f"launching in session {s.name}")
    if s.stream.dead:
        return await restart(engine, caller, RestartParams(session=s.name, force=True, runtime=p.runtime))
    if adopted:  # its agent's runtime, else the default: the shell it was adopted as is no choice
        runtime = runtime_for(engine, p.runtime or engine.agents.get(s.agent, {}).get("runtime") or None)
    else:
        runtime = runtime_for(engine, p.runtime or s.runtime.name)
    return await record_dispatch(
        engine, caller, s.agent, p.prompt, await launch_runtime(engine, s, runtime, p.prompt)
    )


async def record_dispatch(
    engine: Engine, caller: Caller, agent: str | None, prompt: str | None, result: dict
) -> dict:
    """The first prompt typed into an agent's runtime is kept as a message from whoever gave it, so
    the conversation and the feed show what the agent was asked to do (walk, missing 12). It was
    typed already: nobody nudges for it, and it is delivered as a nudge is once typed (walk bug 3:
    it stayed `stored (not yet delivered)`)."""
    if not result.get("prompted") or not prompt or not agent or agent not in engine.agents:
        return result
    author = author_of(engine, caller)
    if author == agent:
        return result
    ev = await engine.post(author, prompt, to=["@" + agent], typed=True)
    message_id = ev["data"]["message_id"]
    await engine.commit(
        engine.event(
            "message.notified", "system", {"recipient": agent, "message_ids": [message_id], "at": iso()}
        )
    )
    return {**result, "message_id": message_id}


async def relaunch(engine: Engine, caller: Caller, p: LaunchParams) -> dict:
    """An agent whose session is gone, started again in place: a new session (named as its last one)
    in the same worktree, under the same identity and runtime."""
    m = manager(engine)
    agent = engine.agents.get(p.session)
    if agent is None:
        agent = next(
            (engine.agents[a] for a, gone in m.gone.items() if gone == p.session and a in engine.agents), None
        )
    if agent is None:
        raise NotFound(f"no session or agent {p.session} in this repo (see `thrum tmux list`)")
    require_agent_owner(engine, caller, agent["name"], f"relaunching @{agent['name']}")
    wt = agent.get("worktree")
    if not wt or not os.path.isdir(wt):
        raise InvalidInput(f"@{agent['name']}'s worktree {wt} is gone; nothing to relaunch in")
    runtime = runtime_for(engine, p.runtime or agent.get("runtime"))
    await check_runtime(engine, runtime)  # before a session is made
    name: str = agent["name"]
    session = m.gone.get(name) or name
    m.check_stream(session)
    cwd, worktree = session_place(engine, wt)
    await install_for(engine, worktree, runtime.name, name, agent.get("role"), agent.get("module") or "")
    s = await create_tmux_session(
        engine,
        session=session,
        cwd=cwd,
        worktree=worktree,
        runtime=runtime,
        agent=agent["name"],
        role=agent.get("role") or "agent",
        module=agent.get("module") or "",
        intent=agent.get("intent") or "",
    )
    result = await launch_runtime(engine, s, runtime, p.prompt)
    return {**await record_dispatch(engine, caller, agent["name"], p.prompt, result), "relaunched": True}


@method("tmux.start", StartParams, writes=True, timeout=False)
async def start(engine: Engine, caller: Caller, p: StartParams) -> dict:
    await check_runtime(engine, runtime_for(engine, p.runtime))  # before anything is created
    s = await checked_create(engine, caller, p)
    created = session_view(engine, s)
    launched = await record_dispatch(
        engine, caller, s.agent, p.prompt, await launch_runtime(engine, s, s.runtime, p.prompt)
    )
    return {"session": session_view(engine, s), "launch": launched, "created": created}


@method("tmux.status", Params)
async def status(engine: Engine, caller: Caller, p: Params) -> dict:
    m = manager(engine)
    await m.discover()
    for s in list(m.sessions.values()):
        await m.refresh(s)
    return {
        "sessions": [session_view(engine, s) for s in sorted(m.sessions.values(), key=lambda s: s.name)],
        "socket_name": engine.settings.tmux.socket_name,
        "problems": [{"session": n, "problem": m.problems[n]} for n in sorted(m.problems)],
    }


@method("tmux.kill", SessionParams, writes=True)
async def kill(engine: Engine, caller: Caller, p: SessionParams) -> dict:
    s = owned_session(engine, caller, p.session, "killing")
    await manager(engine).kill(s.name)
    return {"killed": s.name}


@method("tmux.send", SendParams, writes=True)
async def send(engine: Engine, caller: Caller, p: SendParams) -> dict:
    s = owned_session(engine, caller, p.session, "typing into")
    if not p.text:
        raise InvalidInput("nothing to send")
    await tmux_call_async(manager(engine).type_into(s, p.text, enter=p.enter))
    return {"session": s.name, "sent": len(p.text)}


@method("tmux.interrupt", SessionParams, writes=True)
async def interrupt(engine: Engine, caller: Caller, p: SessionParams) -> dict:
    """The runtime's own interrupt key (Escape for the agent CLIs, which a double C-c quits; C-c for
    a shell): the console asks first; a key, not text, so it reaches the runtime as a signal."""
    s = owned_session(engine, caller, p.session, "interrupting")
    await tmux_call_async(manager(engine).send_keys(s, *s.runtime.interrupt.split()))
    return {"session": s.name, "interrupted": True, "keys": s.runtime.interrupt}


class AnswerParams(Params):
    session: str
    approve: bool


@method("tmux.answer", AnswerParams, writes=True)
async def answer(engine: Engine, caller: Caller, p: AnswerParams) -> dict:
    """Approve or deny the permission dialog in a pane with its runtime's own keys, once, and only
    while the pane still shows that dialog."""
    from thrum_engine.monitors.permissions import answer_dialog

    s = owned_session(engine, caller, p.session, "answering the dialog in")
    keys = s.runtime.approve if p.approve else s.runtime.deny
    if not await answer_dialog(engine, s, keys):
        raise Conflict(f"{s.name} no longer shows a permission dialog ({s.state.state}); nothing was typed")
    return {"session": s.name, "approved": p.approve, "keys": keys}


@method("tmux.capture", CaptureParams)
async def capture(engine: Engine, caller: Caller, p: CaptureParams) -> dict:
    s = get_session(engine, p.session)
    if not 1 <= p.lines <= 10_000:
        raise InvalidInput("--lines must be between 1 and 10000")
    lines = await asyncio.to_thread(tmux_call, manager(engine).tmux.capture, s.pane_id, p.lines)
    while lines and not lines[-1].strip():
        lines.pop()
    return {"session": s.name, "lines": lines[-p.lines :]}


@method("tmux.restart", RestartParams, writes=True, timeout=False)
async def restart(engine: Engine, caller: Caller, p: RestartParams) -> dict:
    m = manager(engine)
    s = owned_session(engine, caller, p.session, "restarting")
    await m.refresh(s)
    if s.state.state in ("working", "blocked") and not s.stream.dead and not p.force:
        raise Conflict(
            f"session {s.name} is {s.state.state} ({s.state.source}); pass --force to restart it anyway"
        )
    runtime = runtime_for(engine, p.runtime or s.runtime.name)
    await check_runtime(engine, runtime)  # before the old pane is killed
    inherited = await asyncio.to_thread(inherited_thrum_vars, m)
    path = health.agent_pane_path()
    await asyncio.to_thread(
        tmux_call, m.tmux.respawn, s.pane_id, s.cwd, pane_command(engine, s.agent, inherited, path)
    )
    s.stream.dead = False
    await asyncio.sleep(0.2)  # let the new shell print its prompt before the runtime is typed
    return await launch_runtime(engine, s, runtime, None)


# -- runtime presets --


class RuntimeNameParams(Params):
    name: str


@method("runtime.list", Params)
async def runtime_list(engine: Engine, caller: Caller, p: Params) -> dict:
    presets = await asyncio.to_thread(runtimes.load, engine.layout.repo)
    return {
        "runtimes": [r.view() for _, r in sorted(presets.items())],
        "default": engine.settings.runtimes.default,
    }


@method("runtime.show", RuntimeNameParams)
async def runtime_show(engine: Engine, caller: Caller, p: RuntimeNameParams) -> dict:
    r = await asyncio.to_thread(runtimes.get, engine.layout.repo, p.name)
    return {"runtime": r.view(), "default": engine.settings.runtimes.default == r.name}


class RuntimeCheckParams(RuntimeNameParams):
    agent: str | None = None
    role: str | None = None


@method("runtime.check", RuntimeCheckParams)
async def runtime_check(engine: Engine, caller: Caller, p: RuntimeCheckParams) -> dict:
    """Whether an agent could start in a pane with this runtime: the new-agent dialog asks before it
    creates anything (the agent's name first, then the runtime's binary on the pane's PATH)."""
    if p.agent is not None:
        problem = names.agent_name_problem(p.agent, p.role or "agent")
        if problem:
            raise InvalidName(problem)
    r = await asyncio.to_thread(runtimes.get, engine.layout.repo, p.name)
    await check_runtime(engine, r)
    return {"runtime": r.name, "ok": True}


@method("runtime.set_default", RuntimeNameParams, writes=True)
async def runtime_set_default(engine: Engine, caller: Caller, p: RuntimeNameParams) -> dict:
    require_operator(engine, caller, "changing the repo's default runtime")
    r = await asyncio.to_thread(runtimes.get, engine.layout.repo, p.name)
    from thrum_engine.settings import update_config_file

    # `runtime.primary` is the upstream key init records beside ours: left as it was, the file and
    # the effective default disagreed (walk C, C7).
    changes = {"runtimes": {"default": r.name}, "runtime": {"primary": r.name}}
    await asyncio.to_thread(update_config_file, engine.layout.config_file, changes)
    engine.settings.runtimes.default = r.name
    return {"default": r.name}


# -- command queue --


class QueueParams(Params):
    session: str
    command: str
    wait: bool = False
    timeout: float = 600
    silence: float | None = None


class CommandIdParams(Params):
    command_id: str


def _queue(engine: Engine):
    q = manager(engine).queue
    if q is None:
        raise ThrumError("the command queue is not running")
    return q


def command_view(row: dict) -> dict:
    return {
        "command_id": row["id"],
        "session": row["session"],
        "command": row["command"],
        "requester": row["requester"],
        "status": row["status"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "output": row["output"],
        "note": row["note"],
        "kind": row["kind"],
        "runtime": row["runtime"],
        "exit_code": row["exit_code"],
        "duration_seconds": row["duration"],
        "result": results.label(row),
    }


@method("tmux.queue", QueueParams, writes=True, timeout=False)
async def queue(engine: Engine, caller: Caller, p: QueueParams) -> dict:
    s = owned_session(engine, caller, p.session, "queueing into")
    if not p.command.strip():
        raise InvalidInput("nothing to queue")
    if "\n" in p.command:
        raise InvalidInput("a queued command is one line")
    if not 0 < p.timeout <= 86400:
        raise InvalidInput("--timeout must be between 0 and 86400 seconds")
    silence = engine.settings.tmux.silence_seconds if p.silence is None else p.silence
    if not 0 <= silence <= 3600:
        raise InvalidInput("--silence must be between 0 and 3600 seconds")
    q = _queue(engine)
    row = await q.enqueue(
        s.name, p.command, caller.name if caller.name in engine.agents else None, p.timeout, silence
    )
    if p.wait:
        row = await q.wait(row["id"], p.timeout + 5) or row
    return {"command": command_view(row)}


@method("tmux.queue_status", SessionParams)
async def queue_status(engine: Engine, caller: Caller, p: SessionParams) -> dict:
    s = get_session(engine, p.session)
    return {"session": s.name, "commands": [command_view(r) for r in await _queue(engine).listing(s.name)]}


@method("tmux.cancel", CommandIdParams, writes=True)
async def cancel(engine: Engine, caller: Caller, p: CommandIdParams) -> dict:
    from thrum_engine import ids

    ids.check_id(p.command_id, "cmd", "command")
    q = _queue(engine)
    row = await q.get(p.command_id)
    if row is None:
        raise NotFound(f"no command {p.command_id}")
    s = manager(engine).sessions.get(row["session"])
    action = f"cancelling {p.command_id} in"
    if s is None:
        require_operator(engine, caller, f"{action} a session that is gone")
    else:
        require_owner(engine, caller, session_owner(engine, s), f"{action} session {s.name}")
    row = await q.cancel(p.command_id)
    if row is None:
        raise NotFound(f"no command {p.command_id}")
    return {"command": command_view(row)}

"""`thrum mcp serve`: the MCP stdio server for agent runtimes (the SDK is imported only here, on demand)."""

from __future__ import annotations

import os

from thrum_engine.cli.call import CliError, Ctx
from thrum_engine.layout import worktree_root
from thrum_engine.names import identity_name_problem

CHANNEL_MODES = ("auto", "on", "off")


def serve(ctx: Ctx) -> int:
    mode = ctx.args.get("channel") or "auto"
    if mode not in CHANNEL_MODES:
        raise CliError(f"--channel {mode!r}: one of {', '.join(CHANNEL_MODES)}")
    agent = ctx.args.get("agent_id")
    why = ""
    if agent:
        agent = agent.removeprefix("@")
        problem = identity_name_problem(agent)
        if problem:
            raise CliError(f"{problem} (from --agent-id)")
    refusal = _outside_every_repo(ctx)
    socket_path = "" if refusal else ctx.layout.socket_path
    if not agent and not refusal:
        # THRUM_NAME, then this worktree's identity file: the CLI's own resolution (a malformed one is
        # an error here); none, or several to choose from, starts a server whose tools say why.
        agent = ctx.me
        if agent is None:
            try:
                ctx.require_me()
            except CliError as exc:
                why = exc.message
    import asyncio
    import logging

    from thrum_engine.mcp.server import ThrumMcp

    # stdout is the protocol: anything else goes to stderr, which the runtime keeps as the server's log.
    logging.basicConfig(
        level=logging.DEBUG if ctx.args.get("verbose") else logging.WARNING,
        format="thrum mcp: %(levelname)s %(message)s",
    )
    if refusal:
        logging.getLogger("thrum.mcp").warning("%s: every tool will say so", refusal)
    elif agent is None:
        logging.getLogger("thrum.mcp").warning(
            "%s (in %s): tools that need one will say so", why, os.getcwd()
        )
    try:
        served = None if refusal else ctx.layout.served_engine
        asyncio.run(ThrumMcp(socket_path, agent, mode, refusal, served).run_stdio())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        return 130
    return 0


def _outside_every_repo(ctx: Ctx) -> str:
    """Why no tool can work here, when the server was started outside every git repository: a
    `--user` MCP entry starts it in every directory the runtime opens, and a server that exited
    there showed as a failed one. It serves instead, each tool answering this. A repository named
    by hand (--repo, THRUM_HOME) is the user's input, and a wrong one stays an error."""
    if ctx.args.get("repo") or os.environ.get("THRUM_HOME") or worktree_root(os.getcwd()) is not None:
        return ""
    return f"not inside a git repository: {os.getcwd()}: Thrum's tools work in a repo where `thrum init` ran"

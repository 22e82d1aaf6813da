"""`python -m thrum_tui`: the console for the repository around the current directory."""

from __future__ import annotations

import asyncio
import os
import sys


def fail(message: str) -> int:
    print(f"Error: {message}", file=sys.stderr)
    return 1


USAGE = "usage: thrum-tui [--stop-engine]"


async def live_agents(engine) -> list[str]:
    """Agents that would notice the engine going away: any with a live tmux pane or a session
    that is not offline."""
    team = await engine.call("team.list", {"all": True})
    return [
        m["name"]
        for m in team["members"]
        if m["name"] != engine.operator and (m.get("session") or m["state"] != "offline")
    ]


def main(argv: list[str] | None = None, repo: str | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print(
            USAGE
            + "\n\nThe console hosts the engine (or attaches to a running daemon). On quit with live agents"
            " it hands the engine to a headless daemon; --stop-engine quits fully."
        )
        return 0
    unknown = [a for a in args if a != "--stop-engine"]
    if unknown:
        return fail(f"unknown option {unknown[0]}: {USAGE}")
    stop_engine = "--stop-engine" in args
    # Textual prefers these to the terminal's real size; a shell's exported values go stale on
    # every resize (and pytest-xdist sets 80x24), so the console asks the terminal instead.
    for var in ("COLUMNS", "LINES"):
        os.environ.pop(var, None)
    from thrum_engine.daemon.control import StartFailed
    from thrum_engine.errors import ThrumError
    from thrum_engine.layout import Layout, NotARepo
    from thrum_engine.settings_sources import configured
    from thrum_tui.engine_handle import EngineCallFailed, git_user_name, open_engine, operator_name

    try:
        layout = Layout.discover(repo)
    except NotARepo as exc:
        return fail(f"{exc}: run the console inside the git repository your agents work in")
    if not layout.initialized():
        return fail(f"thrum is not initialized in {layout.repo}: run `thrum init` first")
    try:
        # The first frame needs only the theme; the settings are validated as the engine starts,
        # after it (pydantic's import alone is ~100 ms): a bad value still ends the console with
        # one line naming it (`start_up`), a file that is not JSON ends it here.
        theme = configured(layout.config_file, "console", "theme")
    except ThrumError as exc:
        return fail(exc.message)
    operator = operator_name(git_user_name(layout.repo))
    from thrum_engine.daemon.host import setup_logging

    # Never let engine logs reach the terminal the console draws on (the level follows the settings).
    setup_logging(os.path.join(layout.var, "console.log"), "INFO")

    async def run() -> tuple[list[str], int]:
        """The live agents to hand over, and the app's return code (non-zero: it crashed)."""
        from thrum_tui.app import ThrumApp

        live: list[str] = []
        async with open_engine(layout, None, operator) as engine:
            app = ThrumApp(engine, theme=theme if isinstance(theme, str) else None, freeze_heap=True)
            await app.run_async()
            if app.start_failure:
                raise EngineCallFailed(app.start_failure)
            if engine.host == "in-process" and not stop_engine:
                try:
                    live = await live_agents(engine)
                except EngineCallFailed:
                    live = []
        return live, app.return_code or 0

    try:
        live, crashed = asyncio.run(run())
        from thrum_engine.daemon import control

        if live:
            # The console held the engine; agents still call it. A headless daemon takes over.
            pid, _ = control.start(layout)
            print(
                f"Engine handed over to a headless daemon (pid {pid}): {len(live)} agent(s) keep working."
                " `thrum daemon stop` ends it."
            )
        elif stop_engine:
            pid = control.stop(layout)
            if pid:
                print(f"Stopped the engine (pid {pid}).")
    except (EngineCallFailed, ThrumError) as exc:
        return fail(exc.message)
    except OSError as exc:
        return fail(f"could not start the engine: {exc}")
    except StartFailed as exc:  # the hand-over daemon did not come up
        return fail(str(exc))
    # A crash (its traceback printed above) still hands the engine over, and then says so in the
    # exit status: it exited 0 after a NoScreen traceback (walk, bug 3).
    return crashed


if __name__ == "__main__":
    sys.exit(main())

"""`python -m thrum_tui`: the console for the repository around the current directory."""

from __future__ import annotations

import asyncio
import os
import sys


def fail(message: str) -> int:
    print(f"Error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None, repo: str | None = None) -> int:
    from pydantic import ValidationError

    from thrum_engine.errors import ThrumError
    from thrum_engine.layout import Layout, NotARepo
    from thrum_engine.settings import load_settings
    from thrum_tui.engine_handle import EngineCallFailed, git_user_name, open_engine, operator_name

    try:
        layout = Layout.discover(repo)
    except NotARepo as exc:
        return fail(f"{exc}: run the console inside the git repository your agents work in")
    if not layout.initialized():
        return fail(f"thrum is not initialized in {layout.repo}: run `thrum init` first")
    try:
        settings = load_settings(layout.config_file)
    except ThrumError as exc:
        return fail(exc.message)
    except ValidationError as exc:
        where = ".".join(str(x) for x in exc.errors()[0].get("loc", ()))
        return fail(f"invalid setting {where}: fix {layout.config_file} or THRUM_* env")
    operator = operator_name(git_user_name(layout.repo))
    from thrum_engine.daemon.host import setup_logging

    # Never let engine logs reach the terminal the console draws on.
    setup_logging(os.path.join(layout.var, "console.log"), settings.engine.log_level)

    async def run() -> None:
        from thrum_tui.app import ThrumApp

        async with open_engine(layout, settings, operator) as engine:
            await ThrumApp(engine).run_async()

    try:
        asyncio.run(run())
    except (EngineCallFailed, ThrumError) as exc:
        return fail(exc.message)
    except OSError as exc:
        return fail(f"could not start the engine: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

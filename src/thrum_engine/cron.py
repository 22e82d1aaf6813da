"""Cron expressions, read one way for the monitors' `--schedule` and the schedules' `--cron`: five
fields (croniter), evaluated in UTC. One that names no time that ever comes (`0 0 31 2 *`) is
invalid input at creation: croniter raises only when asked for its next time, which once crashed
the schedules' create and would have stopped a monitor's command loop."""

from __future__ import annotations

import time

from thrum_engine.errors import InvalidInput


def check_cron(expr: str, flag: str = "--cron", example: str = "'*/15 * * * *' (UTC)") -> str:
    """`expr` with its spacing normalised, or InvalidInput naming `flag`."""
    from croniter import CroniterBadDateError, croniter

    expr = " ".join(expr.split())
    if len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise InvalidInput(f"invalid {flag} {expr!r}: five fields, e.g. {example}")
    try:
        croniter(expr, time.time()).get_next(float)
    except CroniterBadDateError:  # a day that never comes (31 February)
        raise InvalidInput(f"invalid {flag} {expr!r}: it never fires") from None
    return expr


def cron_next(expr: str, after: float) -> float:
    """The first time strictly after `after` that `expr` names (UTC)."""
    from croniter import croniter

    return float(croniter(expr, after).get_next(float))

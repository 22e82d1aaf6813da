"""What filling a console table costs: `widgets/tables.refill` against the plain `clear()` +
`add_row` of `str` cells that every table used before it, in one real Textual app, interleaved.

The old way leaves each cell's markup parse to the first frame and the column measuring to the
table's idle pass (neither is timed here); `refill` builds plain cells and sets the widths up
front, so that no frame shows header-wide columns. Two workloads: the same rows again (the usual
refresh) and rows whose widths change every fill."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from textual.app import App
from textual.widgets import DataTable

from thrum_tui.widgets.tables import refill

COLUMNS = ("branch", "status", "agent")


def rows(n: int, wide: int = 0) -> list[tuple[str, ...]]:
    return [
        (f"feature/agent-{i}" + "x" * wide, f"{i} ahead, 2 uncommitted", f"@agent{i} working")
        for i in range(n)
    ]


def old_fill(table: DataTable, data: list[tuple[str, ...]]) -> None:
    table.clear()
    for r in data:
        table.add_row(*r)


class Tables(App):
    def compose(self):
        yield DataTable(id="old")
        yield DataTable(id="new")


async def measure(fills: int, reps: int, n: int) -> dict:
    app = Tables()
    out: dict[str, list[float]] = {
        "old_same": [],
        "refill_same": [],
        "old_changing": [],
        "refill_changing": [],
    }
    async with app.run_test(size=(160, 40)):
        old, new = app.query_one("#old", DataTable), app.query_one("#new", DataTable)
        for t in (old, new):
            for c in COLUMNS:
                t.add_column(c, key=c)
        same = rows(n)
        for _ in range(reps):
            for name, table, fill in (("old", old, old_fill), ("refill", new, refill)):
                t0 = time.perf_counter()
                for _ in range(fills):
                    fill(table, same)
                out[f"{name}_same"].append(1e6 * (time.perf_counter() - t0) / fills)
                t0 = time.perf_counter()
                for i in range(fills):
                    fill(table, rows(n, wide=i % 7))
                out[f"{name}_changing"].append(1e6 * (time.perf_counter() - t0) / fills)
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--fills", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rows", type=int, default=10)
    args = ap.parse_args()
    got = asyncio.run(measure(args.fills, args.reps, args.rows))
    if args.json:
        print(json.dumps({"rows": args.rows, "us_per_fill": got}))
        return
    print(f"== one fill of a {args.rows}-row, {len(COLUMNS)}-column table, us (median of {args.reps} reps)")
    for workload in ("same", "changing"):
        print(
            f"  {workload + ' widths':<16} clear+add_row {got['old_' + workload]:7.1f}"
            f"   refill {got['refill_' + workload]:7.1f}"
        )


if __name__ == "__main__":
    main()

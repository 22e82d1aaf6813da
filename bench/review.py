"""Review benchmarks: open the review screen on a big diff, hunk navigation, merge preflight.

Targets (issue 14): opening the review screen on a 5,000-line, 100-file diff <= 300 ms; hunk
navigation keystroke -> render p95 <= 50 ms; merge preflight on that diff <= 1 s.

A scratch repo gets 100 files on main; an agent's worktree (made by `thrum worktree create`)
changes each in three places, giving a diff of ~5,000 lines. The console (`ThrumApp` hosting the
engine in-process, with the start-up heap frozen out of the collector, as `thrum tui` does) runs
under Textual's test harness in this process.

* `open`: `open_review(agent)` -> the first frame whose compositor update is drawn with the diff
  loaded (the frame's segments are rendered here so that cost counts). Floor in the same run: the
  bare `git diff` the screen's data comes from, as a subprocess.
Wall times on a shared machine carry its load (other processes' CPU); each also reports the CPU
the console's UI thread spent between the event and the frame (`thread_time`), the cost the code
itself adds whatever the load.

* `keys`: `]` (100 keystrokes cross ~50 files) sent the way a terminal's key would be (`driver.send_message(Key)`), latency = until
  the first frame drawn after the cursor moved. Floor: `j`/`k` (one line down or up,
  nothing else to do).
* `split`: `s` (unified <-> side by side) -> frame, then `]` again side by side.
* `preflight`: `review.preflight` through the engine (dry merge, statuses, the review); floor: the
  bare `git merge-tree --write-tree` it runs.
* `tdv` (with `--tdv-path DIR` holding an unpacked `textual-diff-view`): the candidate widget
  mounted for the same 100 files (it takes both whole files per file), first frame after mount.
* `--profile DIR`: a cProfile of each measured section's events (from the event to its frame) in
  DIR/<section>.pstats; the figures of that run carry the profiler's overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import env_for, pct

BIN = Path(sys.executable).parent
THRUM = str(BIN / "thrum")
OPERATOR = "bench_operator"
SIZE = (160, 45)


class Scratch:
    """A repo with `files` files of `lines` lines on main and an agent whose branch changes them."""

    def __init__(self, files: int, lines: int) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="thrum-bench-review-"))
        self.home = self.tmp / "home"
        self.home.mkdir()
        self.env = env_for(self.home)
        self.env["THRUM_TMUX__SOCKET_NAME"] = f"thrum-bench-review-{os.getpid()}"
        self.env["THRUM_TMUX__SHELL"] = "sh"
        self.repo = self.tmp / "repo"
        self.repo.mkdir()
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", "Bench Operator")
        self.git("config", "user.email", "bench@example.com")
        for i in range(files):
            body = "".join(f"    value_{j} = compute({i}, {j})  # line {j}\n" for j in range(lines))
            (self.repo / f"pkg{i % 10}").mkdir(exist_ok=True)
            (self.repo / f"pkg{i % 10}" / f"mod{i}.py").write_text(f"def f{i}():\n" + body)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "base")
        self.thrum("init")
        self.thrum("worktree", "create", "w", "--name", "w", "--role", "implementer", "--runtime", "shell")
        self.wt = self.home / ".thrum" / "worktrees" / "repo" / "w"
        for i in range(files):
            path = self.wt / f"pkg{i % 10}" / f"mod{i}.py"
            rows = path.read_text().split("\n")
            for start in (5, lines - 20):  # two hunks of 8 changed lines each: ~50 diff lines a file
                for j in range(start, start + 8):
                    rows[j] = rows[j].replace("compute", "compute_v2")
            path.write_text("\n".join(rows))
        self.git("add", "-A", cwd=self.wt)
        self.git("commit", "-q", "-m", "v2 everywhere", cwd=self.wt)
        self.thrum("daemon", "stop")
        out = self.git("diff", "--numstat", "main...HEAD", cwd=self.wt)
        self.diff_files = len(out.splitlines())
        self.diff_lines = len(self.git("diff", "main...HEAD", cwd=self.wt).splitlines())

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return subprocess.run(
            ["git", *args], cwd=cwd or self.repo, env=self.env, check=True, capture_output=True, text=True
        ).stdout

    def thrum(self, *args: str) -> str:
        return subprocess.run(
            [THRUM, *args], cwd=self.repo, env=self.env, check=True, capture_output=True, text=True
        ).stdout

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.env["THRUM_TMUX__SOCKET_NAME"], "kill-server"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.tmp, ignore_errors=True)


def _ms(values: list[float]) -> dict:
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values), 1),
        "p95_ms": round(pct(values, 95), 1),
        "max_ms": round(max(values), 1),
    }


def _timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def _console(
    s: Scratch,
    runs: int,
    keys: int,
    preflights: int,
    tdv: str | None,
    gc_freeze: bool = True,
    profile: str | None = None,
) -> dict:
    for k, v in s.env.items():  # the engine this process hosts must see the scratch repo's environment
        if k.startswith(("THRUM_", "GIT_")) or k == "HOME":
            os.environ[k] = v
    os.chdir(s.repo)
    from textual import events
    from textual._compositor import CompositorUpdate

    from thrum_engine.layout import Layout
    from thrum_engine.settings import load_settings
    from thrum_tui.app import ThrumApp
    from thrum_tui.engine_handle import open_engine
    from thrum_tui.screens.review import ReviewScreen
    from thrum_tui.widgets.diff_view import DiffView

    class BenchApp(ThrumApp):
        CSS_PATH = str(Path(str(sys.modules[ThrumApp.__module__].__file__)).parent / str(ThrumApp.CSS_PATH))
        frame_watch: Callable[[], bool] | None = (
            None  # a predicate: the frame that makes it true stamps `hit_at`
        )
        hit_at = 0.0
        hit_cpu = 0.0  # this (the UI) thread's CPU time at that frame

        def _display(self, screen, renderable) -> None:
            if renderable is not None:
                if isinstance(renderable, CompositorUpdate):
                    renderable.render_segments(self.console)  # the terminal write a real driver does
                if self.frame_watch is not None and self.frame_watch():
                    self.frame_watch = None
                    self.hit_at = time.perf_counter()
                    self.hit_cpu = time.thread_time()
            super()._display(screen, renderable)

    cpu: list[float] = []  # UI-thread CPU ms per measured event: the cost, whatever the machine's load
    profiles: dict[str, cProfile.Profile] = {}
    section = ["open"]  # which profile the events being measured go to (`--profile`)

    async def frame_when(app: BenchApp, pred, start, timeout: float = 30.0) -> float:
        app.hit_at = 0.0
        app.frame_watch = pred
        prof = profiles.setdefault(section[0], cProfile.Profile()) if profile else None
        if prof is not None:
            prof.enable()
        t0 = time.perf_counter()
        c0 = time.thread_time()
        start()
        while not app.hit_at:
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"no frame (focused {app.focused!r}, screen {app.screen!r})")
            await asyncio.sleep(0.0005)
        if prof is not None:
            prof.disable()
        cpu.append((app.hit_cpu - c0) * 1000)
        return (app.hit_at - t0) * 1000

    layout = Layout.discover(str(s.repo))
    settings = load_settings(layout.config_file)
    out: dict = {}
    async with open_engine(layout, settings, OPERATOR) as engine:
        # As `thrum tui` runs it: the start-up heap frozen out of the collector (`--no-gc-freeze`: not).
        app = BenchApp(engine, settings=settings, freeze_heap=gc_freeze)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(1.0)
            opens: list[float] = []
            files = lines = 0
            screen = None
            cpu.clear()
            for _ in range(runs):

                def shown() -> bool:
                    scr = app.screen
                    return isinstance(scr, ReviewScreen) and scr.loaded and scr.query_one(DiffView).rows != []

                opens.append(await frame_when(app, shown, lambda: app.open_review("w")))
                screen = app.screen
                assert isinstance(screen, ReviewScreen)
                files = len(screen.files)
                lines = sum(len(f.lines) for f in screen.files)
                await pilot.pause(0.3)
                if len(opens) < runs:
                    app.pop_screen()
                    await pilot.pause(0.3)
            assert isinstance(screen, ReviewScreen)
            out["open"] = _ms(opens) | {"files": files, "diff_lines": lines, "ui_cpu": _ms(cpu)}
            out["open_floor_git_diff"] = _ms(
                _timed(lambda: s.git("diff", "--no-color", "-M", "main...HEAD", cwd=s.wt), runs)
            )
            view = screen.query_one(DiffView)
            view.focus()
            await pilot.pause(0.2)
            driver = app._driver
            assert driver is not None

            async def press(key: str, char: str | None) -> float:
                before = (view.cursor, view.file.path if view.file else None)
                return await frame_when(
                    app,
                    lambda: (view.cursor, view.file.path if view.file else None) != before,
                    lambda: driver.send_message(events.Key(key, char)),
                )

            section[0] = "hunk"
            hunks, crossing = [], []
            cpu.clear()
            for _ in range(keys):
                before = view.file.path if view.file else None
                ms = await press("right_square_bracket", "]")
                hunks.append(ms)
                if (view.file.path if view.file else None) != before:
                    crossing.append(ms)
                await asyncio.sleep(0.02)
            hunk_cpu = list(cpu)
            cpu.clear()
            section[0] = "floor_j"
            floor = []
            for i in range(keys):  # down and up again: the view has rows to move through
                floor.append(await press(*(("j", "j") if i % 2 == 0 else ("k", "k"))))
                await asyncio.sleep(0.02)
            out["hunk_keys"] = _ms(hunks) | {"files_crossed": screen.selected, "ui_cpu": _ms(hunk_cpu)}
            out["keys_floor_j"] = _ms(floor) | {"ui_cpu": _ms(list(cpu))}
            within = [h for h in hunks if h not in crossing]
            out["hunk_keys_within_file"] = _ms(within)
            out["hunk_keys_to_next_file"] = _ms(crossing)
            if hasattr(view, "action_toggle_split"):  # side by side: the toggle, then `]` again
                cpu.clear()
                section[0] = "split_toggle"
                toggles = []
                for _ in range(10):
                    split = view.split
                    toggles.append(
                        await frame_when(
                            app,
                            lambda s=split: view.split != s,
                            lambda: driver.send_message(events.Key("s", "s")),
                        )
                    )
                    await asyncio.sleep(0.02)
                out["split_toggle"] = _ms(toggles) | {"ui_cpu": _ms(list(cpu))}
                if not view.split:
                    view.action_toggle_split()
                view.action_ends(-1)
                screen.select_file(0)
                await pilot.pause(0.2)
                cpu.clear()
                section[0] = "split_hunk"
                split_hunks = []
                for _ in range(keys):
                    split_hunks.append(await press("right_square_bracket", "]"))
                    await asyncio.sleep(0.02)
                out["hunk_keys_side_by_side"] = _ms(split_hunks) | {"ui_cpu": _ms(list(cpu))}
            pre = []
            last: dict = {}
            for _ in range(preflights):
                t0 = time.perf_counter()
                last = await engine.call("review.preflight", {"agent": "w"})
                pre.append((time.perf_counter() - t0) * 1000)
            out["preflight"] = _ms(pre) | {"problems": [p["code"] for p in last["problems"]]}
            tree_floor = _timed(
                lambda: s.git("merge-tree", "--write-tree", "--name-only", "main", "feature/w"), preflights
            )
            out["preflight_floor_merge_tree"] = _ms(tree_floor)
            if tdv:
                try:
                    out["textual_diff_view"] = await _tdv(app, pilot, s, tdv, frame_when)
                except Exception as exc:  # noqa: BLE001 (the candidate failing must not lose our figures)
                    out["textual_diff_view"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    if profile:
        Path(profile).mkdir(parents=True, exist_ok=True)
        for name, prof in profiles.items():
            prof.dump_stats(str(Path(profile) / f"{name}.pstats"))
        out["profiles"] = {name: str(Path(profile) / f"{name}.pstats") for name in profiles}
    return out


async def _tdv(app, pilot, s: Scratch, path: str, frame_when) -> dict:
    """The candidate widget for the same change: one DiffView per file in a scroll, as a whole-diff
    view over it would be (it needs both whole files; reading them is not counted)."""
    sys.path.insert(0, path)
    from textual.containers import VerticalScroll
    from textual.screen import Screen
    from textual_diff_view import DiffView as TDV  # type: ignore[import-not-found]  # pyright: ignore[reportMissingImports]

    names = s.git("diff", "--name-only", "main...HEAD", cwd=s.wt).split()
    pairs = [(n, s.git("show", f"main:{n}"), (s.wt / n).read_text()) for n in names]

    class Whole(Screen):
        def compose(self):
            with VerticalScroll():
                for n, a, b in pairs:
                    yield TDV(n, n, a, b, split=False)

    one = [pairs[0]]

    class Single(Screen):
        def compose(self):
            with VerticalScroll():
                for n, a, b in one:
                    yield TDV(n, n, a, b, split=False)

    out = {}
    for label, cls in (("one_file", Single), ("all_files", Whole)):
        ms = await frame_when(
            app, lambda c=cls: isinstance(app.screen, c), lambda c=cls: app.push_screen(c()), 120
        )
        await asyncio.sleep(2.0)  # its mounts go on after the first frame: let them finish
        app.pop_screen()
        await asyncio.sleep(1.0)
        out[f"{label}_first_frame_ms"] = round(ms, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--lines", type=int, default=60, help="lines per file on main")
    ap.add_argument("--runs", type=int, default=5, help="screen opens")
    ap.add_argument("--keys", type=int, default=100, help="hunk keystrokes (and as many floor keys)")
    ap.add_argument("--preflights", type=int, default=10)
    ap.add_argument("--tdv-path", default=None, help="a directory holding textual_diff_view, to compare")
    ap.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="leave the start-up heap in the collector (`thrum tui` freezes it: gen-2 collections over it were the spikes)",
    )
    ap.add_argument(
        "--profile",
        metavar="DIR",
        default=None,
        help="cProfile each measured event (open, ], j/k, s, ] side by side) into DIR/<section>.pstats"
        " (the figures then carry the profiler's overhead)",
    )
    a = ap.parse_args()
    s = Scratch(a.files, a.lines)
    try:
        out = {
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "diff": {"files": s.diff_files, "lines": s.diff_lines},
        }
        out["gc_freeze"] = not a.no_gc_freeze
        out.update(
            asyncio.run(_console(s, a.runs, a.keys, a.preflights, a.tdv_path, not a.no_gc_freeze, a.profile))
        )
    finally:
        s.close()
    if a.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    d = out["diff"]
    frozen = ", gc.freeze() after start-up (as thrum tui)" if out["gc_freeze"] else ", heap not frozen"
    print(f"== diff: {d['files']} files, {d['lines']} lines (git diff output){frozen}")

    def row(label: str, r: dict, target: str = "") -> None:
        print(
            f"  {label:<34} median {r['median_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  max {r['max_ms']:7.1f} ms"
            f"  (n={r['n']}){target}"
        )

    row("open review screen", out["open"], "  target <= 300 ms")
    row("  UI-thread CPU of it", out["open"]["ui_cpu"])
    row("  floor: git diff alone", out["open_floor_git_diff"])
    row("hunk key ] -> frame", out["hunk_keys"], "  target p95 <= 50 ms")
    row("  UI-thread CPU of it", out["hunk_keys"]["ui_cpu"])
    row("  of which within a file", out["hunk_keys_within_file"])
    row("  of which on to the next file", out["hunk_keys_to_next_file"])
    row("  floor: j/k -> frame", out["keys_floor_j"])
    row("  floor's UI-thread CPU", out["keys_floor_j"]["ui_cpu"])
    if "split_toggle" in out:
        row("side by side: s -> frame", out["split_toggle"])
        row("  UI-thread CPU of it", out["split_toggle"]["ui_cpu"])
        row("side by side: ] -> frame", out["hunk_keys_side_by_side"], "  target p95 <= 50 ms")
        row("  UI-thread CPU of it", out["hunk_keys_side_by_side"]["ui_cpu"])
    row("merge preflight", out["preflight"], "  target <= 1000 ms")
    row("  floor: git merge-tree alone", out["preflight_floor_merge_tree"])
    if "error" in out.get("textual_diff_view", {}):
        print(f"  textual-diff-view FAILED: {out['textual_diff_view']['error']}")
    elif "textual_diff_view" in out:
        t = out["textual_diff_view"]
        print(
            f"  textual-diff-view: one file first frame {t['one_file_first_frame_ms']} ms,"
            f" all {d['files']} files {t['all_files_first_frame_ms']} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

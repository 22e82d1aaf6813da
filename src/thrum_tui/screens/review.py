"""`v` on an agent (or Enter on the review queue): the agent's work against its target, file by
file. The file list (+/− and viewed marks) and the commit list on the left, the selected file's
diff on the right; comments on a line, a range or a file are kept as a pending set in the engine
(they survive closing this screen and a restart) until the verdict sends them as one message."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from thrum_engine.review.diff import FileDiff, parse_diff
from thrum_tui.screens.base import LiveView, Page
from thrum_tui.widgets.diff_files import FileList, FileRow
from thrum_tui.widgets.diff_view import DiffView, warm_lexers
from thrum_tui.widgets.tables import RowList

COMMENTS_SECONDS = 5.0
# How long `open_review` waits for the diff before showing the screen: an answer within it means the
# screen's first frame is the whole review (no "loading" frames, each a full layout and paint while
# the engine works: bench/review.py); a slower one shows "loading…" and fills in when it comes.
PREFETCH_SECONDS = 0.25
WARM_FILES = 8  # the files whose lexers are found before the screen shows (the first ones opened)
# Files marked viewed, per (worktree, head): a new commit is new work to look at.
VIEWED: dict[tuple[str, str], set[str]] = {}
_STATUS = {"A": "A", "D": "D", "M": "M", "R": "R"}


def file_row(f: FileDiff, viewed: bool, comments: int) -> FileRow:
    return FileRow(f.path, _STATUS.get(f.status, "M"), f.added, f.removed, viewed, comments)


Fetched = tuple[dict | None, list[FileDiff], str | None]  # (review.diff, its files parsed, error)


async def fetch_review(engine, agent: str, commit: str | None = None) -> Fetched:
    """Everything the screen opens with (one engine call), the diff parsed off the UI thread."""
    from thrum_tui.engine_handle import EngineCallFailed

    params: dict = {"agent": agent}
    if commit:
        params["commit"] = commit
    try:
        r = await engine.call("review.diff", params)
    except EngineCallFailed as exc:
        return None, [], exc.message
    return r, await asyncio.to_thread(_parse, r["diff"]), None


def _parse(text: str) -> list[FileDiff]:
    files = parse_diff(text)
    warm_lexers([f.path for f in files[:WARM_FILES] if not f.binary])
    return files


class ReviewScreen(LiveView, Page):
    # The diff has the focus from the start: focusing it after the screen's auto focus had picked
    # the file list restyled both (and their scroll bars) and drew the screen a second time.
    AUTO_FOCUS = "#diff"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("c", "comment", "comment"),
        Binding("C", "comment_file", "file comment"),
        Binding("d", "delete_comment", "drop pending", show=False),
        Binding("x", "toggle_viewed", "viewed"),
        Binding("n", "next_file(1)", "next file"),
        Binding("p", "next_file(-1)", "prev file", show=False),
        Binding("A", "submit('approve')", "approve"),
        Binding("R", "submit('request_changes')", "request changes"),
        Binding("M", "merge", "merge"),
        Binding("u", "reload", "reload", show=False),
        Binding("tab", "app.focus_next", show=False),
        Binding("shift+tab", "app.focus_previous", show=False),
    ]
    DEFAULT_CSS = """
    ReviewScreen #review-head { height: 1; padding: 0 1; background: $panel; }
    ReviewScreen #review-body { height: 1fr; }
    ReviewScreen #review-left { width: 44; min-width: 30; }
    ReviewScreen #files { height: 2fr; border: round $primary; }
    ReviewScreen #commits { height: 1fr; border: round $primary; }
    ReviewScreen #files:focus, ReviewScreen #commits:focus { border: round $accent; }
    ReviewScreen #diff { width: 1fr; }
    ReviewScreen #review-foot { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, agent: str, fetched: asyncio.Future[Fetched] | None = None) -> None:
        """`fetched`: the first `fetch_review` of this agent, already under way (or done)."""
        super().__init__()
        self.agent = agent
        self._fetched = fetched
        self.files: list[FileDiff] = []
        self.state: dict = {}
        self.commits: list[dict] = []
        self.commit: str | None = None  # None: the whole diff against the merge base
        self.review: dict = {}
        self.pending: list[dict] = []
        self.loaded = False
        self.selected = 0
        self._comments_at = 0.0
        self._held = False  # the app's heap frozen with this screen's data in it (hold_heap)

    def compose(self):
        yield Label(f"REVIEW @{self.agent} · loading…", id="review-head", markup=False)
        with Horizontal(id="review-body"):
            with Vertical(id="review-left"):
                yield FileList(id="files")
                yield RowList(id="commits")
            yield DiffView(id="diff")
        # Its own key line, not a Footer: Textual's Footer restyles a widget per binding on every
        # focus change, most of the screen's open time on a big diff (bench/review.py).
        yield Static("", id="review-foot", markup=False)

    def on_mount(self) -> None:
        self.query_one(FileList).border_title = "FILES"
        self.query_one("#commits", OptionList).border_title = "COMMITS"
        fetched, self._fetched = self._fetched, None
        if fetched is not None and fetched.done() and not fetched.cancelled() and fetched.exception() is None:
            self.take(fetched.result())  # before the first frame: it shows the whole review
        else:
            self.load(fetched)  # still coming (or failed unexpectedly: the worker reports it)

    # -- loading --
    @work(group="review-load", exclusive=True, exit_on_error=False)
    async def load(self, fetched: asyncio.Future[Fetched] | None = None, keep_place: bool = False) -> None:
        got = await fetched if fetched is not None and not fetched.cancelled() else None
        if got is None:
            got = await fetch_review(self.app.engine, self.agent, self.commit)  # type: ignore[attr-defined]
        self.take(got, keep_place=keep_place)

    def take(self, fetched: Fetched, *, keep_place: bool = False) -> None:
        r, files, error = fetched
        if r is None:
            if error is not None:
                self.app.notify(error, title="review.diff", severity="error")
            self.query_one("#review-head", Label).update(f"REVIEW @{self.agent} · nothing to show")
            return
        self.state, self.commits, self.files = r["state"], r["commits"], files
        with self.app.batch_update():  # one frame for the lot
            self.take_comments(r["comments"])
            self.fill_commits()
            self.fill_files()
            index = min(self.selected, len(files) - 1) if keep_place else 0
            self.select_file(max(0, index), keep_cursor=keep_place)
        self.loaded = True
        self.call_after_refresh(self._hold_heap)  # the first frame's strips too

    def _hold_heap(self) -> None:
        hold = getattr(self.app, "hold_heap", None)
        if hold is not None and self.is_attached:
            self._held = True
            hold(self)

    def on_unmount(self) -> None:
        release = getattr(self.app, "release_heap", None)
        if self._held and release is not None:
            release(self)

    async def load_comments(self) -> None:
        c = await self.call("review.comments", {"agent": self.agent})
        if c is not None:
            self.take_comments(c)

    def take_comments(self, c: dict) -> None:
        self.review = c
        self.pending = [{**p, "pending": True} for p in c.get("pending") or []]
        self.show_head()

    def refresh_from_engine(self) -> None:
        """A new round submitted elsewhere: the comments may have changed, the diff has not. At most
        every COMMENTS_SECONDS: a busy team's messages must not cost a git status each."""
        now = time.monotonic()
        if self.loaded and now - self._comments_at >= COMMENTS_SECONDS:
            self._comments_at = now
            self.reload_comments()

    @work(group="review-comments", exclusive=True, exit_on_error=False)
    async def reload_comments(self) -> None:
        await self.load_comments()
        self.fill_files()
        self.show_file(keep_cursor=True)

    def show_head(self) -> None:
        st, rv = self.state, self.review
        if not st:
            return
        scope = f"commit {self.commit[:8]}" if self.commit else f"vs {st['merge_base'][:8]}"
        parts = [
            f"REVIEW @{self.agent}",
            f"{st['branch'] or 'detached'} → {st['target']}",
            f"↑{st['ahead']} ↓{st['behind']}",
            f"{len(self.files)} files +{st['added']} −{st['removed']}",
            scope,
        ]
        if st["uncommitted"] or st["untracked"]:
            parts.append(f"{len(st['uncommitted']) + len(st['untracked'])} uncommitted")
        if rv.get("verdict") and rv.get("status") == "requested":
            # Asked again since the last verdict: the verdict is history (walk: the header still read
            # "request changes" where the CLI said requested).
            parts.append(f"review requested again (last: {rv['verdict'].replace('_', ' ')})")
        elif rv.get("verdict"):
            parts.append(rv["verdict"].replace("_", " "))
        if rv.get("changed_since_review"):
            parts.append("changed since your review")
        self.query_one("#review-head", Label).update(" · ".join(parts))
        n = len(self.pending)
        self.query_one("#review-foot", Static).update(
            f"{n} pending comment(s) · c line/range (v starts a range) · C file · s side by side · A approve"
            " · R request changes · M merge"
        )

    # -- lists --
    def viewed(self) -> set[str]:
        return VIEWED.setdefault((self.state.get("path", ""), self.state.get("head", "")), set())

    def comments_for(self, path: str) -> list[dict]:
        submitted = self.review.get("comments") or []
        return [c for c in (*submitted, *self.pending) if c["path"] == path]

    def mark_file(self, index: int) -> None:
        """One file's row again (its viewed mark or comment count changed), not the whole list."""
        f = self.files[index]
        seen = self.viewed()
        files = self.query_one(FileList)
        files.update_row(index, file_row(f, f.path in seen, len(self.comments_for(f.path))))
        files.set_title(self._files_title(seen))

    def fill_files(self) -> None:
        seen = self.viewed()
        files = self.query_one(FileList)
        files.show(
            [file_row(f, f.path in seen, len(self.comments_for(f.path))) for f in self.files],
            cursor=self.selected,
        )
        files.set_title(self._files_title(seen))

    def _files_title(self, seen: set[str]) -> str:
        return f"FILES {len(seen & {f.path for f in self.files})}/{len(self.files)} viewed"

    def fill_commits(self) -> None:
        commits = self.query_one("#commits", OptionList)
        commits.clear_options()
        base = self.state.get("merge_base", "")[:8]
        commits.add_option(Option(Content(f"All changes (vs merge base {base})"), id="all"))
        commits.add_options(
            [Option(Content(f"{c['sha'][:8]} {c['subject']}"), id=c["sha"]) for c in self.commits]
        )
        commits.highlighted = (
            0 if not self.commit else 1 + [c["sha"] for c in self.commits].index(self.commit)
        )

    @on(FileList.Highlighted)
    def file_highlighted(self, event: FileList.Highlighted) -> None:
        if event.index != self.selected:
            self.select_file(event.index)

    @on(FileList.Chosen)
    def file_chosen(self, event: FileList.Chosen) -> None:
        self.select_file(event.index)
        self.query_one(DiffView).focus()

    @on(OptionList.OptionSelected, "#commits")
    def commit_chosen(self, event: OptionList.OptionSelected) -> None:
        sha = event.option.id
        self.commit = None if sha == "all" else sha
        self.selected = 0
        self.load()

    def select_file(self, index: int, *, keep_cursor: bool = False) -> None:
        if not self.files:
            self.query_one(DiffView).show(None)
            return
        self.selected = max(0, min(index, len(self.files) - 1))
        self.query_one(FileList).set_cursor(self.selected)
        self.show_file(keep_cursor=keep_cursor)

    def show_file(self, *, keep_cursor: bool = False) -> None:
        if not self.files:
            return
        f = self.files[self.selected]
        view = self.query_one(DiffView)
        view.show(f, self.comments_for(f.path), keep_cursor=keep_cursor)
        if self.selected + 1 < len(self.files):  # once this frame is drawn: the next file's colours
            self.call_after_refresh(view.prelex, self.files[self.selected + 1])

    @on(DiffView.EdgeReached)
    def edge(self, event: DiffView.EdgeReached) -> None:
        """`]` past the last hunk opens the next file at its first hunk (`[` the previous at its last)."""
        nxt = self.selected + event.direction
        if 0 <= nxt < len(self.files):
            left = self.selected
            if event.direction > 0:  # read to the end of a file: it counts as viewed
                self.viewed().add(self.files[left].path)
            self.select_file(nxt)
            view = self.query_one(DiffView)
            if event.direction < 0:
                view.action_ends(1)
            self.mark_file(left)

    def action_next_file(self, step: int) -> None:
        self.select_file(self.selected + step)

    def action_toggle_viewed(self) -> None:
        if not self.files:
            return
        seen, path = self.viewed(), self.files[self.selected].path
        seen.symmetric_difference_update({path})
        self.mark_file(self.selected)

    def action_reload(self) -> None:
        self.load(keep_place=True)

    # -- comments --
    def action_comment(self) -> None:
        view = self.query_one(DiffView)
        if view.file is None:
            return
        sel = view.selection()
        if sel is None:
            self.app.notify(
                "put the cursor on a line of code (or C comments on the whole file)", severity="warning"
            )
            return
        side, first, last = sel
        where = f"{view.file.path}:{first}" + (f"-{last}" if last != first else "")
        quote = "\n".join(
            r.line.text
            for r in view.rows
            if r.line is not None
            and r.line.kind in ("-" if side == "old" else "+ ")
            and first <= ((r.line.old if side == "old" else r.line.new) or 0) <= last
        )
        self.ask_comment(
            where, quote, {"path": view.file.path, "line": first, "end_line": last, "side": side}
        )

    def action_comment_file(self) -> None:
        view = self.query_one(DiffView)
        if view.file is not None:
            self.ask_comment(f"{view.file.path} (whole file)", "", {"path": view.file.path})

    def ask_comment(self, where: str, quote: str, anchor: dict) -> None:
        from thrum_tui.screens.review_dialogs import CommentDialog

        def done(text: str | None) -> None:
            if text:
                self.add_comment({**anchor, "body": text})

        self.app.push_screen(CommentDialog(where, quote), done)

    @work(group="review-draft", exit_on_error=False)
    async def add_comment(self, comment: dict) -> None:
        r = await self.call("review.draft", {"agent": self.agent, "add": comment})
        if r is None:
            return
        self.query_one(DiffView).range_start = None
        self.pending = [{**p, "pending": True} for p in r["pending"]]
        self.after_comments()

    def action_delete_comment(self) -> None:
        row = self.query_one(DiffView).cursor_row
        if row is not None and row.comment is not None and row.comment.get("pending"):
            self.drop_comment(row.comment["id"])

    @work(group="review-draft", exit_on_error=False)
    async def drop_comment(self, comment_id: str) -> None:
        r = await self.call("review.draft", {"agent": self.agent, "remove": comment_id})
        if r is not None:
            self.pending = [{**p, "pending": True} for p in r["pending"]]
            self.after_comments()

    def after_comments(self) -> None:
        self.mark_file(self.selected)
        self.show_file(keep_cursor=True)
        self.show_head()

    # -- verdict and merge --
    def action_submit(self, verdict: str, summary: str = "") -> None:
        from thrum_tui.screens.review_dialogs import SubmitDialog

        def done(r: dict | None) -> None:
            if r is not None:
                self.submitted(verdict, r)

        self.app.push_screen(SubmitDialog(self.agent, verdict, len(self.pending), summary), done)

    @work(group="review-submit", exclusive=True, exit_on_error=False)
    async def submitted(self, verdict: str, r: dict) -> None:
        what = "approved" if verdict == "approve" else "changes requested"
        self.app.notify(f"@{self.agent}: {what} ({r['comments']} comments sent)", timeout=3)
        await self.load_comments()
        self.fill_files()
        self.show_file(keep_cursor=True)

    def action_merge(self) -> None:
        from thrum_tui.screens.review_dialogs import (
            AfterMergeDialog,
            ConflictDialog,
            MergeDialog,
            conflict_summary,
        )

        def merged(r: dict | None) -> None:
            if r is None:
                return
            if "conflicts" in r:
                target = (r.get("preflight") or {}).get("target") or self.state.get("target") or "the target"

                def answered(ask: bool | None) -> None:
                    if ask:
                        self.action_submit("request_changes", conflict_summary(r["conflicts"], target))

                self.app.push_screen(ConflictDialog(self.agent, r["conflicts"], r.get("error")), answered)
                return
            worktree = (self.state.get("path") or "").rstrip("/").rsplit("/", 1)[-1]

            def after(t: dict | None) -> None:
                if t is not None:
                    self.app.notify(
                        f"worktree {t['name']} archived as {t['archive_ref']} and removed", timeout=4
                    )
                    self.app.pop_screen()
                else:
                    self.load()

            self.app.push_screen(AfterMergeDialog(self.agent, worktree, r), after)

        self.app.push_screen(MergeDialog(self.agent), merged)

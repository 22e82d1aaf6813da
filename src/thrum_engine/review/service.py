"""Reviews: what needs review, the rounds of comments that become one message to the agent, and the
merge behind a preflight. Git runs in threads (`gitstate`); state changes are journal events
(`review.request|submit|merge`), pending comments a machine-local table.

The target of every review is the branch checked out in the main checkout, as for teardown's audit."""

from __future__ import annotations

import asyncio
import os
import re
import time
from typing import TYPE_CHECKING

from thrum_engine import git, ids, names
from thrum_engine.durations import iso, parse_iso
from thrum_engine.errors import Conflict, Forbidden, InvalidInput, NotFound, UnknownAgent
from thrum_engine.git import GitFailed, identity_env
from thrum_engine.layout import current_branch
from thrum_engine.review import gitstate
from thrum_engine.store import reviews as q

if TYPE_CHECKING:
    from thrum_engine.engine.core import Engine

# A queued command that ran the tests, for the "tests" column (see tmux/results.py).
TEST_COMMAND = re.compile(
    r"\b(pytest|tox|nox|unittest|make\s+(test|check)|(npm|yarn|pnpm|bun)\s+(run\s+)?test|cargo\s+test|"
    r"go\s+test|ctest|rspec|jest|vitest|mix\s+test|gradle\w*\s+test|mvn\s+test)\b"
)
QUOTE_LINES = 6  # lines of code quoted per comment in the message body
STRATEGIES = ("merge", "squash", "rebase")


# -- who and where --


def target_branch(engine: Engine) -> str:
    target = current_branch(engine.layout.repo)
    if not target:
        raise Conflict("the main checkout is on a detached HEAD: check out the branch to merge into")
    return target


def worktree_of(engine: Engine, agent: str) -> str:
    row = engine.agents.get(names.named(agent))
    if row is None:
        raise UnknownAgent(f"no agent @{agent}")
    wt = row.get("worktree") or ""
    if not wt or not os.path.isdir(wt):
        raise NotFound(f"@{agent} has no worktree on this machine")
    if os.path.realpath(wt) == os.path.realpath(engine.layout.repo):
        raise InvalidInput(f"@{agent} works in the main checkout: there is no branch of its own to review")
    return wt


def reviewable_agents(engine: Engine) -> list[str]:
    main = os.path.realpath(engine.layout.repo)
    out = []
    for name, row in sorted(engine.agents.items()):
        wt = row.get("worktree") or ""
        if row.get("kind") == "user" or not wt or not os.path.isdir(wt) or os.path.realpath(wt) == main:
            continue
        out.append(name)
    return out


async def state_of(engine: Engine, agent: str) -> gitstate.BranchState:
    wt = worktree_of(engine, agent)
    return (await asyncio.to_thread(gitstate.branch_state, wt, target_branch(engine)))[0]


def agent_state(engine: Engine, agent: str) -> str:
    from thrum_engine.team import presence

    return presence(engine, agent)[0] if agent in engine.agents else "gone"


async def tests_status(engine: Engine, agent: str) -> dict | None:
    """The last queued test command in the agent's pane, if one ran."""
    pane = engine.tmux.for_agent(agent) if engine.tmux is not None else None
    if pane is None:
        return None
    from thrum_engine.tmux.results import label

    rows = await engine.store.all(
        "SELECT * FROM tmux_queue WHERE session = ? AND kind = 'command' ORDER BY created_at DESC LIMIT 50",
        (pane.name,),
    )
    for row in rows:
        if TEST_COMMAND.search(row["command"]):
            passed = None if row["status"] in ("queued", "running") else row.get("exit_code") == 0
            return {
                "command": row["command"],
                "status": row["status"],
                "exit_code": row.get("exit_code"),
                "passed": passed,
                "label": label(row),
                "finished_at": row.get("finished_at"),
            }
    return None


def _age(at: str | None) -> float | None:
    if not at:
        return None
    try:
        return round(time.time() - parse_iso(at), 1)
    except ValueError:
        return None


# -- the queue --


def entry(
    engine: Engine, agent: str, st: gitstate.BranchState, review: dict | None, tests: dict | None
) -> dict:
    status = review["status"] if review else None
    reviewed = review.get("reviewed_fingerprint") if review else None
    return {
        "agent": agent,
        "review_id": review["id"] if review else None,
        "status": status or "unreviewed",
        "branch": st.branch,
        "target": st.target,
        "head": st.head,
        "ahead": st.ahead,
        "behind": st.behind,
        "files": len(st.files) + len(st.untracked),
        "added": st.added,
        "removed": st.removed,
        "uncommitted": len(st.uncommitted),
        "untracked": len(st.untracked),
        "reviewable": st.reviewable,
        "tests": tests,
        "note": (review or {}).get("note") or "",
        "requested_at": (review or {}).get("requested_at"),
        "request_age": _age((review or {}).get("requested_at")) if status == "requested" else None,
        "reviewed_head": (review or {}).get("reviewed_head"),
        "changed_since_review": None if not reviewed else reviewed != st.fingerprint,
        "agent_state": agent_state(engine, agent),
        "needs_you": status == "requested"
        or (status is not None and bool(reviewed) and reviewed != st.fingerprint and status != "approved"),
    }


async def queue(engine: Engine, *, everyone: bool = False) -> list[dict]:
    """Each agent with work to review (commits ahead of the target or uncommitted changes), or with
    an open request; `everyone`: every agent with a worktree."""
    open_ = await q.open_reviews(engine.store)
    merged = await q.merged_heads(engine.store)
    target = target_branch(engine)
    out = []
    here = set()  # agents whose worktree git read: never "no worktree on this machine"
    for agent in reviewable_agents(engine):
        try:
            st, _ = await asyncio.to_thread(gitstate.branch_state, engine.agents[agent]["worktree"], target)
        except GitFailed:
            continue  # a worktree git cannot read (removed under us): not reviewable
        here.add(agent)
        review = open_.get(agent)
        done = None if review else merged_already(merged.get(agent), st)
        if done is not None:
            if not everyone:
                continue  # a squashed branch still at its merged head: its commits are not new work
            review = done
        if not (everyone or st.reviewable or (review and review["status"] == "requested")):
            continue
        out.append(entry(engine, agent, st, review, await tests_status(engine, agent)))
    listed = {e["agent"] for e in out}
    for agent, review in open_.items():
        # An open review whose agent has no worktree here (torn down with --keep-agent, or another
        # clone's): still listed, with nothing git can say (walk, session 21: it left the list).
        if agent in listed or agent in here or agent not in engine.agents:
            continue
        nowhere = gitstate.BranchState(
            path="", branch=review.get("branch") or None, head="", target=review.get("target") or target,
            target_head="", merge_base="", ahead=0, behind=0,
        )  # fmt: skip
        e = entry(engine, agent, nowhere, review, None)
        # Nothing to compare with: only a request asks for the human (a verdict waits on the agent).
        e.update(changed_since_review=None, no_worktree=True, needs_you=review["status"] == "requested")
        out.append(e)
    # What waits for the human first, oldest request first.
    out.sort(key=lambda e: (not e["needs_you"], e["requested_at"] or "~", e["agent"]))
    return out


# -- requests --


# A message tagged `--ref review:request` ("done, please review") asks for review of its author's work.
REQUEST_REF = {"type": "review", "value": "request"}
NOTE_MAX = 4000  # characters of a request's note (a tagged message's body is cut to it)


def merged_already(merged: dict | None, st: gitstate.BranchState) -> dict | None:
    """The agent's last merged review when its branch is still where that merge took it (no commit,
    no uncommitted change since): after a squash its commits are not in the target's history, yet
    they hold nothing new."""
    if merged is None or merged["merged_head"] != st.head or st.uncommitted or st.untracked:
        return None
    return merged


async def _merged_since(engine: Engine, agent: str, st: gitstate.BranchState) -> dict | None:
    """`merged_already` for one agent, read from the store."""
    return merged_already((await q.merged_heads(engine.store, agent)).get(agent), st)


def _merged_text(done: dict, st: gitstate.BranchState) -> str:
    target = done["target"] or st.target
    return f"{st.branch or 'HEAD'} was merged into {target} already (review {done['id']}, {done['strategy']})"


async def request_data(engine: Engine, agent: str, note: str) -> dict:
    """A `review.request` event's data for `agent`'s work as it is now (a tagged message commits
    the event with itself, naming it); refuses work with nothing to review."""
    st = await state_of(engine, agent)
    if not st.reviewable:
        raise InvalidInput(
            f"nothing to review: {st.branch or 'HEAD'} has no commits ahead of {st.target} and no uncommitted changes"
        )
    review = await q.open_review(engine.store, agent)
    done = None if review else await _merged_since(engine, agent, st)
    if done is not None:
        raise InvalidInput(f"nothing to review: {_merged_text(done, st)} and has not changed since")
    rid = review["id"] if review else ids.new_id("rev")
    data = {"review_id": rid, "agent": agent, "branch": st.branch or "", "target": st.target, "head": st.head}
    if note.strip():
        data["note"] = note.strip()[:NOTE_MAX]
    return data


async def request(engine: Engine, author: str, agent: str, note: str) -> dict:
    d = await request_data(engine, agent, note)
    await engine.commit(engine.event("review.request", author, d))
    return {
        "review_id": d["review_id"],
        "agent": agent,
        "branch": d["branch"] or None,
        "target": d["target"],
        "head": d["head"],
    }


async def find_review(engine: Engine, review_id: str | None, agent: str | None) -> dict | None:
    if review_id:
        ids.check_id(review_id, "rev", "review")
        row = await q.review(engine.store, review_id)
        if row is None:
            raise NotFound(f"no review {review_id}")
        return row
    if agent:
        return await q.open_review(engine.store, agent) or await engine.store.one(
            "SELECT * FROM reviews WHERE agent = ? ORDER BY opened_at DESC LIMIT 1", (agent,)
        )
    return None


# -- comments --


def _lines_now(worktree: str, path: str) -> list[str] | None:
    return gitstate.working_file(worktree, path)


def base_path(st: gitstate.BranchState, path: str, side: str) -> str:
    """Where a comment's lines are at the merge base: a renamed file's old side is under its old
    name (a review of session 22: the old side of a rename read as "not in the merge base")."""
    if side == "old":
        for f in st.files:
            if f.path == path and f.old_path:
                return f.old_path
    return path


def mark_outdated(worktree: str | None, st: gitstate.BranchState | None, comments: list[dict]) -> list[dict]:
    """Each comment with `outdated`: its lines no longer read as quoted (the agent changed or moved
    them), or its file left the diff. Blocking (reads files): run in a thread."""
    if worktree is None or st is None:
        return [{**c, "outdated": None} for c in comments]
    in_diff = st.paths | st.old_paths
    cache: dict[tuple[str, str], list[str] | None] = {}
    out = []
    for c in comments:
        path, line = c["path"], c.get("line")
        if path not in in_diff:
            outdated = True
        elif not line or not c.get("quote"):
            outdated = False
        else:
            side = c.get("side", "new")
            key = (side, path)
            if key not in cache:
                cache[key] = (
                    _lines_now(worktree, path)
                    if side == "new"
                    else gitstate.file_at(worktree, st.merge_base, base_path(st, path, side))
                )
            lines = cache[key]
            want = c["quote"].split("\n")
            outdated = lines is None or lines[line - 1 : line - 1 + len(want)] != want
        out.append({**c, "outdated": outdated})
    return out


def quote_of(worktree: str, base: str, path: str, line: int | None, end: int | None, side: str) -> str:
    """The lines a comment is on, as they read now; a line past the file's end (or a file not on
    that side of the diff) is refused, so a comment never points at nothing."""
    if not line:
        return ""
    lines = _lines_now(worktree, path) if side == "new" else gitstate.file_at(worktree, base, path)
    if lines is None:
        if side == "new":
            raise InvalidInput(
                f"{path} is not in the branch (it deleted the file): comment on the whole file"
                f" (`{path}: TEXT`), or on its removed lines in the console's review page"
            )
        raise InvalidInput(f"{path} is not in the merge base (the branch added it): comment on its new lines")
    count = len(lines) - (1 if lines and lines[-1] == "" else 0)  # a final newline ends a line
    if (end or line) > count:
        raise InvalidInput(f"{path} has {count} line(s) on that side: line {end or line} is past its end")
    return "\n".join(lines[line - 1 : (end or line)])


def where(c: dict) -> str:
    if not c.get("line"):
        return f"{c['path']} (whole file)"
    span = (
        f"{c['line']}-{c['end_line']}" if c.get("end_line") and c["end_line"] != c["line"] else f"{c['line']}"
    )
    return f"{c['path']}:{span}" + (" (old side)" if c.get("side") == "old" else "")


def message_body(
    review_id: str, verdict: str, st: gitstate.BranchState, summary: str, comments: list[dict]
) -> str:
    head = "approved" if verdict == "approve" else "changes requested"
    n = len(comments)
    lines = [
        f"Review of {st.branch or 'HEAD'} ({st.ahead} commit(s) ahead of {st.target}, {st.merge_base[:8]}..{st.head[:8]}): {head}"
        + (f", {n} comment(s)" if n else ""),
    ]
    if summary.strip():
        lines += ["", summary.strip()]
    for i, c in enumerate(comments, 1):
        lines += ["", f"{i}. {where(c)}"]
        quoted = (c.get("quote") or "").split("\n")[:QUOTE_LINES] if c.get("quote") else []
        lines += [f"   > {q}" for q in quoted]
        if c.get("quote") and len((c.get("quote") or "").split("\n")) > QUOTE_LINES:
            lines.append("   > …")
        lines += [f"   {b}" for b in c["body"].strip().split("\n")]
    lines += [
        "",
        (
            f"Reply to this message to answer the review; `thrum review show {review_id} --json` and"
            " `thrum review comments --json` have it as data."
        ),
    ]
    return "\n".join(lines)


async def submit(
    engine: Engine,
    reviewer: str,
    agent: str,
    verdict: str,
    summary: str,
    extra: list[dict],
    *,
    with_pending: bool,
) -> dict:
    """`with_pending`: the operator's pending comments (the console's drafts) go with it; another
    reviewer's verdict leaves them pending, since they are not that reviewer's words."""
    if reviewer == agent:
        raise Forbidden("an agent does not review its own work")
    st = await state_of(engine, agent)
    if verdict == "approve" and not st.reviewable:  # console walk, session 22: `A` approved nothing
        raise InvalidInput(
            f"nothing of @{agent}'s to approve: {st.branch or 'HEAD'} has no commits ahead of {st.target}"
            " and nothing uncommitted"
        )
    pending = await q.drafts(engine.store, agent) if with_pending else []
    comments = [
        {
            k: d[k]
            for k in ("id", "path", "line", "end_line", "side", "quote", "body", "head")
            if d.get(k) is not None
        }
        for d in pending
    ]
    wt = worktree_of(engine, agent)
    for c in extra:
        comments.append(await _new_comment(engine, wt, st, c))
    if verdict == "request_changes" and not comments and not summary.strip():
        raise InvalidInput(
            "request changes with at least one comment or a summary, so the agent knows what to do"
        )
    review = await q.open_review(engine.store, agent)
    rid = review["id"] if review else ids.new_id("rev")
    structured = {
        "type": "review",
        "review_id": rid,
        "verdict": verdict,
        "branch": st.branch,
        "target": st.target,
        "base": st.merge_base,
        "head": st.head,
        "summary": summary,
        "comments": comments,
    }
    from thrum_engine.messaging import create_message

    msg = await create_message(
        engine,
        reviewer,
        message_body(rid, verdict, st, summary, comments),
        to=["@" + agent],
        refs=[f"review:{rid}"],
        structured=structured,
    )
    mid = msg["data"]["message_id"]
    data = {
        "review_id": rid,
        "agent": agent,
        "verdict": verdict,
        "head": st.head,
        "branch": st.branch or "",
        "target": st.target,
        "base": st.merge_base,
        "fingerprint": st.fingerprint,
        "summary": summary,
        "comments": comments,
        "message_id": mid,
    }
    await engine.commit(engine.event("review.submit", reviewer, data))
    if with_pending:
        await engine.store.write_local(q.CLEAR_DRAFTS, [(agent,)])  # takes the writer's lock itself
    return {
        "review_id": rid,
        "agent": agent,
        "verdict": verdict,
        "message_id": mid,
        "comments": len(comments),
        "head": st.head,
    }


async def _new_comment(engine: Engine, wt: str, st: gitstate.BranchState, c: dict) -> dict:
    path = c.get("path") or ""
    if not path or path.startswith("/") or ".." in path.split("/"):
        raise InvalidInput(f"invalid path {path!r}: a path inside the repo, as the diff shows it")
    body = (c.get("body") or "").strip()
    if not body:
        raise InvalidInput("a comment needs text")
    line, end = c.get("line"), c.get("end_line")
    if line is not None and (line < 1 or (end is not None and end < line)):
        raise InvalidInput("line numbers start at 1 and a range ends at or after its start")
    side = c.get("side") or "new"
    if side not in ("new", "old"):
        raise InvalidInput("side is new or old")
    in_diff = st.paths
    if path not in in_diff and not (side == "old" and path in st.old_paths):
        # it would show as outdated at once (`mark_outdated`)
        if not in_diff:
            raise InvalidInput(
                f"nothing to comment on: {st.branch or 'HEAD'} changes nothing against {st.target}"
            )
        shown = ", ".join(sorted(in_diff)[:10]) + (", ..." if len(in_diff) > 10 else "")
        raise InvalidInput(f"{path} is not in the diff (the files changed: {shown})")
    quote = await asyncio.to_thread(quote_of, wt, st.merge_base, base_path(st, path, side), line, end, side)
    out = {"id": ids.new_id("cmt"), "path": path, "body": body, "side": side, "quote": quote, "head": st.head}
    if line is not None:
        out["line"] = line
    if end is not None and end != line:
        out["end_line"] = end
    return out


async def add_draft(engine: Engine, agent: str, c: dict) -> dict:
    wt = worktree_of(engine, agent)
    st = await state_of(engine, agent)
    comment = await _new_comment(engine, wt, st, c)
    row = (
        comment["id"],
        agent,
        comment["path"],
        comment.get("line"),
        comment.get("end_line"),
        comment["side"],
        comment["quote"],
        comment["body"],
        comment["head"],
        iso(),
    )
    await engine.store.write_local(q.ADD_DRAFT, [row])
    return comment


async def remove_draft(engine: Engine, agent: str, comment_id: str | None) -> None:
    if comment_id is None:
        await engine.store.write_local(q.CLEAR_DRAFTS, [(agent,)])
    else:
        await engine.store.write_local(q.DELETE_DRAFT, [(agent, comment_id)])


async def comments(
    engine: Engine,
    review: dict | None,
    agent: str,
    *,
    with_pending: bool,
    st: gitstate.BranchState | None = None,
) -> dict:
    """The comments of every verdict since the last request (outdated marked against the branch as
    it is now; each with `by`, its reviewer) and, for the reviewer, the pending ones. Each submit is
    a round: a reviewer's two submits in a row showed the author the second one's alone (walk,
    session 22)."""
    if st is None:
        try:
            st = await state_of(engine, agent)
        except (NotFound, UnknownAgent, InvalidInput, GitFailed):
            st = None
    wt = st.path if st is not None else None
    rounds = await q.rounds(engine.store, review["id"]) if review else []
    asked = (review or {}).get("requested_at") or ""
    since = [r for r in rounds if r["at"] >= asked] or rounds[-1:]  # no verdict since: the last one
    last = since[-1] if since else None
    given = [{"by": r["reviewer"], **c} for r in since for c in r["comments"]]
    submitted = await asyncio.to_thread(mark_outdated, wt, st, given)
    out: dict = {
        "review_id": review["id"] if review else None,
        "agent": agent,
        "status": review["status"] if review else None,
        "verdict": last["verdict"] if last else None,
        "summary": last["summary"] if last else "",
        "reviewed_head": last["head"] if last else None,
        "head": st.head if st else None,
        "changed_since_review": (last["fingerprint"] != st.fingerprint) if (last and st) else None,
        "comments": submitted,
    }
    if with_pending:
        drafts = await q.drafts(engine.store, agent)
        out["pending"] = await asyncio.to_thread(mark_outdated, wt, st, drafts)
    return out


async def show(engine: Engine, review: dict) -> dict:
    agent = review["agent"]
    rounds = await q.rounds(engine.store, review["id"])
    replies = await q.replies(engine.store, [r["message_id"] for r in rounds if r["message_id"]])
    out = {"review": review, "rounds": rounds, "replies": replies, "state": None, "commits": []}
    try:
        st = await state_of(engine, agent)
    except (NotFound, UnknownAgent, InvalidInput, GitFailed):
        return out
    out["state"] = st.view()
    out["commits"] = await asyncio.to_thread(gitstate.commits, st.path, st.merge_base, st.head)
    out["changed_since_review"] = (
        None if not review.get("reviewed_fingerprint") else review["reviewed_fingerprint"] != st.fingerprint
    )
    return out


async def diff(engine: Engine, agent: str, commit: str | None, context: int) -> dict:
    """Everything the review screen opens with, in one call: the branch's state, the diff (whole,
    or one commit's), the commits and the comments; git's commands run side by side."""
    wt = worktree_of(engine, agent)
    if commit is not None:
        sha = await asyncio.to_thread(gitstate.rev, wt, commit)
        if not sha:
            raise InvalidInput(f"unknown commit {commit!r}")
        commit = sha

    def diff_of(base: str) -> str:
        return gitstate.diff_text(wt, base, commit, context)

    def commits_of(base: str) -> list[dict]:
        return gitstate.commits(wt, base, "HEAD")

    st, (text, commits) = await asyncio.to_thread(
        gitstate.branch_state, wt, target_branch(engine), extra=(diff_of, commits_of)
    )
    review = await find_review(engine, None, agent)
    said = await comments(engine, review, agent, with_pending=True, st=st)
    return {
        "agent": agent,
        "state": st.view(),
        "commit": commit,
        "diff": text,
        "commits": commits,
        "comments": said,
    }


# -- merge --


def _problem(code: str, text: str, *, forceable: bool, files: list[str] | None = None) -> dict:
    return {"code": code, "text": text, "forceable": forceable, "files": files or []}


def _has(problems: list[dict], code: str) -> bool:
    return any(p["code"] == code for p in problems)


async def preflight(engine: Engine, agent: str, strategy: str) -> dict:
    """Everything that stands between the branch and the target, found without changing anything:
    a dry merge for conflicts, the main checkout's state, the agent, the review."""
    if strategy not in STRATEGIES:
        raise InvalidInput(f"strategy is one of {', '.join(STRATEGIES)}")
    started = time.perf_counter()
    st = await state_of(engine, agent)
    repo = engine.layout.repo
    problems: list[dict] = []
    review = await q.open_review(engine.store, agent)
    merged = None if review else await _merged_since(engine, agent, st)
    if merged is not None:
        problems.append(_problem("nothing_to_merge", _merged_text(merged, st), forceable=False))
    elif st.ahead == 0:
        problems.append(
            _problem(
                "nothing_to_merge",
                f"{st.branch or 'HEAD'} has no commits ahead of {st.target}",
                forceable=False,
            )
        )
    if not st.branch:
        problems.append(
            _problem("detached", "the worktree is on a detached HEAD: no branch to merge", forceable=False)
        )
    if review and review.get("target") and review["target"] != st.target:
        # The merge goes into the branch the main checkout is on: never into another than the one
        # the review is for (walk: merged into `other`, recorded as merged into main).
        problems.append(
            _problem(
                "wrong_target",
                f"the review is for {review['target']}, but the main checkout is on {st.target}:"
                f" check out {review['target']} first",
                forceable=False,
            )
        )
    busy = gitstate.in_progress(engine.layout.git_dir)
    if busy:
        problems.append(
            _problem(
                "target_busy",
                f"the main checkout is in the middle of {busy}: finish or abort it first",
                forceable=False,
            )
        )
    main_changed, main_untracked = await asyncio.to_thread(gitstate.status, repo)
    if main_changed:
        problems.append(
            _problem(
                "target_dirty",
                f"the main checkout ({st.target}) has {len(main_changed)} uncommitted change(s): commit or stash them first",
                forceable=False,
                files=main_changed,
            )
        )
    tree, conflicted = (None, [])
    if st.ahead:
        tree, conflicted = await asyncio.to_thread(gitstate.merge_conflicts, repo, st.target_head, st.head)
        if tree is None:
            problems.append(
                _problem(
                    "conflicts",
                    f"merging {st.branch} into {st.target} conflicts in {len(conflicted)} file(s)",
                    forceable=False,
                    files=conflicted,
                )
            )
        elif not _has(problems, "nothing_to_merge") and tree == await asyncio.to_thread(
            gitstate.tree, repo, st.target_head
        ):
            problems.append(
                _problem(
                    "nothing_to_merge",
                    f"the changes of {st.branch or 'HEAD'} are in {st.target} already (squashed or cherry-picked)",
                    forceable=False,
                )
            )
        if main_untracked:
            written = set(await asyncio.to_thread(gitstate.written_by, repo, st.merge_base, st.head))
            clash = [f for f in main_untracked if f in written]
            if clash:
                problems.append(
                    _problem(
                        "target_untracked",
                        f"{len(clash)} untracked file(s) in the main checkout would be overwritten by the merge:"
                        " move them away first",
                        forceable=False,
                        files=clash,
                    )
                )
    if st.uncommitted:
        problems.append(
            _problem(
                "uncommitted",
                f"{len(st.uncommitted)} uncommitted change(s) in the worktree would not be merged",
                forceable=True,
                files=st.uncommitted,
            )
        )
    if st.untracked:
        problems.append(
            _problem(
                "untracked",
                f"{len(st.untracked)} untracked file(s) in the worktree would not be merged",
                forceable=True,
                files=st.untracked,
            )
        )
    if strategy == "rebase" and st.behind and (st.uncommitted or st.untracked):
        problems.append(
            _problem(
                "rebase_dirty",
                "rebasing needs a clean worktree (commit or drop its changes)",
                forceable=False,
            )
        )
    state = agent_state(engine, agent)
    if state == "working":
        problems.append(_problem("agent_working", f"@{agent} is still working", forceable=True))
    if _has(problems, "nothing_to_merge"):
        pass  # merged already, or nothing there: "not approved" would only mislead
    elif review is None or review["status"] != "approved":
        problems.append(_problem("not_approved", "the review is not approved", forceable=True))
    elif review.get("reviewed_fingerprint") != st.fingerprint:
        problems.append(
            _problem(
                "changed_since_approval", f"@{agent}'s work changed since you approved it", forceable=True
            )
        )
    # What the merge brings is the branch's commits: the worktree's uncommitted work (in `st.files`,
    # which the review shows) stays behind, and counting it said +6 where the merge brought +2.
    merging = (
        await asyncio.to_thread(gitstate.numstat, repo, st.merge_base, st.head)
        if st.uncommitted or st.untracked
        else st.files
    )
    return {
        "agent": agent,
        "strategy": strategy,
        "branch": st.branch,
        "target": st.target,
        "head": st.head,
        "target_head": st.target_head,
        "ahead": st.ahead,
        "behind": st.behind,
        "files": len(merging),
        "added": sum(f.added or 0 for f in merging),
        "removed": sum(f.removed or 0 for f in merging),
        "conflicts": conflicted,
        "main_untracked": len(main_untracked),
        "review_id": review["id"] if review else None,
        "problems": problems,
        "ok": not problems,
        "mergeable": not any(not p["forceable"] for p in problems),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _commit_message(strategy: str, branch: str, agent: str, rid: str, subjects: list[str]) -> str:
    if strategy == "squash":
        body = "\n".join(f"* {s}" for s in reversed(subjects))
        return f"{branch}: work of @{agent} (squashed, review {rid})\n\n{body}\n"
    return f"Merge branch '{branch}' (@{agent}, review {rid})\n"


def _do_merge(repo: str, worktree: str, st: gitstate.BranchState, strategy: str, message: str) -> str:
    """The merged commit, reached by a fast-forward of the main checkout: a merge or squash commit
    is built from the dry merge's tree first (`commit-tree`), a rebase runs in the (clean) worktree
    and is aborted on any failure, so a failure leaves nothing half-done."""
    if gitstate.rev(repo, "HEAD") != st.target_head:
        raise Conflict(f"{st.target} moved while merging: run the preflight again")
    if strategy == "rebase":
        new = st.head
        if not gitstate.is_ancestor(repo, st.target_head, st.head):
            who = identity_env(worktree)
            if git.call(worktree, "rebase", "--quiet", st.target_head, env=who, identity=False).code:
                git.call(worktree, "rebase", "--abort", env=who, identity=False)
                raise Conflict(
                    f"rebasing {st.branch} onto {st.target} stopped on a conflict: nothing was changed"
                )
            new = gitstate.rev(worktree, "HEAD")
    else:
        tree, conflicted = gitstate.merge_conflicts(repo, st.target_head, st.head)
        if tree is None:
            raise Conflict(f"merging {st.branch} conflicts in: {', '.join(conflicted)}")
        parents = ["-p", st.target_head] + (["-p", st.head] if strategy == "merge" else [])
        who = identity_env(repo)
        new = git.run(repo, "commit-tree", tree, *parents, "-F", "-", stdin=message, env=who, identity=False)
    # The merged commit is built already: the main checkout only moves to it (a fast-forward).
    done = git.call(repo, "merge", "--ff-only", "--quiet", new, identity=False)
    if done.code != 0:
        why = git.complaint(done.err) or done.out.strip() or f"git merge exit {done.code}"
        raise Conflict(f"updating the main checkout to the merged commit failed (nothing was changed): {why}")
    return new


async def merge(
    engine: Engine,
    author: str,
    agent: str,
    strategy: str,
    *,
    force: bool,
    teardown: bool,
    delete_branch: bool,
    keep_agent: bool,
    caller,
) -> dict:
    if delete_branch and not teardown:
        raise InvalidInput("--delete-branch needs --teardown: the branch is checked out in the worktree")
    if keep_agent and not teardown:  # it was ignored silently (walk, session 21)
        raise InvalidInput("--keep-agent needs --teardown: without it the agent is kept anyway")
    if teardown:
        from thrum_engine.worktrees import path_for

        wt = worktree_of(engine, agent)
        if path_for(engine, os.path.basename(wt)) != os.path.realpath(wt):
            raise InvalidInput(f"--teardown: {wt} is not a worktree Thrum made (under worktrees.base_path)")
        if not force:
            # As `worktree teardown`: a live pane is killed only when asked, and it is refused
            # before the merge, so a refusal changes nothing.
            from thrum_engine.worktrees import live_panes_for

            live = await live_panes_for(engine, wt)
            if live:
                raise Conflict(
                    f"not merging @{agent}'s work with --teardown: the worktree has a live pane"
                    f" ({', '.join(live)}); stop it first, or pass --force to kill it"
                )
    pre = await preflight(engine, agent, strategy)
    hard = [p for p in pre["problems"] if not p["forceable"]]
    soft = [p for p in pre["problems"] if p["forceable"]]
    if hard or (soft and not force):
        blocking = hard + ([] if force else soft)
        detail = "; ".join(
            p["text"] + (f" ({', '.join(p['files'][:8])})" if p["files"] else "") for p in blocking
        )
        hint = "" if hard else " (--force to merge anyway)"
        raise Conflict(f"not merging @{agent}'s {pre['branch'] or 'work (detached HEAD)'}: {detail}{hint}")
    st = await state_of(engine, agent)
    review = await q.open_review(engine.store, agent)
    rid = review["id"] if review else ids.new_id("rev")
    subjects = [
        c["subject"] for c in await asyncio.to_thread(gitstate.commits, st.path, st.merge_base, st.head)
    ]
    message = _commit_message(strategy, st.branch or "HEAD", agent, rid, subjects)
    async with _merge_lock(engine):
        merged = await asyncio.to_thread(_do_merge, engine.layout.repo, st.path, st, strategy, message)
    await engine.commit(
        engine.event(
            "review.merge",
            author,
            {
                "review_id": rid,
                "agent": agent,
                "strategy": strategy,
                "merged_commit": merged,
                "target": st.target,
                "branch": st.branch or "",
                "head": st.head,
            },
        )
    )
    result: dict = {
        "review_id": rid,
        "agent": agent,
        "strategy": strategy,
        "target": st.target,
        "branch": st.branch,
        "merged_commit": merged,
        "forced": [p["code"] for p in soft] if force else [],
        "teardown": None,
    }
    if strategy == "rebase" and merged != st.head:
        result["rebased"] = True
    if agent in engine.agents and (not teardown or keep_agent):
        result["message_id"] = await _tell_merged(engine, author, agent, rid, st, strategy, merged)
    if teardown:
        from thrum_engine.worktrees import WorktreeTeardownParams
        from thrum_engine.worktrees import teardown as teardown_method

        result["teardown"] = await teardown_method(
            engine,
            caller,
            WorktreeTeardownParams(
                name=os.path.basename(st.path), force=True, delete_branch=delete_branch, keep_agent=keep_agent
            ),
        )
    return result


async def _tell_merged(
    engine: Engine, author: str, agent: str, rid: str, st: gitstate.BranchState, strategy: str, merged: str
) -> str:
    """The agent hears that its work landed (walk, session 21: nothing told it), and, after a squash,
    that its branch's commits are not the target's: new work starts from the target."""
    from thrum_engine.messaging import create_message

    body = f"Merged: your {st.branch or 'work'} into {st.target} ({strategy}, {merged[:12]}), review {rid}."
    if strategy == "squash":
        body += f" Its commits are not in {st.target}'s history: start new work from {st.target}."
    msg = await create_message(engine, author, body, to=["@" + agent], refs=[f"review:{rid}"])
    return msg["data"]["message_id"]


_LOCKS: dict[int, asyncio.Lock] = {}


def _merge_lock(engine: Engine) -> asyncio.Lock:
    """One merge at a time per engine: two would race on the main checkout's HEAD."""
    return _LOCKS.setdefault(id(engine), asyncio.Lock())

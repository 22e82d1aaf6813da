"""The briefing as text: what `thrum prime` prints and what the session-start hook hands the runtime.

One renderer for both, so an agent primed by a hook and one that ran `thrum prime` read the same
words. Stdlib only: the CLI renders it on its light path from the engine's `prime` result.
"""

from thrum_engine.durations import human_age

INBOX_HINT = "Read them with `thrum inbox` (that marks them read; `--unread` only peeks)."


def member_line(m: dict) -> str:
    role = m["role"] + (f"/{m['module']}" if m.get("module") else "")
    unread = f"  {m['unread']} unread" if m.get("unread") else ""
    branch = f"  [{m['branch']}]" if m.get("branch") else ""
    intent = f"  — {m['intent']}" if m.get("intent") else ""
    task = f"  ({m['task_chip']})" if m.get("task_chip") else ""  # the task chip (issue 16)
    age = human_age(m.get("idle_seconds") or 0)
    return f"@{m['name']}  {role}  {m['presence']} {age}  {m.get('runtime') or '-'}{branch}{task}{unread}{intent}"


def work_line(wc: dict | None) -> str:
    if not wc:
        return "no worktree"
    return f"{wc['branch'] or 'detached'}: {len(wc['uncommitted'])} uncommitted, {wc['ahead']} ahead of {wc['base']}"


def next_steps(r: dict) -> list[str]:
    steps = []
    if r.get("unread"):
        steps.append(
            "Read your mail: `thrum inbox`, and answer what needs an answer (`thrum reply MSG_ID ...`)."
        )
    session = r.get("session") or {}
    if not session.get("intent"):
        steps.append('Say what you are working on: `thrum session set-intent "..."`.')
    wc = r.get("work_context") or {}
    if wc.get("uncommitted"):
        steps.append(
            f"You have {len(wc['uncommitted'])} uncommitted files: finish and commit them, or say why."
        )
    steps.append(
        "Carry on with your task; report progress and blockers to your coordinator (`thrum send ... --to @NAME`)."
    )
    return steps


def render(r: dict) -> str:
    """The briefing for a `prime` result from the engine."""
    out: list[str] = []
    ag = r["agent"]
    out.append(
        f"# You are @{ag['name']} ({ag['role']}" + (f"/{ag['module']}" if ag.get("module") else "") + ")"
    )
    s = r.get("session")
    if s:
        out.append(
            f"Session {s['session_id']}"
            + (f" — intent: {s['intent']}" if s.get("intent") else "")
            + (f" — task: {s['task_chip']}" if s.get("task_chip") else "")
        )
    else:
        out.append("No active session: `thrum session start` begins one.")
    out.append(f"Work: {work_line(r.get('work_context'))}")
    wc = r.get("work_context") or {}
    for f in (wc.get("uncommitted") or [])[:10]:
        out.append(f"  uncommitted: {f}")
    if r.get("single_agent_mode"):
        out.append("\nSingle-agent mode: you work alone here (`thrum single-agent-mode false` turns it off).")
    else:
        out.append(f"\n## Team ({len(r['team'])} online)")
        for m in r["team"]:
            out.append("- " + member_line(m))
    out.append(f"\n## Inbox: {r['unread']} unread")
    for m in r["recent_unread"]:
        out.append(f"- {m['message_id']} from @{m['from']}: {m['preview']}")
    if r["unread"]:
        out.append(INBOX_HINT)
    out += asks_lines(r.get("open_asks"))
    if r.get("preamble"):
        out.append("\n## Preamble\n" + r["preamble"].rstrip())
    if r.get("context"):
        out.append("\n## Saved context\n" + r["context"].rstrip())
    if r.get("restart_snapshot"):
        out.append(
            "\n## Restart snapshot (your previous session) — ACTION REQUIRED\n"
            "You were restarted. Follow the Resume plan at the end of this snapshot before anything else.\n\n"
            + r["restart_snapshot"].rstrip()
        )
    out.append("\n## Next steps")
    out += [f"{i}. {step}" for i, step in enumerate(next_steps(r), 1)]
    return "\n".join(out) + "\n"


def _age(seconds: float) -> str:
    from thrum_engine.durations import human_age

    return human_age(seconds)


def asks_lines(asks: dict | None) -> list[str]:
    """The briefing's open asks (issue 16): what waits for my answer, and what I wait for."""
    if not asks or not (asks.get("to_me") or asks.get("mine")):
        return []
    out = [f"\n## Open asks: {len(asks['to_me'])} waiting for your answer, {len(asks['mine'])} you wait on"]
    for a in asks["to_me"][:10]:
        late = " OVERDUE" if a.get("overdue") else ""
        out.append(
            f"- {a['message_id']} from @{a['sender']} ({_age(a['age_seconds'])} old{late}): {a['preview'][:120]}"
        )
    for a in asks["mine"][:10]:
        out.append(
            f"- {a['message_id']} to @{a['recipient']} ({_age(a['age_seconds'])} old): {a['preview'][:120]}"
        )
    if asks["to_me"]:
        out.append(ASKS_HINT)
    return out


ASKS_HINT = (
    'Answer with `thrum reply MSG_ID "..."`, or `thrum ack MSG_ID --note "..."` when no reply is needed.'
)


def asks_context(asks: list[dict]) -> str:
    """Open asks waiting for the agent's answer, as added context at its next prompt (hooks)."""
    lines = [f"Thrum: {len(asks)} open ask{'s' if len(asks) != 1 else ''} waiting for your answer:"]
    for a in asks[:5]:
        lines.append(
            f"- {a['message_id']} from @{a['sender']} ({_age(a['age_seconds'])} old): {a['preview'][:120]}"
        )
    lines.append(ASKS_HINT)
    return "\n".join(lines)


def unread_summary(messages: list[dict], unread: int, *, limit_chars: int = 1500) -> str:
    """New mail as context for the agent's next step (prompt-submit) or the reason a Stop is
    blocked: who wrote, the id to reply to, and the text (cut long ones)."""
    n = len(messages)
    head = f"Thrum: {n} new message{'s' if n != 1 else ''} for you ({unread} unread in all)."
    lines = [head]
    for m in messages:
        body = m["content"]
        if len(body) > limit_chars:
            body = (
                body[:limit_chars] + f"… ({len(m['content'])} chars; `thrum message get {m['message_id']}`)"
            )
        lines.append(f"\n--- {m['message_id']} from @{m['from']} at {m['created_at']}:\n{body}")
    lines.append("\n" + INBOX_HINT + ' Reply with `thrum reply MSG_ID "..."`.')
    return "\n".join(lines)

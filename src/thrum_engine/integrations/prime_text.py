"""The words of the prime entry points each runtime loads (a skill, a command file, a TOML command):
all of them tell the agent to run `thrum prime` and act on it, so the briefing has one source. Codex
runs its SessionStart hook with the first turn, the very turn the prime typed at launch starts: the
hook's briefing is in context by then, hence the "already briefed" sentence (runtimes walk, session 22)."""

from __future__ import annotations

DESCRIPTION = "Thrum briefing: who you are, your team, unread mail, your work, what to do next"

BODY = """Run `thrum prime` in the shell now and read its output: it is your briefing as an agent on a
team coordinated through Thrum (your identity and role, the team and what each member is doing, your
unread messages, your branch and uncommitted work, context you saved before). If this session's
context already holds that briefing (a session-start hook put it there: it begins `# You are @`),
you are briefed: do not run it again, go on with the steps below.

Then act on it:
- If there are unread messages, read them with `thrum inbox` (that marks them read) and answer what needs an answer (`thrum reply MSG_ID "..."`).
- Say what you are about to do: `thrum session set-intent "..."`.
- Carry on with your task; report progress and blockers to your coordinator with `thrum send "..." --to @NAME`.
"""


def markdown(name: str, *, skill: bool) -> str:
    """A Markdown file with YAML front matter: a skill (`name` + `description`) or a command."""
    head = [f"name: {name}"] if skill else []
    head.append(f"description: {DESCRIPTION}")
    return "---\n" + "\n".join(head) + "\n---\n\n" + BODY


def gemini_toml() -> str:
    body = BODY.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return f'description = "{DESCRIPTION}"\nprompt = """\n{body}"""\n'

"""The command palette (ctrl+p): every console action by name, so nothing needs its key learnt
first. Textual's own entries (themes, quit, screenshot) stay alongside."""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits, Provider

ACTIONS: list[tuple[str, str, str]] = [
    ("Send a message", "compose", "write to the highlighted agent, or @anyone"),
    ("Reply to the highlighted message", "reply", "answer in its thread"),
    ("New agent", "new_agent", "worktree + tmux session + runtime + first prompt"),
    ("Teardown agent", "teardown", "audit, confirm by name, archive and remove its worktree"),
    ("Attach to the agent's pane", "attach", "tmux attach; detach to come back"),
    ("Command queue", "queue", "queue or type a command into the agent's pane"),
    ("Restart agent runtime", "restart_agent", "respawn the pane and launch the runtime again"),
    ("Kill agent session", "kill_session", "end the agent's tmux session"),
    ("Monitors", "monitors", "rules that turn output into messages"),
    ("Schedules", "schedules", "messages the engine delivers later: next fire times"),
    ("Feed", "feed", "all traffic"),
    ("Find messages", "find", "search every message"),
    ("What needs me", "needs_you", "jump to a blocked agent, unread mail (yours too) or a review"),
    ("Jump to an agent", "jump", "fuzzy search by name, role or intent"),
    ("Help", "help", "every key"),
]


class ThrumCommands(Provider):
    async def discover(self) -> Hits:
        for name, action, help_text in ACTIONS:
            yield DiscoveryHit(name, self._runner(action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, action, help_text in ACTIONS:
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), self._runner(action), help=help_text)

    def _runner(self, action: str):
        async def run() -> None:
            await self.app.run_action(action)

        return run

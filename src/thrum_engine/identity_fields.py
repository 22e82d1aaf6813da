"""The fields of an identity file, in a module with no imports: `whoami` (a hot command) reads them."""

# Every field an identity answers to (`whoami --field F`), in the names upstream's hook scripts read;
# a known field that is unset answers empty, so a script's `$(thrum whoami --field tmux_session)` never fails.
FIELDS = (
    "agent_id",
    "agent_pid",
    "agent_status",
    "agent_status_updated_at",
    "branch",
    "display",
    "intent",
    "module",
    "name",
    "preferred_runtime",
    "registered_at",
    "repo",
    "role",
    "runtime",
    "session_id",
    "tmux_session",
    "worktree",
)

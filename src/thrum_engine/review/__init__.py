"""Review and merge (issue 14): the queue of agents' work to review, rounds of comments that reach
the agent as one structured message, and the merge behind a preflight."""

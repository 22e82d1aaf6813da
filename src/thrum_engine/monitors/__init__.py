"""Monitor rules: a source (a command the engine owns, an agent's pane stream, a file) watched for a
regular expression; a match becomes a message from `monitor:<name>` to a target."""

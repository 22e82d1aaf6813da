"""The Textual console (its own issue). Talks to the engine only through its API."""

"""The console's screens and dialogs, one module each; they reach the engine only through
`app.engine` (the same handle whether hosting or attached)."""

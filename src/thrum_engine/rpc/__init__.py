"""JSON-RPC 2.0 over the engine's Unix socket: newline-delimited frames."""

"""Asks, the delivery ledger and held messages (issue 16).

* `ledger`: each (message, recipient) record's steps, stored -> notified (which path) -> seen -> read ->
  acked/replied, and who cannot be reached right now (reported as *not yet delivered*).
* `held`: messages the loop guard (guards.py) holds for the operator, and their release.
* `service`: the engine part that reminds recipients of open asks and tells senders of overdue ones.
* `methods`: the RPC methods over them.
"""

# An ack's note, in characters: one bound wherever an ack comes in (CLI, RPC, MCP). A leaf constant,
# so the MCP server reads it without importing the engine's methods.
MAX_NOTE = 4000

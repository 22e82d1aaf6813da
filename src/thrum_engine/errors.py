"""Typed engine errors. Each carries a stable `kind` that crosses the RPC boundary.

The CLI prints `Error: <message>` and exits 1; the console shows a notification.
"""


class ThrumError(Exception):
    kind = "error"
    code = -32000

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ThrumError):
    kind = "invalid_input"
    code = -32602


class InvalidName(InvalidInput):
    kind = "invalid_name"


class UnknownRecipient(ThrumError):
    kind = "unknown_recipient"


class UnknownAgent(ThrumError):
    kind = "unknown_agent"


class NotFound(ThrumError):
    kind = "not_found"


class Forbidden(ThrumError):
    kind = "forbidden"


class Conflict(ThrumError):
    kind = "conflict"


class RuntimeExited(ThrumError):
    """A runtime typed into a pane that was back at its shell at once: it was not launched, and a
    script that reads the launch's success line must not think the agent is up."""

    kind = "runtime_exited"


class TooLarge(InvalidInput):
    kind = "too_large"


class EngineBusy(ThrumError):
    kind = "engine_busy"


class EngineTimeout(ThrumError):
    kind = "timeout"


class UnknownMethod(ThrumError):
    kind = "unknown_method"
    code = -32601


class SchemaTooNew(Exception):
    """The projection was written by a newer Thrum: refused, left as it is (not a ThrumError: no
    request ever answers with it; the engine does not start)."""

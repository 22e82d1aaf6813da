"""Wire constants shared by server and client (stdlib only)."""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Frames are capped well above the largest body so JSON escaping of a maximal body still fits.
FRAME_OVERHEAD = 256 * 1024


def max_frame(max_body_bytes: int) -> int:
    return max_body_bytes * 6 + FRAME_OVERHEAD

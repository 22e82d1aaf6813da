"""The headless host: one engine per repo behind the socket (`host.py`), and the
stdlib-only controls the CLI uses to start, stop and inspect it (`control.py`)."""

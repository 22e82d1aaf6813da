"""Schedules (issue 16): messages the engine delivers at a time, after a delay or on a cron."""

"""`ThrumSettings`: flags > `THRUM_*` env > `.thrum/config.json` > defaults.

Nested sections map to env with a double underscore, e.g.
`THRUM_MESSAGES__MAX_BODY_BYTES=2097152`.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from thrum_engine.errors import InvalidInput
from thrum_engine.settings_sources import ENV_NESTED, ENV_PREFIX, read_config_file


class MessagesSettings(BaseModel):
    max_body_bytes: int = Field(
        default=1_048_576, ge=1, description="largest message body accepted, as stored"
    )
    default_page_size: int = Field(default=20, ge=1, le=1000)
    max_page_bytes: int = Field(
        default=4_194_304,
        ge=1,
        description="message bodies in one listing page (inbox, sent, feed);"
        " a page always holds at least one message",
    )
    idempotency_window_seconds: float = Field(
        default=86_400,
        gt=0,
        description="a send repeated with the same idempotency key this long after the first stores nothing new",
    )


class PresenceSettings(BaseModel):
    idle_after_seconds: float = Field(default=300, gt=0, description="no activity this long: idle")
    offline_after_seconds: float = Field(default=1800, gt=0, description="no activity this long: offline")


class EngineSettings(BaseModel):
    request_timeout_seconds: float = Field(default=30, gt=0, description="per-request limit on the socket")
    max_wait_seconds: float = Field(default=3600, gt=0, description="longest `thrum wait` accepted")
    max_connections: int = Field(
        default=512, ge=1, description="open connections; at the cap the longest idle one is closed"
    )
    max_connections_per_process: int = Field(
        default=64, ge=1, description="open connections one client process may hold"
    )
    first_frame_timeout_seconds: float = Field(
        default=10, gt=0, description="a new connection must send a request this soon"
    )
    idle_timeout_seconds: float = Field(
        default=120, gt=0, description="a connection with nothing in flight is closed after this"
    )
    log_level: str = "INFO"


class WorktreesSettings(BaseModel):
    base_path: str = Field(
        default="~/.thrum/worktrees", description="worktrees go to <base_path>/<repo>/<name>"
    )


class TmuxSettings(BaseModel):
    socket_name: str | None = Field(default=None, description="tmux -L name; None: the user's default server")
    shell: str | None = Field(default=None, description="the pane's shell command; None: $SHELL")
    silence_seconds: float = Field(
        default=1.0, gt=0, description="quiet this long after output: the pane may be idle"
    )
    typing_seconds: float = Field(
        default=3.0, ge=0, description="a key pressed in an attached client this recently: busy"
    )
    launch_timeout_seconds: float = Field(
        default=60, gt=0, description="how long a runtime may take to show its prompt"
    )
    nudge_backstop_seconds: float = Field(
        default=600, gt=0, description="re-nudge mail left unread this long"
    )
    enter_delay_seconds: float = Field(
        default=0.15,
        ge=0,
        le=5,
        description="the pause between typed text and its Enter (a TUI's paste guard)",
    )


class RuntimesSettings(BaseModel):
    default: str = "claude"


class MonitorsSettings(BaseModel):
    default_debounce_seconds: float = Field(default=60, ge=0)
    max_line_chars: int = Field(default=2000, ge=80, description="longer lines are cut before matching")
    restart_backoff_max_seconds: float = Field(default=60, gt=0)
    give_up_after_crashes: int = Field(
        default=5, ge=1, description="consecutive quick crashes before a monitor stops"
    )
    match_budget_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="one search of a rule's pattern may take this long; past it the rule is stopped",
    )
    supervisors: list[str] = Field(
        default_factory=lambda: ["@coordinator", "@operator"],
        description="who hears about permission dialogs (the console's operator holds the role operator)",
    )
    permission_reminder_seconds: float = Field(
        default=120, gt=0, description="first reminder; then it doubles"
    )


class ConsoleSettings(BaseModel):
    theme: str = Field(
        default="thrum-dark",
        description="a theme from themes/ (or a Textual built-in); the console remembers the last pick",
    )
    bell: bool = Field(default=True, description="ring the terminal bell when a message reaches the operator")
    preview_lines: int = Field(default=200, ge=10, le=5000, description="pane preview scrollback")
    operator_role: str = Field(
        default="operator", description="the operator's role: agents reach you as @<name> or @<this>"
    )


class SyncSettings(BaseModel):
    local_only: bool = Field(
        default=False, description="never fetch or push (same as --local / THRUM_LOCAL=1)"
    )
    remote: str = Field(default="origin", description="the git remote the journal branch syncs with")
    branch: str = Field(default="a-sync", description="the journal branch's name on that remote")
    interval_seconds: float = Field(default=60, gt=0, description="fetch/merge/push this often (remote mode)")
    settle_seconds: float = Field(
        default=2.0, ge=0, description="after local writes, wait this long for quiet"
    )
    max_delay_seconds: float = Field(
        default=30, gt=0, description="a burst that never settles syncs after this"
    )
    push_retries: int = Field(
        default=3, ge=0, le=20, description="a rejected push merges and retries this often"
    )
    allow_public_remote: bool = Field(
        default=False, description="push message history to a remote anyone can read (refused by default)"
    )


class DaemonSettings(BaseModel):
    """Upstream's `daemon` section, kept under its name so scripts that read the file find it."""

    single_agent_mode: bool = Field(
        default=False, description="one agent works alone: the briefing leaves the team and coordination out"
    )


class AsksSettings(BaseModel):
    """Asks (issue 16): messages that need an answer, and the reminders the engine sends for them."""

    remind_after_seconds: float = Field(default=600, gt=0, description="first reminder of an open ask")
    remind_backoff: float = Field(
        default=2.0, ge=1, le=10, description="each later reminder waits this much longer"
    )
    max_reminders: int = Field(default=3, ge=0, le=50, description="reminders per recipient, then they stop")
    poll_seconds: float = Field(
        default=5.0, gt=0, le=600, description="how often the engine looks at open asks"
    )


class GuardsSettings(BaseModel):
    """The loop guard (issue 16): agent-to-agent traffic past these is held for the operator."""

    enabled: bool = Field(default=True, description="hold runaway agent-to-agent traffic")
    pair_per_minute: int = Field(
        default=30, ge=1, description="exchanges (turns) between two agents per minute"
    )
    thread_exchanges: int = Field(
        default=12, ge=1, description="agent messages in one thread without a human one"
    )


class ThrumSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED, extra="ignore")

    local: bool = Field(default=False, description="never fetch or push (sync)")
    messages: MessagesSettings = MessagesSettings()
    presence: PresenceSettings = PresenceSettings()
    engine: EngineSettings = EngineSettings()
    worktrees: WorktreesSettings = WorktreesSettings()
    tmux: TmuxSettings = TmuxSettings()
    runtimes: RuntimesSettings = RuntimesSettings()
    monitors: MonitorsSettings = MonitorsSettings()
    console: ConsoleSettings = ConsoleSettings()
    sync: SyncSettings = SyncSettings()
    daemon: DaemonSettings = DaemonSettings()
    asks: AsksSettings = AsksSettings()
    guards: GuardsSettings = GuardsSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        json_file = settings_cls.model_config.get("json_file")
        if json_file:
            sources.append(JsonConfigSettingsSource(settings_cls, json_file=json_file))
        return tuple(sources)


class InvalidSettings(InvalidInput):
    """A value in the config file or `THRUM_*` env that the settings refuse: the first one, named."""


def load_settings(config_file: str | None, **flags: Any) -> ThrumSettings:
    """Build settings once at the entry point; `flags` are the CLI's explicit overrides. Raises
    InvalidInput: the file is not JSON, or InvalidSettings naming the first bad value."""
    given = {k: v for k, v in flags.items() if v is not None}
    try:
        if config_file and os.path.exists(config_file):
            read_config_file(config_file)  # not JSON: say so, before pydantic-settings reads it

            class _FileSettings(ThrumSettings):
                model_config = SettingsConfigDict(json_file=config_file)

            return _FileSettings(**given)
        return ThrumSettings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        raise InvalidSettings(
            f"invalid setting {where} ({first.get('msg')}): fix {config_file} or {ENV_PREFIX}* env"
        ) from None


def update_config_file(path: str, changes: dict[str, Any]) -> None:
    """Merge `changes` into `.thrum/config.json` (nested dicts merge), atomically."""
    data: dict = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)

    def merge(dst: dict, src: dict) -> None:
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = v

    merge(data, changes)
    from thrum_engine.files import write_private

    write_private(path, json.dumps(data, indent=2, sort_keys=True) + "\n")

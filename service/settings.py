"""Settings: one declarative definition of every setting (type, default, bounds, help text and
environment variable). The command line derives its flags from it (cli/flags.py) and the README's
configuration table is generated from it (`responsed config --markdown`)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from storage.database import normalise_url, sqlite_url

DEFAULT_PORT = 8040  # not 8000: that is vLLM's
ENV_PREFIX = "RESPONSED_"
_DAY = 86400.0


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _env(name: str) -> AliasChoices:
    """A setting read from an environment variable without the RESPONSED_ prefix."""
    return AliasChoices(name)


class Settings(BaseSettings):
    """Every setting of every command. `Settings(...)` is exactly what it is given (tests rely on
    that); `Settings.from_env()` adds the environment and flags on top of the defaults."""

    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", env_prefix=ENV_PREFIX, env_ignore_empty=True,
        populate_by_name=True, validate_default=True,
    )

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535,
                      description="port to listen on (8000 is left to vLLM)")
    data_dir: str = Field("./data", description="where the embedded SQLite database lives")
    database_url: str = Field(
        "", validation_alias=_env("DATABASE_URL"),
        description="`sqlite:///path` or `postgresql://user@host/db`; empty: SQLite in the "
        "data dir")
    engine: Literal["builtin", "openai"] = Field(
        "builtin", description="`builtin` or `openai` (any Chat Completions server)")
    engine_url: str = Field(
        "", description="engine base URL(s), comma-separated, used in turn, e.g. "
        "`http://127.0.0.1:8000/v1`")
    engine_api_key: str = Field("", description="bearer token sent to the engine")
    engine_model_map: str = Field(
        "", description="client model → engine model, e.g. "
        "`gpt-4o=Qwen/Qwen3-8B,*=Qwen/Qwen3-8B`")
    engine_connect_timeout: float = Field(10.0, gt=0,
                                          description="seconds to connect to the engine")
    engine_read_timeout: float = Field(
        300.0, gt=0, description="seconds the engine may stay silent (first token included)")
    engine_reasoning_field: str = Field(
        "reasoning_content", min_length=1,
        description="assistant-message field carrying reasoning sent back to the engine; "
        "`none` drops it")
    builtin_rate: float = Field(
        0.0, ge=0, description="built-in engine tokens/s per stream; 0 = as fast as possible")
    worker_concurrency: int = Field(512, ge=1, description="responses generated at once")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1,
                                description="largest request body accepted (413 above)")
    keepalive_s: float = Field(
        15.0, gt=0, description="seconds of silence before an SSE `: keep-alive` comment")
    store_outage_s: float = Field(
        60.0, gt=0,
        description="how long open streams and pending writes wait out a database outage "
        "(reads and commits retried with backoff, keep-alives sent); past it a stream ends "
        "with an `error` event")
    redis_url: str = Field(
        "", validation_alias=_env("REDIS_URL"),
        description="`redis://host:port/db`; set: distributed mode (`serve` only serves, "
        "`responsed worker` generates)")
    worker_name: str = Field(
        "", description="a worker's name in the job queue; empty: host-pid")
    lease_s: float = Field(
        10.0, gt=0, description="a worker silent this long loses its responses to another")
    janitor_interval_s: float = Field(
        2.0, gt=0, description="how often workers look for stalled responses and lost jobs")
    enqueue_grace_s: float = Field(
        5.0, ge=0, description="a running response nobody claimed for this long is queued again")
    metrics_port: int = Field(
        0, ge=0, le=65535,
        description="workers only: serve `/metrics` and `/healthz` on this port; 0 = off")
    owner: str = Field("default", min_length=1,
                       description="the tenant of every request while keys are not required")
    encryption_key: str = Field(
        "", description="secret that seals `reasoning.encrypted_content`; empty: a key made and "
        "kept in the data dir (set one when several servers share a database)")
    audit_unstored: bool = Field(
        True, description="record tool calls of `store:false` responses in the audit too")
    # -- access control, limits and retention (service.auth, service.limits, service.retention)
    auth: Literal["auto", "required"] = Field(
        "auto", description="`auto`: keys required unless `--host` is a loopback address; "
        "`required`: always")
    auth_cache_s: float = Field(
        5.0, ge=0, description="seconds a key lookup is cached in each process: a revoked key "
        "stops working within this time")
    max_input_items: int = Field(
        10_000, ge=1, description="most items in one request's `input` (400 above)")
    max_output_tokens_ceiling: int = Field(
        131_072, ge=1,
        description="largest `max_output_tokens` a request may ask for (400 above)")
    max_inflight_per_tenant: int = Field(
        256, ge=0,
        description="queued + in-progress responses per tenant (429 above); 0 = no limit")
    max_subscribers_per_response: int = Field(
        1000, ge=0,
        description="SSE readers of one response per API process (429 above); 0 = no limit")
    response_ttl_s: float = Field(
        30 * _DAY, ge=0,
        description="stored responses older than this are purged (30 days); 0 = keep forever")
    audit_ttl_s: float = Field(
        365 * _DAY, ge=0, description="tool-call audit rows older than this are purged "
        "(365 days); 0 = keep forever")
    purge_interval_s: float = Field(
        60.0, ge=0, description="how often serve and worker processes purge expired rows; "
        "0 = never (use `responsed purge`)")
    purge_batch: int = Field(100, ge=1, description="responses deleted per purge transaction")
    # -- idempotent creates (service.idempotency)
    idempotency_ttl_s: float = Field(
        86400.0, gt=0, description="how long an Idempotency-Key of a create is remembered "
        "(24 hours)")
    # -- fault handling: the keyed audit, start-up checks, abuse limits, conversation expiry
    audit_key: str = Field(
        "", description="secret that keys the event chains and the audit ledger (not the "
        "encryption key); empty: a key made and kept in `data_dir`")
    auth_failure_burst: int = Field(
        50, ge=1, description="failed authentications a client address may make at once "
        "before 429s")
    auth_failure_rate: float = Field(
        2.0, ge=0, description="failed authentications per second an address is allowed after "
        "its burst; 0 = no throttle")
    max_headers: int = Field(
        100, ge=1, description="most header lines in one request (431 above)")
    max_header_bytes: int = Field(
        65536, ge=1, description="largest request line plus headers, in bytes (431 above)")
    header_timeout_s: float = Field(
        10.0, gt=0, description="seconds a client may take to send a request's headers "
        "(408 after)")
    body_timeout_s: float = Field(
        30.0, gt=0, description="longest pause inside a request body, in seconds (the "
        "connection is closed)")
    conversation_ttl_s: float = Field(
        30 * _DAY, ge=0, description="conversations idle this long (no item added) are purged "
        "with their items (30 days); 0 = keep forever")
    sqlite_check_s: float = Field(
        10.0, ge=0, description="seconds `PRAGMA quick_check` may take on an SQLite store at "
        "start (a larger file is checked as far as it gets); 0 = skip")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="`debug`, `info`, `warning` or `error`")
    access_log: bool = Field(
        False, description="one log line per HTTP request (`serve`); off by default, as in "
        "gunicorn: at 64 new streams a second it cost the API 5% of its CPU")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # the environment is read by from_env() only

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then the environment, then `overrides` (the command's flags; None: not
        given). A bad value raises SettingsError naming the flag or variable it came from."""
        given = {k: v for k, v in overrides.items() if v is not None}
        by_env = {env_name(name): name for name in cls.model_fields}
        read = _Environment(cls, os.environ if environ is None else environ)()
        # keyed by field name, so that a flag replaces its variable's value
        from_environ = {by_env.get(key, key): value for key, value in read.items()}
        try:
            return cls(**{**from_environ, **given})
        except ValidationError as error:
            raise SettingsError(_explain(error, given)) from None

    def with_(self, **changes: Any) -> Settings:
        return type(self)(**{**self.model_dump(), **changes})

    @property
    def resolved_database_url(self) -> str:
        return normalise_url(self.database_url) if self.database_url else sqlite_url(self.data_dir)

    @property
    def audits_unstored(self) -> bool:  # the name service/runtime.py reads
        return self.audit_unstored

    @property
    def auth_required(self) -> bool:
        """Keys are required unless the server listens on loopback only (and auth=auto)."""
        return self.auth == "required" or not is_loopback(self.host)

    @property
    def engine_urls(self) -> list[str]:
        return [u.strip() for u in self.engine_url.split(",") if u.strip()]


class SettingsError(ValueError):
    """A setting given a value it cannot take; the message is one line for the user."""


def env_name(name: str) -> str:
    """The environment variable of setting `name`."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return ENV_PREFIX + name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def setting_fields() -> dict[str, FieldInfo]:
    return dict(Settings.model_fields)


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ (its
    own .env source overrides _load_env_vars the same way)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)


def _explain(error: ValidationError, given: Mapping[str, Any]) -> str:
    by_key = {env_name(name): name for name in Settings.model_fields}
    reasons = []
    for problem in error.errors(include_url=False):
        key = str(problem["loc"][0]) if problem["loc"] else ""
        name = by_key.get(key, key)
        if name in given and name in Settings.model_fields:
            where = f"{flag_name(name)} {problem['input']!r}"
        elif name in Settings.model_fields:
            where = f"{env_name(name)}={problem['input']!r}"
        else:
            where = key or "settings"
        reasons.append(f"{where}: {problem['msg']}")
    return "; ".join(reasons)

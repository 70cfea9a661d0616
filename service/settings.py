"""Settings: every one from an environment variable (RESPONSED_*), overridable by CLI flags."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from storage.database import normalise_url, sqlite_url

DEFAULT_PORT = 8040  # not 8000: that is vLLM's


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _flag(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "on")


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = field(
        default="127.0.0.1", metadata={"env": "RESPONSED_HOST", "help": "address to listen on"}
    )
    port: int = field(
        default=DEFAULT_PORT, metadata={"env": "RESPONSED_PORT", "help": "port to listen on"}
    )
    data_dir: str = field(
        default="./data",
        metadata={"env": "RESPONSED_DATA_DIR", "help": "where the embedded SQLite database lives"},
    )
    database_url: str = field(
        default="",
        metadata={
            "env": "DATABASE_URL",
            "help": "sqlite:///path or postgresql://…; empty: SQLite in data_dir",
        },
    )
    engine: str = field(
        default="builtin", metadata={"env": "RESPONSED_ENGINE", "help": "builtin | openai"}
    )
    engine_url: str = field(
        default="",
        metadata={
            "env": "RESPONSED_ENGINE_URL",
            "help": "Chat Completions base URL(s), comma-separated, e.g. http://127.0.0.1:8000/v1",
        },
    )
    engine_api_key: str = field(
        default="",
        metadata={"env": "RESPONSED_ENGINE_API_KEY", "help": "bearer token sent to the engine"},
    )
    engine_model_map: str = field(
        default="",
        metadata={
            "env": "RESPONSED_ENGINE_MODEL_MAP",
            "help": "client model -> engine model, e.g. 'gpt-4o=Qwen/Qwen3-8B,*=Qwen/Qwen3-8B'",
        },
    )
    engine_connect_timeout: float = field(
        default=10.0,
        metadata={
            "env": "RESPONSED_ENGINE_CONNECT_TIMEOUT",
            "help": "seconds to connect to the engine",
        },
    )
    engine_read_timeout: float = field(
        default=300.0,
        metadata={
            "env": "RESPONSED_ENGINE_READ_TIMEOUT",
            "help": "seconds the engine may stay silent (first token included)",
        },
    )
    engine_reasoning_field: str = field(
        default="reasoning_content",
        metadata={
            "env": "RESPONSED_ENGINE_REASONING_FIELD",
            "help": "assistant-message field that carries reasoning sent back to the engine; "
            "'none' drops it",
        },
    )
    builtin_rate: float = field(
        default=0.0,
        metadata={
            "env": "RESPONSED_BUILTIN_RATE",
            "help": "built-in engine tokens/s per stream; 0 = unthrottled",
        },
    )
    worker_concurrency: int = field(
        default=512,
        metadata={"env": "RESPONSED_WORKER_CONCURRENCY", "help": "responses generated at once"},
    )
    max_body_bytes: int = field(
        default=16 * 1024 * 1024,
        metadata={
            "env": "RESPONSED_MAX_BODY_BYTES",
            "help": "largest request body accepted (413 above)",
        },
    )
    keepalive_s: float = field(
        default=15.0,
        metadata={
            "env": "RESPONSED_KEEPALIVE_S",
            "help": "seconds of silence before an SSE keep-alive comment",
        },
    )
    redis_url: str = field(
        default="",
        metadata={
            "env": "REDIS_URL",
            "help": "redis://host:port/db; set: distributed mode (serve only "
            "serves, `responsed worker` generates)",
        },
    )
    worker_name: str = field(
        default="",
        metadata={
            "env": "RESPONSED_WORKER_NAME",
            "help": "this worker's name in the job queue; empty: host-pid",
        },
    )
    lease_s: float = field(
        default=10.0,
        metadata={
            "env": "RESPONSED_LEASE_S",
            "help": "a worker silent this long loses its responses to another",
        },
    )
    janitor_interval_s: float = field(
        default=2.0,
        metadata={
            "env": "RESPONSED_JANITOR_INTERVAL_S",
            "help": "how often workers look for stalled responses and lost jobs",
        },
    )
    enqueue_grace_s: float = field(
        default=5.0,
        metadata={
            "env": "RESPONSED_ENQUEUE_GRACE_S",
            "help": "a running response nobody claimed for this long is queued again",
        },
    )
    metrics_port: int = field(
        default=0,
        metadata={
            "env": "RESPONSED_METRICS_PORT",
            "help": "worker only: serve /metrics and /healthz on this port; 0 = off",
        },
    )
    owner: str = field(
        default="default",
        metadata={
            "env": "RESPONSED_OWNER",
            "help": "the tenant of every request while API keys are not required",
        },
    )
    encryption_key: str = field(
        default="",
        metadata={
            "env": "RESPONSED_ENCRYPTION_KEY",
            "help": "secret that seals reasoning.encrypted_content; empty: a key made and kept "
            "in data_dir (set one when several servers share a database)",
        },
    )
    audit_unstored: str = field(
        default="true",
        metadata={
            "env": "RESPONSED_AUDIT_UNSTORED",
            "help": "record tool calls of store:false responses in the audit too (true | false)",
        },
    )
    # -- access control, limits and retention (service.auth, service.limits, service.retention)
    auth: str = field(default="auto", metadata={
        "env": "RESPONSED_AUTH",
        "help": "auto: API keys required unless host is a loopback address; required: always"})
    auth_cache_s: float = field(default=5.0, metadata={
        "env": "RESPONSED_AUTH_CACHE_S",
        "help": "seconds a key lookup is cached in-process: a revoked key stops working within "
                "this time"})
    max_input_items: int = field(default=10_000, metadata={
        "env": "RESPONSED_MAX_INPUT_ITEMS",
        "help": "most items in one request's input (400 above)"})
    max_output_tokens_ceiling: int = field(default=131_072, metadata={
        "env": "RESPONSED_MAX_OUTPUT_TOKENS_CEILING",
        "help": "largest max_output_tokens a request may ask for (400 above)"})
    max_inflight_per_tenant: int = field(default=256, metadata={
        "env": "RESPONSED_MAX_INFLIGHT_PER_TENANT",
        "help": "queued + in-progress responses per tenant (429 above); 0 = no limit"})
    max_subscribers_per_response: int = field(default=1000, metadata={
        "env": "RESPONSED_MAX_SUBSCRIBERS_PER_RESPONSE",
        "help": "SSE readers of one response per API process (429 above); 0 = no limit"})
    response_ttl_s: float = field(default=30 * 86400.0, metadata={
        "env": "RESPONSED_RESPONSE_TTL_S",
        "help": "stored responses older than this are purged (30 days); 0 = keep forever"})
    audit_ttl_s: float = field(default=365 * 86400.0, metadata={
        "env": "RESPONSED_AUDIT_TTL_S",
        "help": "tool-call audit rows older than this are purged (365 days); 0 = keep forever"})
    purge_interval_s: float = field(default=60.0, metadata={
        "env": "RESPONSED_PURGE_INTERVAL_S",
        "help": "how often serve and worker processes purge expired rows; 0 = never (use "
                "`responsed purge`)"})
    purge_batch: int = field(default=100, metadata={
        "env": "RESPONSED_PURGE_BATCH", "help": "responses deleted per purge transaction"})
    # -- fault handling: the keyed audit, start-up checks, abuse limits, conversation expiry
    audit_key: str = field(default="", metadata={
        "env": "RESPONSED_AUDIT_KEY",
        "help": "secret that keys the event chains and the audit ledger (not the encryption "
                "key); empty: a key made and kept in data_dir"})
    auth_failure_burst: int = field(default=50, metadata={
        "env": "RESPONSED_AUTH_FAILURE_BURST",
        "help": "failed authentications a client address may make at once before 429s"})
    auth_failure_rate: float = field(default=2.0, metadata={
        "env": "RESPONSED_AUTH_FAILURE_RATE",
        "help": "failed authentications per second an address is allowed after its burst; "
                "0 = no throttle"})
    max_headers: int = field(default=100, metadata={
        "env": "RESPONSED_MAX_HEADERS", "help": "most header lines in one request (431 above)"})
    max_header_bytes: int = field(default=65536, metadata={
        "env": "RESPONSED_MAX_HEADER_BYTES",
        "help": "largest request line plus headers, in bytes (431 above)"})
    header_timeout_s: float = field(default=10.0, metadata={
        "env": "RESPONSED_HEADER_TIMEOUT_S",
        "help": "seconds a client may take to send a request's headers (408 after)"})
    body_timeout_s: float = field(default=30.0, metadata={
        "env": "RESPONSED_BODY_TIMEOUT_S",
        "help": "longest pause inside a request body, in seconds (the connection is closed)"})
    conversation_ttl_s: float = field(default=30 * 86400.0, metadata={
        "env": "RESPONSED_CONVERSATION_TTL_S",
        "help": "conversations idle this long (no item added) are purged with their items (30 "
                "days); 0 = keep forever"})
    sqlite_check_s: float = field(default=10.0, metadata={
        "env": "RESPONSED_SQLITE_CHECK_S",
        "help": "seconds PRAGMA quick_check may take on an SQLite store at start (a larger "
                "file is checked as far as it gets); 0 = skip"})
    log_level: str = field(
        default="info",
        metadata={"env": "RESPONSED_LOG_LEVEL", "help": "debug | info | warning | error"},
    )
    access_log: str = field(
        default="false",
        metadata={
            "env": "RESPONSED_ACCESS_LOG",
            "help": "log one line per HTTP request (true | false); off by default, as in "
            "gunicorn: at 64 new streams a second it cost the API 5%% of its CPU",
        },
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = type(f.default)(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def resolved_database_url(self) -> str:
        return normalise_url(self.database_url) if self.database_url else sqlite_url(self.data_dir)

    @property
    def audits_unstored(self) -> bool:
        return _flag(self.audit_unstored)

    @property
    def logs_access(self) -> bool:
        return _flag(self.access_log)

    @property
    def auth_required(self) -> bool:
        """Keys are required unless the server listens on loopback only (and auth=auto)."""
        if self.auth not in ("auto", "required"):
            raise ValueError(f"unknown auth mode {self.auth!r}: expected 'auto' or 'required'")
        return self.auth == "required" or not is_loopback(self.host)

    @property
    def engine_urls(self) -> list[str]:
        return [u.strip() for u in self.engine_url.split(",") if u.strip()]

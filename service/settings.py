"""Settings: every one from an environment variable (RESPONSED_*), overridable by CLI flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from storage.database import normalise_url, sqlite_url

DEFAULT_PORT = 8040  # not 8000: that is vLLM's


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
            "help": "tenant recorded on stored responses until access control lands",
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
    log_level: str = field(
        default="info",
        metadata={"env": "RESPONSED_LOG_LEVEL", "help": "debug | info | warning | error"},
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
        return self.audit_unstored.strip().lower() in ("true", "1", "yes", "on")

    @property
    def engine_urls(self) -> list[str]:
        return [u.strip() for u in self.engine_url.split(",") if u.strip()]

"""The composition root: the one module that knows the adapters. It builds the stores, bus,
writer, engine and worker from settings and hands the services their ports; the services,
the API and the command line never import a store, an engine or the worker process."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine as SyncEngine
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.jobs import JobQueue
from domain.keys import Principal
from domain.limits import RequestLimits
from domain.ports import (
    AuditStore,
    Bus,
    ConversationStore,
    Engine,
    EventStore,
    InspectStore,
    KeyStore,
    RetentionStore,
)
from service.audit import AuditService
from service.audit_key import audit_key as load_audit_key
from service.auth import Authenticator
from service.auth_throttle import FailureThrottle
from service.compaction import CompactionService
from service.conversations import ConversationsService
from service.dispatch import Dispatcher, LocalDispatcher, QueueDispatcher, process_name
from service.idempotency import IdempotentCreates
from service.input_tokens import InputTokensService
from service.inspect import InspectService
from service.jobs import fail_orphans
from service.limits import InflightLimiter, SubscriberLimit
from service.models import ModelCatalog
from service.responses import ResponsesService
from service.retention import Retention
from service.runner import Runner
from service.sealing import Sealer
from service.settings import Settings
from service.writer import EventWriter
from storage.audit_store import SqlAuditStore
from storage.conversation_store import SqlConversationStore
from storage.database import create_engines, is_sqlite, normalise_url
from storage.idempotency_store import IdempotencyStore
from storage.inspect_store import SqlInspectStore
from storage.key_store import SqlKeyStore
from storage.memory_bus import MemoryBus
from storage.memory_inspect import MemoryInspectStore
from storage.memory_records import (
    MemoryAuditStore,
    MemoryConversationStore,
    MemoryKeyStore,
    MemoryRetentionStore,
)
from storage.memory_store import MemoryDatabase, MemoryEventStore
from storage.migrate import upgrade
from storage.outage import is_outage as is_outage  # re-exported: api.errors asks the root
from storage.postgres import PostgresEventStore
from storage.redis_bus import RedisBus
from storage.redis_jobs import RedisJobQueue
from storage.retention import SqlRetentionStore
from storage.sql_store import SqlEventStore
from storage.sqlite import SqliteEventStore
from storage.sqlite_check import StoreUnusable, check_sqlite
from worker.engines.builtin import BuiltinEngine
from worker.engines.openai_chat import OpenAIChatEngine, parse_model_map
from worker.service import WorkerService

log = logging.getLogger("responsed")
T = TypeVar("T")


@dataclass
class Stores:
    """The stores of one database, each adapter behind its port (domain.ports)."""

    events: EventStore
    conversations: ConversationStore
    audit: AuditStore
    keys: KeyStore
    retention: RetentionStore
    inspect: InspectStore

    async def close(self) -> None:
        await self.events.close()  # the others share its engines


def memory_stores() -> Stores:
    """Every store in memory, sharing one MemoryDatabase: for fast service tests."""
    db = MemoryDatabase()
    return Stores(
        events=MemoryEventStore(db),
        conversations=MemoryConversationStore(db),
        audit=MemoryAuditStore(db),
        keys=MemoryKeyStore(db),
        retention=MemoryRetentionStore(db),
        inspect=MemoryInspectStore(db),
    )


async def migrate(url: str) -> None:
    """Bring the database at `url` to the current schema (`responsed migrate`)."""
    await upgrade(url)


def sql_event_store(url: str, audit_key: bytes = b"") -> SqlEventStore:
    """The event store of the database at `url`: SQLite's or PostgreSQL's adapter. `audit_key`
    keys the event chains and the audit ledger it writes."""
    writer, reader = create_engines(url)
    if is_sqlite(url):
        assert isinstance(writer, SyncEngine)
        return SqliteEventStore(writer, reader, audit_key)
    assert isinstance(writer, AsyncEngine)
    return PostgresEventStore(writer, reader, audit_key)


async def open_stores(url: str, *, migrate: bool = True, audit_key: bytes = b"") -> Stores:
    """The stores of the database at `url`. SQLite migrates itself (unless `migrate` is False,
    for commands that only read); PostgreSQL is migrated by `responsed migrate`."""
    if migrate and is_sqlite(url):
        await upgrade(url)
    events = sql_event_store(url, audit_key)
    reader = events.reader
    return Stores(
        events=events,
        conversations=SqlConversationStore(events),
        audit=SqlAuditStore(reader),
        keys=SqlKeyStore(events),
        retention=SqlRetentionStore(events),
        inspect=SqlInspectStore(reader, audit_key),
    )


async def with_stores(
    url: str,
    use: Callable[[Stores], Awaitable[T]],
    *,
    migrate: bool = True,
    audit_key: bytes = b"",
) -> T:
    """Run a one-shot command against the stores, closing them after."""
    stores = await open_stores(url, migrate=migrate, audit_key=audit_key)
    try:
        return await use(stores)
    finally:
        await stores.close()


def build_engine(settings: Settings) -> Engine:
    if settings.engine == "builtin":
        return BuiltinEngine(settings.builtin_rate)
    if settings.engine == "openai":
        return OpenAIChatEngine(
            settings.engine_urls,
            api_key=settings.engine_api_key or None,
            model_map=parse_model_map(settings.engine_model_map),
            connect_timeout=settings.engine_connect_timeout,
            read_timeout=settings.engine_read_timeout,
            reasoning_field=""
            if settings.engine_reasoning_field.lower() == "none"
            else settings.engine_reasoning_field,
        )
    raise ValueError(f"unknown engine {settings.engine!r}: expected 'builtin' or 'openai'")


def build_retention(settings: Settings, store: RetentionStore) -> Retention:
    return Retention(
        store, response_ttl_s=settings.response_ttl_s, audit_ttl_s=settings.audit_ttl_s,
        batch=settings.purge_batch, interval_s=settings.purge_interval_s,
        conversation_ttl_s=settings.conversation_ttl_s,
    )


def check_store(settings: Settings) -> None:
    """Refuse an SQLite store that cannot be served before anything starts on it
    (StoreUnusable, a ValueError: one line saying what, where and what to do)."""
    if settings.database_url:
        url = normalise_url(settings.database_url)
        if not is_sqlite(url):
            return
        path = Path(url.split(":///", 1)[1])
    else:
        path = Path(settings.data_dir).expanduser().resolve() / "responsed.db"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreUnusable(f"cannot create the data directory {path.parent} ({error.strerror}); "
                            "set --data-dir to a writable place") from None
    check_sqlite(path, settings.sqlite_check_s)


@dataclass
class Runtime:
    """Everything a process runs. Three shapes:
    - embedded (`serve`, no Redis): API, in-process bus and the worker in one process;
    - api (`serve --redis-url`): serves and fans out; stored responses go to the job queue;
    - worker (`worker`): takes jobs and generates; no HTTP API.
    """

    settings: Settings
    role: str
    store: EventStore
    bus: Bus
    writer: EventWriter
    engine: Engine
    dispatcher: Dispatcher
    responses: ResponsesService
    conversations: ConversationsService
    audit: AuditService
    jobs: JobQueue | None = None
    worker: WorkerService | None = None
    auth: Authenticator | None = None  # None: API keys are not required
    retention: Retention | None = None
    idempotency: IdempotentCreates | None = None
    compaction: CompactionService | None = None  # POST /v1/responses/compact
    models: ModelCatalog | None = None  # GET /v1/models
    input_tokens: InputTokensService | None = None
    auth_throttle: FailureThrottle = field(default_factory=lambda: FailureThrottle(1, 0.0))
    inspect: InspectService | None = None  # the inspector's reads (API processes)

    @classmethod
    async def start(
        cls, settings: Settings, *, worker: bool = False, stores: Stores | None = None
    ) -> Runtime:
        """`stores`: the stores to use instead of the settings' database (memory_stores()).

        Long on purpose: the composition root's wiring, read top to bottom in the order the
        parts depend on one another; splitting it would scatter that order.
        """
        url = settings.resolved_database_url
        distributed = bool(settings.redis_url)
        if worker and not distributed:
            raise ValueError("a worker process needs --redis-url (and a shared database)")
        engine = build_engine(settings)
        if stores is None:
            key = load_audit_key(settings.audit_key, settings.data_dir)
            stores = await open_stores(url, audit_key=key)
            concurrent_writes = not is_sqlite(url)
        else:
            concurrent_writes = False
        store = stores.events
        local_bus = MemoryBus()
        bus: Bus = RedisBus(settings.redis_url) if distributed else local_bus
        writer = EventWriter(
            store,
            bus,
            local_bus=local_bus,
            concurrent_writes=concurrent_writes,
            is_outage=is_outage,
            outage_s=settings.store_outage_s,
        )
        writer.start()
        if distributed and not settings.encryption_key:
            # A key made up per data directory differs between machines: reasoning sealed by
            # one process could not be opened by the next.
            log.warning("distributed mode without --encryption-key: set the same key on every "
                        "process, or sealed reasoning will not round-trip between them")
        if distributed and not settings.audit_key:
            log.warning("distributed mode without --audit-key: set the same key on every "
                        "process, or `responsed audit verify` cannot check their chains")
        sealer = Sealer.from_settings(settings.encryption_key, settings.data_dir)
        runner = Runner(engine, writer, sealer=sealer, audit_unstored=settings.audits_unstored)
        role, dispatcher, jobs, service = await _dispatch(
            settings, worker, store, writer, bus, runner, sealer
        )
        conversations = ConversationsService(stores.conversations, store)
        responses = ResponsesService(
            store,
            bus,
            writer,
            dispatcher,
            keepalive_s=settings.keepalive_s,
            is_outage=is_outage,
            outage_s=settings.store_outage_s,
            local_bus=local_bus,
            conversations=conversations,
            sealer=sealer,
            audit_unstored=settings.audits_unstored,
            **_limits(settings, store, counts_stored=role == "api"),
        )
        audit = AuditService(stores.audit)
        auth = None
        if settings.auth_required and role != "worker":
            auth = Authenticator(stores.keys.get, cache_s=settings.auth_cache_s)
            if not await stores.keys.active_count():
                log.warning("API keys are required and there are none yet: create one with "
                            "`responsed keys create --tenant NAME --name NAME`")
        retention = build_retention(settings, stores.retention)
        retention.start()
        compaction = CompactionService(store, responses)
        idempotency = None
        if isinstance(store, SqlEventStore):  # keys are kept in the database, beside responses
            idempotency = IdempotentCreates(
                responses, IdempotencyStore(store), ttl_s=settings.idempotency_ttl_s,
                compaction=compaction,
            )
        input_tokens = InputTokensService(
            store,
            conversations,
            engine,
            sealer=sealer,
            limits=RequestLimits(settings.max_input_items, settings.max_output_tokens_ceiling),
        )
        return cls(
            settings, role, store, bus, writer, engine, dispatcher, responses, conversations,
            audit, jobs, service, auth, retention, idempotency, compaction,
            ModelCatalog(
                parse_model_map(settings.engine_model_map),
                settings.engine_urls if settings.engine == "openai" else [],
                builtin=settings.engine == "builtin",
                api_key=settings.engine_api_key,
            ),
            input_tokens,
            FailureThrottle(settings.auth_failure_burst, settings.auth_failure_rate),
            inspect=InspectService(stores.inspect, responses),
        )

    @cached_property
    def default_principal(self) -> Principal:
        """Who every request acts for while API keys are not required."""
        return Principal(self.settings.owner)

    async def ready(self) -> dict[str, bool]:
        """Each dependency's state, for /readyz."""
        checks = {"database": await self.store.ping()}
        if isinstance(self.bus, RedisBus):
            checks["redis"] = await self.bus.ping()
        return checks

    async def close(self) -> None:
        if self.retention is not None:
            await self.retention.close()
        if self.worker is not None:
            await self.worker.close()  # hands running responses over to other workers
        await self.dispatcher.close()  # local runs end with response.failed
        await self.writer.close()  # ...which is committed here
        await self.engine.close()
        await self.bus.close()
        if self.jobs is not None and self.worker is not None:
            await self.jobs.close()
        await self.store.close()


async def _dispatch(
    settings: Settings,
    worker: bool,
    store: EventStore,
    writer: EventWriter,
    bus: Bus,
    runner: Runner,
    sealer: Sealer,
) -> tuple[str, Dispatcher, JobQueue | None, WorkerService | None]:
    """The process's role, where its jobs go, its job queue and (worker role) its consumer."""
    local = LocalDispatcher(runner, settings.worker_concurrency)
    if not settings.redis_url:
        await fail_orphans(store, writer)  # no run outlives this single process
        return "embedded", local, None, None
    jobs = RedisJobQueue(settings.redis_url)
    if not worker:
        dispatcher = QueueDispatcher(store, writer, bus, jobs, runner, local, sealer=sealer)
        return "api", dispatcher, jobs, None
    service = WorkerService(
        store,
        writer,
        bus,
        jobs,
        runner,
        name=settings.worker_name or "worker-" + process_name(),
        concurrency=settings.worker_concurrency,
        lease_s=settings.lease_s,
        janitor_interval_s=settings.janitor_interval_s,
        enqueue_grace_s=settings.enqueue_grace_s,
        sealer=sealer,
    )
    service.start()
    return "worker", local, jobs, service


def _limits(settings: Settings, store: EventStore, *, counts_stored: bool) -> dict[str, Any]:
    """The service's limits. API processes of distributed mode count a tenant's running
    responses in the shared database; an embedded server counts its own."""

    return {
        "limits": RequestLimits(settings.max_input_items, settings.max_output_tokens_ceiling),
        "inflight": InflightLimiter(
            settings.max_inflight_per_tenant, store.count_running if counts_stored else None
        ),
        "subscribers": SubscriberLimit(settings.max_subscribers_per_response),
    }

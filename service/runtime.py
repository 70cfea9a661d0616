"""The composition root: builds the store, bus, writer, engine and worker from settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from domain.keys import Principal
from domain.limits import RequestLimits
from domain.ports import Bus, Engine
from service.audit import AuditService
from service.audit_key import audit_key
from service.auth import Authenticator
from service.auth_throttle import FailureThrottle
from service.conversations import ConversationsService
from service.dispatch import Dispatcher, QueueDispatcher, process_name
from service.limits import InflightLimiter, SubscriberLimit
from service.recovery import fail_orphans
from service.responses import ResponsesService
from service.retention import Retention
from service.sealing import Sealer
from service.settings import Settings
from service.writer import EventWriter
from storage.audit_store import SqlAuditStore
from storage.conversation_store import SqlConversationStore
from storage.database import create_engines, is_sqlite
from storage.key_store import KeyStore
from storage.memory_bus import MemoryBus
from storage.migrate import upgrade
from storage.redis_bus import RedisBus
from storage.redis_jobs import RedisJobQueue
from storage.retention import count_running
from storage.sql_store import SqlEventStore
from worker.engines.builtin import BuiltinEngine
from worker.engines.openai_chat import OpenAIChatEngine, parse_model_map
from worker.runner import LocalDispatcher, Runner
from worker.service import WorkerService

log = logging.getLogger("responsed")


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


@dataclass
class Runtime:
    """Everything a process runs. Three shapes:
    - embedded (`serve`, no Redis): API, in-process bus and the worker in one process;
    - api (`serve --redis-url`): serves and fans out; stored responses go to the job queue;
    - worker (`worker`): takes jobs and generates; no HTTP API.
    """

    settings: Settings
    role: str
    store: SqlEventStore
    bus: Bus
    writer: EventWriter
    engine: Engine
    dispatcher: Dispatcher
    responses: ResponsesService
    conversations: ConversationsService
    audit: AuditService
    jobs: RedisJobQueue | None = None
    worker: WorkerService | None = None
    auth: Authenticator | None = None  # None: API keys are not required
    retention: Retention | None = None
    auth_throttle: FailureThrottle = field(default_factory=lambda: FailureThrottle(1, 0.0))

    @classmethod
    async def start(cls, settings: Settings, *, worker: bool = False) -> Runtime:
        url = settings.resolved_database_url
        distributed = bool(settings.redis_url)
        if worker and not distributed:
            raise ValueError("a worker process needs --redis-url (and a shared database)")
        engine = build_engine(settings)
        if is_sqlite(url):
            await upgrade(url)  # SQLite migrates itself; PostgreSQL via `responsed migrate`
        writer_db, reader_db = create_engines(url)
        store = SqlEventStore(
            writer_db, reader_db, audit_key(settings.audit_key, settings.data_dir)
        )
        local_bus = MemoryBus()
        bus: Bus = RedisBus(settings.redis_url) if distributed else local_bus
        writer = EventWriter(
            store, bus, local_bus=local_bus, concurrent_writes=not is_sqlite(url)
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
        local = LocalDispatcher(runner, settings.worker_concurrency)
        jobs = RedisJobQueue(settings.redis_url) if distributed else None
        dispatcher: Dispatcher = local
        service = None
        if not distributed:
            role = "embedded"
            await fail_orphans(store, writer)  # no run outlives this single process
        elif worker:
            role = "worker"
            assert jobs is not None
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
        else:
            role = "api"
            assert jobs is not None
            dispatcher = QueueDispatcher(store, writer, bus, jobs, runner, local, sealer=sealer)
        conversations = ConversationsService(SqlConversationStore(store), store)
        responses = ResponsesService(
            store,
            bus,
            writer,
            dispatcher,
            keepalive_s=settings.keepalive_s,
            local_bus=local_bus,
            conversations=conversations,
            sealer=sealer,
            audit_unstored=settings.audits_unstored,
            **_limits(settings, store, counts_stored=role == "api"),
        )
        audit = AuditService(SqlAuditStore(store.reader))
        auth = None
        if settings.auth_required and role != "worker":
            auth = Authenticator(KeyStore(store).get, cache_s=settings.auth_cache_s)
            if not await KeyStore(store).active_count():
                log.warning("API keys are required and there are none yet: create one with "
                            "`responsed keys create --tenant NAME --name NAME`")
        retention = Retention(
            store, response_ttl_s=settings.response_ttl_s, audit_ttl_s=settings.audit_ttl_s,
            batch=settings.purge_batch, interval_s=settings.purge_interval_s,
            conversation_ttl_s=settings.conversation_ttl_s,
        )
        retention.start()
        return cls(
            settings, role, store, bus, writer, engine, dispatcher, responses, conversations,
            audit, jobs, service, auth, retention,
            FailureThrottle(settings.auth_failure_burst, settings.auth_failure_rate),
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


def _limits(settings: Settings, store: SqlEventStore, *, counts_stored: bool) -> dict[str, Any]:
    """The service's limits. API processes of distributed mode count a tenant's running
    responses in the shared database; an embedded server counts its own."""

    async def running(owner: str) -> int:
        async with store.reader.connect() as conn:
            return await conn.run_sync(count_running, owner)

    return {
        "limits": RequestLimits(settings.max_input_items, settings.max_output_tokens_ceiling),
        "inflight": InflightLimiter(
            settings.max_inflight_per_tenant, running if counts_stored else None
        ),
        "subscribers": SubscriberLimit(settings.max_subscribers_per_response),
    }

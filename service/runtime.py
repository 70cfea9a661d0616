"""The composition root: builds the store, bus, writer, engine and worker from settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from domain.ports import Bus, Engine
from service.audit import AuditService
from service.conversations import ConversationsService
from service.recovery import fail_orphans
from service.responses import ResponsesService
from service.sealing import Sealer
from service.settings import Settings
from service.writer import EventWriter
from storage.audit_store import SqlAuditStore
from storage.conversation_store import SqlConversationStore
from storage.database import create_engines, is_sqlite
from storage.memory_bus import MemoryBus
from storage.migrate import upgrade
from storage.sql_store import SqlEventStore
from worker.engines.builtin import BuiltinEngine
from worker.engines.openai_chat import OpenAIChatEngine, parse_model_map
from worker.runner import LocalDispatcher, Runner

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
    settings: Settings
    store: SqlEventStore
    bus: Bus
    writer: EventWriter
    engine: Engine
    dispatcher: LocalDispatcher
    responses: ResponsesService
    conversations: ConversationsService
    audit: AuditService

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        url = settings.resolved_database_url
        engine = build_engine(settings)
        if is_sqlite(url):
            await upgrade(url)  # embedded mode migrates itself; PostgreSQL via `responsed migrate`
        writer_db, reader_db = create_engines(url)
        store = SqlEventStore(writer_db, reader_db)
        bus = MemoryBus()
        writer = EventWriter(store, bus)
        writer.start()
        await fail_orphans(store, writer)
        sealer = Sealer.from_settings(settings.encryption_key, settings.data_dir)
        runner = Runner(engine, writer, sealer=sealer, audit_unstored=settings.audits_unstored)
        dispatcher = LocalDispatcher(runner, settings.worker_concurrency)
        conversations = ConversationsService(SqlConversationStore(store), store)
        responses = ResponsesService(
            store,
            bus,
            writer,
            dispatcher,
            keepalive_s=settings.keepalive_s,
            conversations=conversations,
            sealer=sealer,
            audit_unstored=settings.audits_unstored,
        )
        audit = AuditService(SqlAuditStore(store.reader))
        return cls(
            settings, store, bus, writer, engine, dispatcher, responses, conversations, audit
        )

    async def close(self) -> None:
        await self.dispatcher.close()  # running responses end with response.failed
        await self.writer.close()  # ...which is committed here
        await self.engine.close()
        await self.bus.close()
        await self.store.close()

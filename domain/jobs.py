"""The job queue's domain: a job (one response to generate), a queue entry, and the queue port.

The use cases around jobs (rebuilding one from the store, carrying one in a queue entry,
dispatching, start-up recovery) are in service.jobs and service.dispatch; the queue adapters
are storage.memory_jobs and storage.redis_jobs; the consumer is worker.service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from domain.builder import ResponseBuilder
from domain.engine import EngineRequest


@dataclass(slots=True)
class Job:
    response_id: str
    builder: ResponseBuilder  # holds the Response and the next sequence number
    engine_request: EngineRequest
    epoch: int = 0  # the epoch this run writes under (see EventStore.claim)
    persist: bool = True  # store:false responses go to the bus only
    cancelled: bool = False  # set before the run's task is cancelled on a client's request
    handover: bool = False  # set when its worker stops: another worker continues the run
    owner: str = ""  # recorded on audit rows; binds sealed reasoning to its owner
    seal_reasoning: bool = False  # include=reasoning.encrypted_content
    # False when the engine request holds opened (decrypted) reasoning: such a job is not
    # handed over through the queue; the worker rebuilds it from the store.
    portable: bool = True
    on_done: Callable[[], None] | None = None  # called once when its run here has ended
    # Compaction (domain.compaction): "trigger" runs engine_request as the summary and ends
    # with the compaction item alone; "auto" then goes on with then_request, the summary
    # message inserted at summary_at.
    compact: str = ""
    then_request: EngineRequest | None = None
    summary_at: int = 0


class Entry(NamedTuple):
    """One delivery of a queued response to a consumer."""

    entry_id: str
    response_id: str
    payload: bytes | None  # the job itself, when the API could carry it


class JobQueue(Protocol):
    """Distributed mode's queue of responses to generate: at-least-once delivery to a group of
    consumers; who may actually write a response is decided by the store's claim (the epoch)."""

    async def enqueue(self, response_id: str, payload: bytes | None = None) -> None:
        """Queue a response; `payload` optionally carries the job itself (service.jobs)."""
        ...

    async def take(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """Up to `count` new entries for this consumer, waiting up to `block_ms` for one."""
        ...

    async def ack(self, *entry_ids: str) -> None: ...

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Entries delivered to consumers silent for `min_idle_ms`, now this consumer's."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...

"""A unit of work for a worker: one response to generate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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

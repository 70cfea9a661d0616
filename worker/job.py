"""A unit of work for a worker: one response to generate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.engine import EngineRequest


@dataclass(slots=True)
class Job:
    response_id: str
    response: dict[str, Any]  # the Response as of the last appended event
    engine_request: EngineRequest
    next_seq: int  # sequence number of the first event the worker appends
    epoch: int = 0
    persist: bool = True  # store:false responses go to the bus only
    owner: str = ""  # recorded on audit rows; binds sealed reasoning to its owner
    seal_reasoning: bool = False  # include=reasoning.encrypted_content

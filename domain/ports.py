"""The ports: what the service layer needs from storage, the bus and engines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from domain.engine import Chunk, EngineRequest


class StoredEvent(NamedTuple):
    seq: int
    type: str
    data: bytes  # the event's JSON exactly as clients receive it


@dataclass(slots=True)
class NewResponse:
    """A responses row as created, with its resolved input items."""

    id: str
    owner: str
    model: str
    status: str
    background: bool
    request: bytes  # the create request, JSON
    created_at: int
    input_items: list[dict[str, Any]]
    conversation_id: str | None = None
    history_count: int = 0  # leading input items that came from the conversation


@dataclass(slots=True)
class Final:
    """What the terminal event settles on the responses row."""

    status: str
    snapshot: bytes
    completed_at: int | None
    # The output items (for item_reference and the conversation), when the caller has them;
    # otherwise they are read from the snapshot.
    output: list[dict[str, Any]] | None = None
    conversation_id: str | None = None  # release it, and append to it when it completed


@dataclass(slots=True)
class ToolCallRecord:
    """One row of the tool-call audit."""

    id: str  # the call item's id
    owner: str
    response_id: str
    conversation_id: str | None
    model: str
    type: str  # function_call | custom_tool_call
    name: str
    call_id: str
    arguments: str  # a custom call's input
    status: str
    stored: bool
    created_at: float


@dataclass(slots=True)
class ToolOutput:
    """A function_call_output (or custom one) sent back: links to its call by call_id."""

    owner: str
    call_id: str
    output: str
    response_id: str  # the response whose input carried it
    at: float


@dataclass(slots=True)
class AppendBatch:
    """Events for one response, appended only if the writer still owns it (epoch, last_seq)."""

    response_id: str
    epoch: int
    expected_last_seq: int
    events: list[StoredEvent]
    final: Final | None = None
    create: NewResponse | None = None  # insert the row in the same transaction
    # Audit rows written in the same transaction as the events.
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    tool_outputs: list[ToolOutput] = field(default_factory=list)
    # Only the audit rows: a store:false response has no row and no log to fence or append to.
    audit_only: bool = False

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else self.expected_last_seq


@dataclass(slots=True)
class ResponseRecord:
    id: str
    owner: str
    status: str
    background: bool
    last_seq: int
    epoch: int
    snapshot: bytes | None
    request: bytes


@dataclass(slots=True)
class Claim:
    """A worker's hold on a response: the epoch it now writes under."""

    epoch: int
    cancel_requested: bool
    last_seq: int = -1


class EventStore(Protocol):
    async def append(self, batches: Sequence[AppendBatch]) -> set[str]:
        """Commit the batches in one transaction; return the ids whose writer was fenced out."""
        ...

    async def read_events(self, response_id: str, after: int, limit: int) -> list[StoredEvent]: ...

    async def get(self, response_id: str) -> ResponseRecord | None: ...

    async def input_items(
        self, response_id: str, *, after: str | None, limit: int, descending: bool
    ) -> tuple[list[bytes], bool]: ...

    async def delete(self, response_id: str) -> bool: ...

    async def find_item(self, owner: str, item_id: str) -> bytes | None:
        """A stored item (conversation, output or input item) of this owner, by id."""
        ...

    async def unfinished(self) -> list[ResponseRecord]: ...

    async def claim(self, response_id: str, worker: str, lease_s: float) -> Claim | None: ...

    async def claim_many(
        self, ids: list[str], worker: str, lease_s: float
    ) -> dict[str, Claim]: ...

    async def heartbeat(self, worker: str, ids: list[str], lease_s: float) -> dict[str, bool]: ...

    async def request_cancel(self, response_id: str) -> bool: ...

    async def release(self, worker: str) -> int: ...

    async def stalled(self, enqueue_grace: float, limit: int = 100) -> list[str]: ...

    async def close(self) -> None: ...


class Batch(NamedTuple):
    """One committed batch of one response's events, as the bus carries it."""

    response_id: str
    events: list[StoredEvent]
    terminal: bool


class Subscription(Protocol):
    lagged: bool

    def reset_lag(self) -> None:
        """The reader caught up from the store; live batches may flow again."""
        ...

    async def get(self, timeout: float) -> Batch | None:
        """The next batch, or None after `timeout` seconds of silence."""
        ...

    async def close(self) -> None: ...


class Bus(Protocol):
    async def subscribe(self, response_id: str, *, bounded: bool = True) -> Subscription:
        """Returns once the subscription is live: nothing published after this is missed.

        `bounded=False` is for responses that are not stored: there is no log to catch up from.
        """
        ...

    async def publish(self, batch: Batch) -> None: ...

    async def publish_many(self, batches: list[Batch]) -> None:
        """Several batches, in order, as cheaply as the bus allows."""
        ...

    async def signal_cancel(self, response_id: str) -> None:
        """Tell whichever process runs the response to stop it."""
        ...

    def on_cancel(self, handler: Callable[[str], None]) -> None: ...

    async def close(self) -> None: ...


class Engine(Protocol):
    def stream(self, request: EngineRequest) -> AsyncIterator[Chunk]:
        """Deltas, then exactly one Finish; raises domain.errors.EngineError on failure."""
        ...

    async def close(self) -> None: ...

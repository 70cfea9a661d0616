"""The ports: what the service layer needs from storage, the bus and engines.

Each store has an in-memory adapter (storage.memory_store, storage.memory_bus,
storage.memory_jobs) beside the real ones, and one contract suite run against all of them
(tests/contract). The job queue's port is with the rest of the job concept, in domain.jobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from domain.engine import Chunk, EngineRequest
from domain.keys import KeyRecord


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

    async def expired_leases(self, limit: int = 100) -> tuple[list[str], float | None]:
        """Running responses whose lease has run out, and when the next live lease runs out
        (None: no live lease)."""
        ...

    async def count_running(self, owner: str) -> int:
        """This owner's responses still queued or in progress (the in-flight limit)."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


Items = list[tuple[str, bytes]]  # (item id, item JSON)


@dataclass(slots=True)
class ConversationRecord:
    id: str
    owner: str
    metadata: bytes
    created_at: int
    active_response_id: str | None


class ConversationStore(Protocol):
    """Conversations and their items. A response's own conversation writes (its history once
    it completes, the lock's release) ride in the event store's append."""

    async def create(self, record: ConversationRecord, items: Items) -> None: ...

    async def get(self, conversation_id: str, owner: str) -> ConversationRecord | None: ...

    async def update_metadata(self, conversation_id: str, owner: str, metadata: bytes) -> bool: ...

    async def delete(self, conversation_id: str, owner: str) -> bool: ...

    async def add_items(self, conversation_id: str, owner: str, items: Items) -> bool:
        """Append at the end; False when this owner has no such conversation."""
        ...

    async def items(
        self, conversation_id: str, *, after: str | None, limit: int, descending: bool
    ) -> tuple[list[bytes], bool]: ...

    async def all_items(self, conversation_id: str) -> list[bytes]: ...

    async def item(self, conversation_id: str, item_id: str) -> bytes | None: ...

    async def delete_item(self, conversation_id: str, item_id: str) -> bool: ...

    async def lock(self, conversation_id: str, owner: str, response_id: str) -> str:
        """'locked' (now held by response_id), 'busy' (another response holds it), 'missing'."""
        ...

    async def unlock(self, conversation_id: str, response_id: str) -> None: ...


@dataclass(slots=True)
class ToolCallFilter:
    owner: str | None = None  # None: every owner (the operator's CLI)
    name: str | None = None
    response_id: str | None = None
    conversation_id: str | None = None
    status: str | None = None
    has_output: bool | None = None
    since: float | None = None  # created_at >= since
    until: float | None = None  # created_at < until


class AuditStore(Protocol):
    """Reading the tool-call audit (written by the event store's append) and checking every
    response's hash chain."""

    async def tool_calls(
        self, where: ToolCallFilter, *, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page in (created_at, id) order after the row `after`; [] if `after` is unknown."""
        ...

    async def count(self, where: ToolCallFilter) -> int: ...

    async def verify(
        self,
        key: bytes,
        progress: Callable[[int, int], None] | None = None,
        page: int = 200,
        anchor: str | None = None,
    ) -> Verdict:
        """Check every response's keyed chain and its end against the audit ledger, and the
        ledger itself; `anchor` is a ledger head ("position:mac") kept from an earlier run."""
        ...


@dataclass(slots=True)
class Verdict:
    checked: int = 0  # responses checked
    broken: list[tuple[str, str]] = field(default_factory=list)  # (response id, what is wrong)
    ledger_head: str = "0:"  # "position:mac" of the ledger's last entry
    anchor_note: str | None = None  # what became of the anchor asked for


class KeyStore(Protocol):
    async def create(self, tenant: str, name: str, *, admin: bool = False) -> tuple[str, KeyRecord]:
        """Returns (the key, its record). The key itself is not kept anywhere."""
        ...

    async def revoke(self, key_id: str) -> bool: ...

    async def get(self, key_id: str) -> KeyRecord | None: ...

    async def list(self, tenant: str | None = None) -> list[KeyRecord]: ...

    async def active_count(self) -> int: ...


class RetentionStore(Protocol):
    """Deleting expired rows in bounded batches; running responses are never touched."""

    async def purge_responses(self, cutoff: float, limit: int) -> int:
        """Up to `limit` finished responses created before `cutoff`, with all they own."""
        ...

    async def purge_audit(self, cutoff: float, limit: int) -> int:
        """Up to `limit` tool-call audit rows created before `cutoff`."""
        ...

    async def purge_conversations(self, cutoff: float, limit: int) -> int:
        """Up to `limit` conversations idle since before `cutoff` (created then, no item added
        since) with their items; one a response is running on stays."""
        ...


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


@dataclass(slots=True)
class ResponseFilter:
    """Which responses the inspector lists or checks."""

    owner: str | None = None  # None: every tenant (an admin key)
    response_id: str | None = None
    status: str | None = None
    model: str | None = None
    conversation_id: str | None = None
    previous_response_id: str | None = None  # the responses that continue this one
    since: float | None = None  # created_at >= since (Unix seconds)
    until: float | None = None  # created_at < until
    has_tool_calls: bool | None = None
    text: str | None = None  # a substring of the input items or the output, any case


@dataclass(slots=True)
class ListedResponse:
    id: str
    owner: str
    status: str
    response: bytes  # the Response JSON: the final snapshot, or the log's first one if running


@dataclass(slots=True)
class LoggedEvent:
    seq: int
    type: str
    data: bytes
    created_at: float


class InspectStore(Protocol):
    """The inspector's reads: responses listed and filtered, log pages, chain checks of a
    chosen set, and recent activity."""

    async def list_responses(
        self, where: ResponseFilter, *, after: str | None, limit: int, descending: bool
    ) -> tuple[list[ListedResponse], bool]:
        """A page in (created_at, id) order after the response `after`; [] if it is unknown."""
        ...

    async def owner_of(self, response_id: str) -> tuple[str, str] | None:
        """(owner, status) of a stored response."""
        ...

    async def events(
        self, response_id: str, *, after: int, limit: int
    ) -> tuple[list[LoggedEvent], bool]: ...

    async def verify(
        self, where: ResponseFilter, *, limit: int
    ) -> tuple[int, list[tuple[str, str]], bool]:
        """(checked, [(response id, what is wrong)], whether more matched), oldest first."""
        ...

    async def activity(self, owner: str | None, since: int, bucket_s: int) -> dict[str, Any]:
        """Responses created per bucket and status since `since`; running ones by worker."""
        ...

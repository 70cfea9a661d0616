"""Rebuilding a job from the store: what a worker in another process (or a successor of a
dead one) needs to run a response it did not create."""

from __future__ import annotations

import orjson

from domain.builder import resume_builder
from domain.ports import EventStore
from domain.request import parse_create_request
from service.compaction import plan
from service.input_items import unseal
from service.sealing import Sealer
from worker.job import Job

_PAGE = 1000


async def read_log(store: EventStore, response_id: str) -> list[dict]:  # type: ignore[type-arg]
    events: list[dict] = []  # type: ignore[type-arg]
    cursor = -1
    while page := await store.read_events(response_id, cursor, _PAGE):
        events.extend(orjson.loads(e.data) for e in page)
        cursor = page[-1].seq
        if len(page) < _PAGE:
            break
    return events


async def load_job(
    store: EventStore, response_id: str, epoch: int, sealer: Sealer | None = None
) -> Job | None:
    """The job for a stored running response, continuing from its last stored event."""
    record = await store.get(response_id)
    events = await read_log(store, response_id)
    if record is None or not events:
        return None
    request = parse_create_request(orjson.loads(record.request))
    items, _ = await store.input_items(response_id, after=None, limit=100_000, descending=False)
    stored_items = [orjson.loads(i) for i in items]
    engine_items = stored_items
    if sealer is not None:  # sealed reasoning was checked when the response was created
        engine_items = unseal(sealer, stored_items, record.owner, len(stored_items))
    builder = resume_builder(events)
    work = plan(request, engine_items)
    engine_request = work.engine_request
    if builder.next_seq > 2:
        # Picked up midway (its worker died): continue the partial reply where possible.
        prefix = builder.continuable_text()
        if prefix is None:
            builder.fail(
                "server_error",
                "The worker running this response stopped and it cannot be continued.",
            )
        else:
            engine_request.assistant_prefix = prefix
    return Job(
        response_id,
        builder,
        engine_request,
        epoch=epoch,
        owner=record.owner,
        seal_reasoning="reasoning.encrypted_content" in (request.include or ()),
        compact=work.compact,
        then_request=work.then_request,
        summary_at=work.summary_at,
    )

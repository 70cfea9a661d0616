"""Jobs and the store: rebuilding a job from a stored log (what a worker in another process, or
a successor of a dead one, needs to run a response it did not create), carrying one in a queue
entry, and ending the runs a restart cut off. The Job itself and the queue port are in
domain.jobs; where jobs go is service.dispatch."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import orjson

from domain.builder import ResponseBuilder, resume_builder
from domain.compaction import COMPACT_CALL
from domain.engine import EngineRequest
from domain.jobs import Job
from domain.ports import Claim, EventStore
from domain.request import parse_create_request
from service.compaction import plan
from service.input_items import unseal
from service.runner import encode, final_of, tool_call_records
from service.sealing import Sealer
from service.writer import EventWriter

log = logging.getLogger("responsed.jobs")

_PAGE = 1000
MAX_PAYLOAD = 256 * 1024  # larger requests (images as data URLs) are read from the store


async def read_log(store: EventStore, response_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
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
    body = orjson.loads(record.request)
    request = parse_create_request(body)
    items, _ = await store.input_items(response_id, after=None, limit=100_000, descending=False)
    stored_items = [orjson.loads(i) for i in items]
    engine_items = stored_items
    if sealer is not None:  # sealed reasoning was checked when the response was created
        engine_items = unseal(sealer, stored_items, record.owner, len(stored_items))
    builder = resume_builder(events)
    work = plan(request, engine_items, compact_call=body.get(COMPACT_CALL) is True)
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


# -- a job as a queue entry carries it -----------------------------------------------------------
# The API hands the worker what it already has in memory, so starting a run costs the worker one
# claim instead of a claim and four reads.


def encode_job(job: Job) -> bytes | None:
    if not job.portable:
        return None
    payload = orjson.dumps(
        {
            "response": job.builder.response,
            "next_seq": job.builder.next_seq,
            "engine_request": dataclasses.asdict(job.engine_request),
            "owner": job.owner,
            "seal_reasoning": job.seal_reasoning,
            "compact": job.compact,
            "then_request": dataclasses.asdict(job.then_request) if job.then_request else None,
            "summary_at": job.summary_at,
        }
    )
    return payload if len(payload) <= MAX_PAYLOAD else None


def decode_job(response_id: str, payload: bytes, claim: Claim) -> Job | None:
    """The carried job, if it still describes the stored log (nobody appended since)."""
    data: dict[str, Any] = orjson.loads(payload)
    if claim.last_seq != data["next_seq"] - 1:
        return None  # it moved on (a takeover, a duplicate entry): rebuild from the store
    builder = ResponseBuilder(data["response"], next_seq=data["next_seq"])
    return Job(
        response_id,
        builder,
        EngineRequest(**data["engine_request"]),
        epoch=claim.epoch,
        owner=data["owner"],
        seal_reasoning=data["seal_reasoning"],
        compact=data.get("compact", ""),
        then_request=EngineRequest(**data["then_request"]) if data.get("then_request") else None,
        summary_at=data.get("summary_at", 0),
    )


# -- start-up recovery ---------------------------------------------------------------------------


async def fail_orphans(store: EventStore, writer: EventWriter) -> int:
    """Embedded mode: no run survives its process, so any response still marked running when
    the server starts was cut off. End it cleanly instead of leaving its readers waiting."""
    count = 0
    for record in await store.unfinished():
        events = await read_log(store, record.id)
        if not events:
            continue
        builder = resume_builder(events)
        builder.fail("server_error", "The server restarted before the response finished.")
        events = builder.drain()
        writer.add(
            record.id,
            encode(events),
            epoch=record.epoch,
            final=final_of(builder.response),
            tool_calls=tool_call_records(events, builder.response, record.owner, True),
        )
        count += 1
    await writer.flushed()
    if count:
        log.warning("ended %d responses left running by a previous process", count)
    return count

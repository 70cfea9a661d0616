"""Start-up recovery for embedded mode: no run survives its process, so any response still
marked running when the server starts was cut off. End it cleanly instead of leaving its
readers waiting forever."""

from __future__ import annotations

import logging

from domain.builder import resume_builder
from domain.ports import EventStore
from service.jobs import read_log
from service.writer import EventWriter
from worker.runner import encode, final_of, tool_call_records

log = logging.getLogger("responsed.recovery")


async def fail_orphans(store: EventStore, writer: EventWriter) -> int:
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

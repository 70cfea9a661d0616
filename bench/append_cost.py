"""The event store's append path in isolation: cost per event of group-commit flushes of
streaming responses, with the same writer the server uses: SQLite (WAL) by default, or a
throwaway PostgreSQL (started from the installed binaries, as the tests do) with --postgres.
No server, no engine.

    uv run python -m bench.append_cost [--responses 64] [--events 16] [--flushes 400] [--postgres]

Each flush appends `events` text-delta events (~150 bytes each, like real ones) to each of
`responses` running responses, fenced, in one transaction. Printed: wall time per event
(median and p90 over the flushes), this process's CPU per event and, with --postgres, the
server's (the postmaster and its backends).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from bench import procstat
from domain.ports import AppendBatch, NewResponse, StoredEvent
from service.runtime import sql_event_store
from storage.database import sqlite_url
from storage.migrate import upgrade


@dataclass
class Cost:
    timings: list[float]  # wall µs per event, one per flush
    client_cpu_us: float  # per event
    server_cpu_us: float | None  # per event; None for SQLite (in-process)


def _event(seq: int, item: str) -> StoredEvent:
    data = {
        "type": "response.output_text.delta",
        "item_id": item,
        "output_index": 0,
        "content_index": 0,
        "delta": " token",
        "logprobs": [],
        "sequence_number": seq,
    }
    return StoredEvent(seq, "response.output_text.delta", orjson.dumps(data))


async def run(responses: int, events: int, flushes: int, postgres: bool) -> Cost:
    if not postgres:
        with tempfile.TemporaryDirectory() as tmp:
            return await _run(sqlite_url(tmp), responses, events, flushes, None)
    from tests.support.postgres import PostgresServer

    server = PostgresServer.start()
    try:
        url = await server.create_database("append_cost")
        postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
        return await _run(
            url, responses, events, flushes, lambda: procstat.cpu_seconds(postmaster)
        )
    finally:
        server.stop()


async def _run(
    url: str,
    responses: int,
    events: int,
    flushes: int,
    server_cpu: Callable[[], float] | None,
) -> Cost:
    await upgrade(url)
    store = sql_event_store(url)
    ids = [f"resp_{i:04d}" for i in range(responses)]
    item = "msg_" + "0" * 48
    creates = [
        AppendBatch(
            rid,
            0,
            -1,
            [_event(0, item)],
            create=NewResponse(rid, "o", "m", "in_progress", False, b"{}", 1, []),
        )
        for rid in ids
    ]
    await store.append(creates)
    last = 0
    timings = []
    client_cpu = server_seconds = 0.0
    for _ in range(flushes):
        batches = [
            AppendBatch(rid, 0, last, [_event(last + 1 + k, item) for k in range(events)])
            for rid in ids
        ]
        server_before = server_cpu() if server_cpu is not None else 0.0
        cpu_before = time.process_time()
        start = time.perf_counter()
        fenced = await store.append(batches)
        timings.append((time.perf_counter() - start) / (responses * events) * 1e6)
        client_cpu += time.process_time() - cpu_before
        if server_cpu is not None:
            server_seconds += server_cpu() - server_before
        assert not fenced
        last += events
    await store.close()
    total = responses * events * flushes
    return Cost(
        timings,
        client_cpu / total * 1e6,
        server_seconds / total * 1e6 if server_cpu is not None else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--responses", type=int, default=64)
    parser.add_argument("--events", type=int, default=16)
    parser.add_argument("--flushes", type=int, default=400)
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL")
    args = parser.parse_args()
    cost = asyncio.run(run(args.responses, args.events, args.flushes, args.postgres))
    server = f", server CPU {cost.server_cpu_us:.2f} µs/event" if cost.server_cpu_us else ""
    print(
        f"{'PostgreSQL' if args.postgres else 'SQLite'}: {args.responses} responses x "
        f"{args.events} events per flush, {args.flushes} flushes: "
        f"median {statistics.median(cost.timings):.2f} µs/event, "
        f"p90 {statistics.quantiles(cost.timings, n=10)[-1]:.2f} µs/event; "
        f"client CPU {cost.client_cpu_us:.2f} µs/event{server}"
    )


if __name__ == "__main__":
    main()

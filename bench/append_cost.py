"""The event store's append path in isolation: µs per event for group-commit flushes of
streaming responses (SQLite, WAL, the same writer the server uses). No server, no engine.

    uv run python -m bench.append_cost [--responses 64] [--events 16] [--flushes 400]

Each flush appends `events` text-delta events (~150 bytes each, like real ones) to each of
`responses` running responses, fenced, in one transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

import orjson

from domain.ports import AppendBatch, NewResponse, StoredEvent
from storage.database import create_engines, sqlite_url
from storage.migrate import upgrade
from storage.sql_store import SqlEventStore


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


async def run(responses: int, events: int, flushes: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = sqlite_url(tmp)
        await upgrade(url)
        store = SqlEventStore(*create_engines(url))
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
        for _ in range(flushes):
            batches = [
                AppendBatch(rid, 0, last, [_event(last + 1 + k, item) for k in range(events)])
                for rid in ids
            ]
            start = time.perf_counter()
            fenced = await store.append(batches)
            timings.append((time.perf_counter() - start) / (responses * events) * 1e6)
            assert not fenced
            last += events
        await store.close()
        return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--responses", type=int, default=64)
    parser.add_argument("--events", type=int, default=16)
    parser.add_argument("--flushes", type=int, default=400)
    args = parser.parse_args()
    timings = asyncio.run(run(args.responses, args.events, args.flushes))
    print(
        f"{args.responses} responses x {args.events} events per flush, {args.flushes} flushes: "
        f"median {statistics.median(timings):.2f} µs/event, "
        f"p90 {statistics.quantiles(timings, n=10)[-1]:.2f} µs/event"
    )


if __name__ == "__main__":
    main()

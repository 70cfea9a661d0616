"""What declaring a handler's parameters as a model costs per request: one app in one process,
two routes answering the same thing. The baseline reads the query string by hand (getall, int,
a range check), the other takes `params: Params[PageParams]` through the app's dependency, as
the real list endpoints do. No server, no database: the ASGI app is called directly.

    uv run python -m bench.request_parsing [--requests 2000] [--rounds 10]

Printed: this process's CPU per request (median over the rounds) for each, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any, cast

from litestar import Litestar, Request, Response, get
from litestar.di import Provide
from litestar.types import HTTPRequestEvent, HTTPScope, Message

from api.params import PageParams, Params, provide_params

QUERY = b"limit=5&order=asc&after=msg_1"


def _one(request: Request[Any, Any, Any], name: str) -> str | None:
    values = request.query_params.getall(name, [])
    if len(values) > 1:
        raise ValueError(name)
    return values[0] if values else None


@get("/by-hand/{item_id:str}", sync_to_thread=False)
def by_hand(item_id: str, request: Request[Any, Any, Any]) -> Response[bytes]:
    limit = int(_one(request, "limit") or 20)
    if not 1 <= limit <= 100:
        raise ValueError("limit")
    if (_one(request, "order") or "desc") not in ("asc", "desc"):
        raise ValueError("order")
    _one(request, "after")
    return Response(b"{}", media_type="application/json")


@get("/typed/{item_id:str}", sync_to_thread=False)
def typed(item_id: str, params: Params[PageParams]) -> Response[bytes]:
    return Response(b"{}", media_type="application/json")


APP = Litestar(
    [by_hand, typed],
    dependencies={"params": Provide(provide_params, sync_to_thread=False)},
    openapi_config=None,
)


async def _call(path: str) -> None:
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": QUERY,
        "headers": [], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "root_path": "", "state": {},
    }
    statuses: list[int] = []

    async def receive() -> HTTPRequestEvent:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    # Litestar's HTTPScope includes the keys Litestar adds itself; a server sends only these.
    await APP(cast(HTTPScope, scope), receive, send)
    assert statuses == [200], statuses


async def _measure(requests: int, rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {"/by-hand/x": [], "/typed/x": []}
    for _ in range(rounds):
        for path, out in samples.items():  # interleaved: both see the same machine
            started = time.process_time()
            for _ in range(requests):
                await _call(path)
            out.append((time.process_time() - started) / requests * 1e6)
    return {path: statistics.median(out) for path, out in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    result = asyncio.run(_measure(args.requests, args.rounds))
    hand, typed_ = result["/by-hand/x"], result["/typed/x"]
    print(f"| by hand (baseline) | {hand:.1f} µs | 1.00x |")
    print(f"| Params[PageParams] | {typed_:.1f} µs | {typed_ / hand:.2f}x |")


if __name__ == "__main__":
    main()

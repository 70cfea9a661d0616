"""Resume of a long stored response: replay all its events with GET ?stream=true.

The response is created with a plain (non-streamed) POST, which answers once generation has
ended; each replay then reads every stored event from the start (no `starting_after`).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from bench.loadgen import prompt
from bench.stream_client import Gaps, StreamConnection


class ResumeError(RuntimeError):
    """The long response could not be created or replayed; the message says why."""


@dataclass(frozen=True)
class ResumeResult:
    events: int  # events in one replay
    first_ms: float  # median, from the request to the first complete event
    last_ms: float  # median, from the request to the terminal event
    reps: int


async def create_long_response(base: str, model: str, deltas: int, limit_s: float) -> str:
    """A stored, completed response of `deltas` text deltas; returns its id.

    The prompt has `deltas` words and `max_output_tokens` is `deltas`: the built-in engine
    echoes the prompt, the fake engine (started with `--tokens deltas`) replies that long.
    """
    body = {"model": model, "input": prompt(deltas), "max_output_tokens": deltas}
    deadline = time.monotonic() + limit_s
    try:
        async with httpx.AsyncClient(base_url=base, timeout=limit_s) as client:
            reply = await client.post("/responses", json=body)
            reply.raise_for_status()
            response = reply.json()
            # The POST answers at the end already; poll in case the row lags its events.
            while response["status"] in ("queued", "in_progress") and (time.monotonic() < deadline):
                await asyncio.sleep(0.2)
                reply = await client.get(f"/responses/{response['id']}")
                reply.raise_for_status()
                response = reply.json()
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise ResumeError(f"creating the long response failed: {exc!r}") from exc
    if response["status"] != "completed":
        raise ResumeError(f"the long response ended {response['status']}, not completed")
    return str(response["id"])


async def replay(base: str, response_id: str, limit_s: float) -> tuple[int, float, float]:
    """(events, seconds to the first event, seconds to the terminal event) of one replay."""
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    request = (
        f"GET {url.path.rstrip('/')}/responses/{response_id}?stream=true HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    connection = await StreamConnection.open(host, port, "responses", Gaps())
    try:
        started = time.perf_counter()
        result = await connection.request(request, limit_s)
    finally:
        connection.close()
    if not result.ok or result.first_event is None:
        raise ResumeError(f"replay failed: {result.error}")
    return result.events, result.first_event, result.finished - started


async def measure_resume(
    base: str, model: str, deltas: int, reps: int, limit_s: float = 120.0
) -> ResumeResult:
    response_id = await create_long_response(base, model, deltas, limit_s)
    firsts, lasts, events = [], [], 0
    for _ in range(reps):
        try:
            events, first, last = await replay(base, response_id, limit_s)
        except OSError as exc:
            raise ResumeError(f"replay failed: {exc!r}") from exc
        if events < deltas:
            raise ResumeError(f"replay read {events} events, expected at least {deltas}")
        firsts.append(first)
        lasts.append(last)
    return ResumeResult(
        events, statistics.median(firsts) * 1000, statistics.median(lasts) * 1000, reps
    )

"""Idempotent creates: `Idempotency-Key` on POST /v1/responses and POST /v1/responses/compact.

The first request with a key (per tenant) records key -> (digest of its body, response id)
before it generates. A repeat with the same key and body answers that response instead of
generating another: streaming, it replays the stream from the start and follows it live;
otherwise it waits for the response to end (background: answers it as it is now). The same key
with a different body is a 400. Keys expire after the TTL (`--idempotency-ttl-s`).

A compact call is a stored response too: a repeat answers the first call's compacted window.
Its digest covers the path, so one key sent to both endpoints is a reused key (a 400), never
the other endpoint's answer.

A key whose create failed before anything was stored is forgotten, so the retry generates; if
the process died in that moment, the key points at a response that never appeared, and a
repeat after ABANDONED_S takes the key over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from domain import ids
from domain.errors import Conflict, InvalidRequest
from domain.idempotency import IdempotencyKeys
from domain.request import parse_create_request
from service.compaction import CompactionService
from service.responses import Created, ResponsesService

T = TypeVar("T")

MAX_KEY_LENGTH = 255
ABANDONED_S = 10.0  # a create stores its row within its commit retries (~2 s), or never
_WAIT_FOR_FIRST_S = 5.0  # a repeat racing the first request waits this long for its row


def _key_in_use() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        param="Idempotency-Key",
        code="idempotency_key_in_use",
    )


def body_digest(body: Any, path: str = "/v1/responses") -> str:
    """The same request however its JSON was spelled: keys sorted, no whitespace. Creates
    keep their digest of the body alone (keys stored before compact calls had keys)."""
    if path != "/v1/responses":
        body = {"path": path, "body": body}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest(
            f"Invalid 'Idempotency-Key' header: expected 1 to {MAX_KEY_LENGTH} printable "
            "characters.",
            param="Idempotency-Key",
            code="invalid_value",
        )
    return key


class IdempotentCreates:
    def __init__(
        self,
        responses: ResponsesService,
        keys: IdempotencyKeys,
        ttl_s: float,
        compaction: CompactionService | None = None,
    ):
        self._responses = responses
        self._keys = keys
        self._ttl_s = ttl_s
        self._compaction = compaction

    async def create(self, body: Any, owner: str, key: str) -> Created:
        check_key(key)
        request = parse_create_request(body)  # a bad body is a 400 before any key is kept
        if request.store is False:
            raise InvalidRequest(
                "'Idempotency-Key' needs a stored response: with 'store' false nothing is kept "
                "to answer a repeat with.",
                param="Idempotency-Key",
                code="invalid_value",
            )
        return await self._once(
            owner,
            key,
            body_digest(body),
            lambda response_id: self._responses.create(body, owner, response_id=response_id),
            lambda response_id: self._repeat(request, response_id, owner),
        )

    async def compact(self, body: Any, owner: str, key: str) -> dict[str, Any]:
        """POST /v1/responses/compact with a key: a repeat answers the first call's window."""
        compaction = self._compaction
        assert compaction is not None
        check_key(key)
        compaction.parse(body)  # a bad body is a 400 before any key is kept
        return await self._once(
            owner,
            key,
            body_digest(body, "/v1/responses/compact"),
            lambda response_id: compaction.compact(body, owner, response_id=response_id),
            lambda response_id: compaction.compacted(response_id, owner),
        )

    async def _once(
        self,
        owner: str,
        key: str,
        digest: str,
        start: Callable[[str], Awaitable[T]],
        repeat: Callable[[str], Awaitable[T]],
    ) -> T:
        """`start` makes the response under the id the key points at; `repeat` answers the
        response the first request with the key made."""
        response_id = ids.new_id(ids.RESPONSE)
        now = time.time()
        record = await self._keys.claim(owner, key, digest, response_id, now, self._ttl_s)
        if not record.inserted:
            if record.digest != digest:
                raise InvalidRequest(
                    "This Idempotency-Key was already used with a different request body.",
                    param="Idempotency-Key",
                    code="idempotency_key_reused",
                )
            if await self._appeared(record.response_id, record.created_at):
                return await repeat(record.response_id)
            if not await self._keys.take_over(
                owner, key, record.response_id, response_id, time.time(), self._ttl_s
            ):
                raise _key_in_use()  # another repeat took it over just now
        try:
            return await start(response_id)
        except BaseException:
            if await self._stored(response_id) is False:
                await self._forget(owner, key, response_id)
            raise

    async def _appeared(self, response_id: str, created_at: float) -> bool:
        """Whether the first request's response exists; waits a little for one being made.
        False: it was abandoned (the key may be taken over). Raises a 409 while it may still
        appear."""
        deadline = time.monotonic() + _WAIT_FOR_FIRST_S
        while True:
            if await self._stored(response_id):
                return True
            if time.time() - created_at > ABANDONED_S:
                return False
            if time.monotonic() > deadline:
                raise _key_in_use()
            await asyncio.sleep(0.05)

    async def _stored(self, response_id: str) -> bool | None:
        try:
            return await self._responses.exists(response_id)
        except Exception:
            return None  # unknown (the store is away): keep the key

    async def _forget(self, owner: str, key: str, response_id: str) -> None:
        # The store is away: a repeat after ABANDONED_S takes the key over.
        with contextlib.suppress(Exception):
            await self._keys.release(owner, key, response_id)

    async def _repeat(self, request: Any, response_id: str, owner: str) -> Created:
        if request.stream:
            events = await self._responses.stream(response_id, owner, -1)
            return Created(request, {}, events)
        snapshot = orjson.loads(await self._responses.retrieve(response_id, owner))
        if request.background:
            return Created(request, snapshot, None)
        events = await self._responses.stream(response_id, owner, -1)
        return Created(request, snapshot, events)

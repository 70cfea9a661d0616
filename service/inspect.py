"""The inspector's use cases: list responses, page and follow a response's log, check hash
chains of a chosen set, and recent activity. A tenant reads only its own; an admin reads all."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from domain.errors import InvalidRequest, NotFound, ResponsedError
from domain.keys import Principal
from domain.ports import InspectStore, ResponseFilter, StoredEvent
from service.responses import ResponsesService

_STATUSES = ("queued", "in_progress", "completed", "failed", "cancelled", "incomplete")


class Forbidden(ResponsedError):
    status = 403
    type = "permission_error"


def reader_scope(who: Principal, tenant: str | None) -> str | None:
    """The owner a read is limited to: the key's tenant, or for an admin the tenant it asks
    for (None: every tenant). Another tenant asked for by a non-admin key is refused."""
    if who.admin:
        return tenant
    if tenant is not None and tenant != who.tenant:
        raise Forbidden(
            "Only an admin key can read another tenant's responses.",
            param="tenant",
            code="tenant_not_allowed",
        )
    return who.tenant


def _check_id(value: str | None, name: str) -> None:
    if value is not None and "\x00" in value:
        raise InvalidRequest(f"Invalid '{name}': no NUL characters.", param=name,
                             code="invalid_value")


def check_filter(where: ResponseFilter) -> None:
    if where.status is not None and where.status not in _STATUSES:
        raise InvalidRequest(
            f"Invalid 'status': expected one of {', '.join(_STATUSES)}.",
            param="status", code="invalid_value",
        )
    for name in ("response_id", "model", "conversation_id", "previous_response_id", "text"):
        _check_id(getattr(where, name), name)


class InspectService:
    def __init__(self, store: InspectStore, responses: ResponsesService) -> None:
        self._store = store
        self._responses = responses

    async def list_responses(
        self, where: ResponseFilter, *, after: str | None, limit: int, order: str,
        with_tenant: bool,
    ) -> dict[str, Any]:
        check_filter(where)
        _check_id(after, "after")
        rows, more = await self._store.list_responses(
            where, after=after, limit=limit, descending=order == "desc"
        )
        data: list[Any] = []
        for row in rows:
            if with_tenant:
                # An admin's list says whose each response is (not part of the Response type).
                data.append({**orjson.loads(row.response), "tenant": row.owner})
            else:
                data.append(orjson.Fragment(row.response))
        return {
            "object": "list",
            "data": data,
            "first_id": rows[0].id if rows else None,
            "last_id": rows[-1].id if rows else None,
            "has_more": more,
        }

    async def _owned(self, response_id: str, owner: str | None) -> tuple[str, str]:
        _check_id(response_id, "response_id")
        found = await self._store.owner_of(response_id)
        if found is None or (owner is not None and found[0] != owner):
            raise NotFound.response(response_id)
        return found

    async def events(
        self, response_id: str, owner: str | None, *, after: int, limit: int
    ) -> dict[str, Any]:
        tenant, _ = await self._owned(response_id, owner)
        events, more = await self._store.events(response_id, after=after, limit=limit)
        return {
            "object": "list",
            "response_id": response_id,
            "tenant": tenant,
            "data": [
                {
                    "sequence_number": e.seq,
                    "type": e.type,
                    "created_at": e.created_at,
                    "event": orjson.Fragment(e.data),
                }
                for e in events
            ],
            "first_sequence_number": events[0].seq if events else None,
            "last_sequence_number": events[-1].seq if events else None,
            "has_more": more,
        }

    async def follow(
        self, response_id: str, owner: str | None, after: int
    ) -> AsyncIterator[list[StoredEvent] | None]:
        """The same gap-free follow as GET /v1/responses/{id}?stream=true."""
        await self._owned(response_id, owner)
        return await self._responses.stream(response_id, owner, after)

    async def verify(self, where: ResponseFilter, *, limit: int) -> dict[str, Any]:
        check_filter(where)
        checked, broken, more = await self._store.verify(where, limit=limit)
        if where.response_id is not None and not checked:
            raise NotFound.response(where.response_id)
        return {
            "object": "audit.verification",
            "checked": checked,
            "ok": not broken,
            "broken": [{"response_id": rid, "reason": reason} for rid, reason in broken],
            "has_more": more,
        }

    async def activity(
        self, owner: str | None, *, window_s: int, bucket_s: int
    ) -> dict[str, Any]:
        now = time.time()
        since = int(now - window_s)
        found = await self._store.activity(owner, since - since % bucket_s, bucket_s)
        return {
            "object": "inspect.activity",
            "now": now,
            "window_s": window_s,
            "bucket_s": bucket_s,
            **found,
        }

"""The inspector store's contract (domain.ports.InspectStore) on every implementation:
memory, SQLite, PostgreSQL. Same rows in, same pages, filters, checks and counts out."""

from __future__ import annotations

import orjson

from domain.ports import (
    AppendBatch,
    Final,
    NewResponse,
    ResponseFilter,
    StoredEvent,
    ToolCallRecord,
)
from service.runtime import Stores


def _log(response_id: str, status: str, last: int) -> list[StoredEvent]:
    created = {"type": "response.created", "sequence_number": 0,
               "response": {"id": response_id, "object": "response", "status": status}}
    events = [StoredEvent(0, "response.created", orjson.dumps(created))]
    events += [StoredEvent(s, "response.output_text.delta",
                           orjson.dumps({"sequence_number": s, "delta": "x"}))
               for s in range(1, last + 1)]
    return events


async def _add(stores: Stores, response_id: str, *, created_at: int, status: str = "completed",
               owner: str = "tenant-a", model: str = "m", text: str = "hello",
               previous: str | None = None, tool_call: bool = False) -> None:
    request: dict[str, object] = {"model": model, "input": text}
    if previous is not None:
        request["previous_response_id"] = previous
    running = status in ("queued", "in_progress")
    create = NewResponse(response_id, owner, model, "in_progress",
                         False, orjson.dumps(request), created_at,
                         [{"id": f"msg_{response_id}", "type": "message", "role": "user",
                           "content": [{"type": "input_text", "text": text}]}])
    snapshot = orjson.dumps({"id": response_id, "object": "response", "status": status,
                             "output": [{"type": "message", "text": f"answer to {text}"}]})
    final = None if running else Final(status, snapshot, created_at + 1, output=[])
    calls = []
    if tool_call:
        calls.append(ToolCallRecord(f"fc_{response_id}", owner, response_id, None, model,
                                    "function_call", "lookup", f"call_{response_id}", "{}",
                                    "completed", True, float(created_at)))
    await stores.events.append([AppendBatch(response_id, 0, -1, _log(response_id, status, 3),
                                            final, create, tool_calls=calls)])


async def _ids(stores: Stores, where: ResponseFilter, **page: object) -> list[str]:
    options = {"after": None, "limit": 100, "descending": True, **page}
    rows, _ = await stores.inspect.list_responses(where, **options)  # type: ignore[arg-type]
    return [row.id for row in rows]


async def test_lists_newest_first_in_cursor_pages_of_one_tenant(stores: Stores):
    for index in range(5):
        await _add(stores, f"resp_{index}", created_at=1000 + index)
    await _add(stores, "resp_other", created_at=2000, owner="tenant-b")
    mine = ResponseFilter(owner="tenant-a")
    assert await _ids(stores, mine) == [f"resp_{i}" for i in (4, 3, 2, 1, 0)]
    rows, more = await stores.inspect.list_responses(mine, after=None, limit=2, descending=True)
    assert [r.id for r in rows] == ["resp_4", "resp_3"] and more
    rows, more = await stores.inspect.list_responses(mine, after="resp_3", limit=2,
                                                     descending=True)
    assert [r.id for r in rows] == ["resp_2", "resp_1"] and more
    assert await _ids(stores, mine, after="resp_1", descending=False) == ["resp_2", "resp_3",
                                                                          "resp_4"]
    # Another tenant's id is no cursor; an admin (owner None) sees every tenant.
    assert await _ids(stores, mine, after="resp_other") == []
    assert (await _ids(stores, ResponseFilter()))[0] == "resp_other"
    assert {r.owner for r in (await stores.inspect.list_responses(
        ResponseFilter(), after=None, limit=10, descending=True))[0]} == {"tenant-a", "tenant-b"}


async def test_filters_choose_the_same_responses(stores: Stores):
    await _add(stores, "resp_a", created_at=1000, model="alpha", text="find the needle")
    await _add(stores, "resp_b", created_at=1010, model="beta", status="failed",
               previous="resp_a", tool_call=True)
    await _add(stores, "resp_c", created_at=1020, status="in_progress")
    a = "tenant-a"
    assert await _ids(stores, ResponseFilter(owner=a, model="alpha")) == ["resp_a"]
    assert await _ids(stores, ResponseFilter(owner=a, status="failed")) == ["resp_b"]
    assert await _ids(stores, ResponseFilter(owner=a, status="in_progress")) == ["resp_c"]
    assert await _ids(stores, ResponseFilter(owner=a, previous_response_id="resp_a")) == [
        "resp_b"]
    assert await _ids(stores, ResponseFilter(owner=a, has_tool_calls=True)) == ["resp_b"]
    assert await _ids(stores, ResponseFilter(owner=a, has_tool_calls=False)) == ["resp_c",
                                                                                "resp_a"]
    assert await _ids(stores, ResponseFilter(owner=a, text="NEEDLE")) == ["resp_a"]
    assert await _ids(stores, ResponseFilter(owner=a, since=1010, until=1020)) == ["resp_b"]
    # A running response is listed as its first event has it, with the status now.
    rows, _ = await stores.inspect.list_responses(
        ResponseFilter(owner=a, response_id="resp_c"), after=None, limit=5, descending=True)
    assert orjson.loads(rows[0].response)["status"] == "in_progress"


async def test_event_pages_owner_and_chain_checks(stores: Stores):
    await _add(stores, "resp_a", created_at=1000)
    assert await stores.inspect.owner_of("resp_a") == ("tenant-a", "completed")
    assert await stores.inspect.owner_of("resp_missing") is None
    events, more = await stores.inspect.events("resp_a", after=0, limit=2)
    assert [e.seq for e in events] == [1, 2] and more
    assert events[0].type == "response.output_text.delta" and events[0].created_at > 0
    events, more = await stores.inspect.events("resp_a", after=2, limit=5)
    assert [e.seq for e in events] == [3] and not more
    checked, broken, more = await stores.inspect.verify(ResponseFilter(owner="tenant-a"),
                                                        limit=10)
    assert (checked, broken, more) == (1, [], False)


async def test_activity_counts_by_bucket_status_and_running(stores: Stores):
    await _add(stores, "resp_a", created_at=1000)
    await _add(stores, "resp_b", created_at=1030, status="failed")
    await _add(stores, "resp_c", created_at=1070, status="in_progress")
    await _add(stores, "resp_d", created_at=1070, owner="tenant-b")
    found = await stores.inspect.activity("tenant-a", since=960, bucket_s=60)
    buckets = {(b["start"], b["status"]): b["count"] for b in found["buckets"]}
    assert buckets == {(960, "completed"): 1, (1020, "failed"): 1, (1020, "in_progress"): 1}
    assert sum(r["responses"] for r in found["running"]) == 1
    everyone = await stores.inspect.activity(None, since=960, bucket_s=60)
    assert sum(b["count"] for b in everyone["buckets"]) == 4

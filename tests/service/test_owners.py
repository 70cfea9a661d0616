"""Every stored object carries its owner, and every lookup is kept to it (service level)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from domain.errors import InvalidRequest, NotFound
from domain.ports import ToolCallFilter
from service.runtime import Runtime, memory_stores
from service.settings import Settings

TOOL = {"type": "function", "name": "probe", "parameters": {"type": "object"}}


@pytest.fixture
async def runtime(tmp_path) -> AsyncIterator[Runtime]:  # type: ignore[no-untyped-def]
    # The service on in-memory stores: the stores' own behaviour is the contract suites' job.
    settings = Settings(data_dir=str(tmp_path), encryption_key="test-secret")
    rt = await Runtime.start(settings, stores=memory_stores())
    yield rt
    await rt.close()


async def _create(rt: Runtime, owner: str, **body) -> dict:  # type: ignore[no-untyped-def]
    created = await rt.responses.create({"model": "m", **body}, owner)
    return orjson.loads(await rt.responses.final_response(created.events))


async def test_responses_and_their_items_are_the_owners_only(runtime: Runtime):
    mine = await _create(runtime, "alice", input="probe", tools=[TOOL])
    with pytest.raises(NotFound):
        await runtime.responses.retrieve(mine["id"], "bob")
    with pytest.raises(NotFound):
        await runtime.responses.input_items(mine["id"], "bob", after=None, limit=10, order="asc")
    with pytest.raises(InvalidRequest) as caught:
        await _create(runtime, "bob", input="x", previous_response_id=mine["id"])
    assert caught.value.code == "previous_response_not_found"
    with pytest.raises(InvalidRequest) as caught:
        await _create(runtime, "bob", input=[{"type": "item_reference",
                                              "id": mine["output"][0]["id"]}])
    assert caught.value.param == "input[0].id"
    assert (await _create(runtime, "alice", input=[
        {"type": "item_reference", "id": mine["output"][0]["id"]},
        {"type": "function_call_output", "call_id": mine["output"][0]["call_id"],
         "output": "ok"}]))["status"] == "completed"
    page = await runtime.audit.tool_calls(ToolCallFilter(owner="alice"), after=None, limit=10)
    assert [(r["owner"], r["output"]) for r in page["data"]] == [("alice", "ok")]
    assert (await runtime.audit.tool_calls(ToolCallFilter(owner="bob"), after=None,
                                           limit=10))["data"] == []


async def test_conversations_are_the_owners_only(runtime: Runtime):
    conversation = await runtime.conversations.create({"items": [
        {"role": "user", "content": "hello"}]}, "alice")
    cid = conversation["id"]
    for call in (
        runtime.conversations.get(cid, "bob"),
        runtime.conversations.update(cid, "bob", {"metadata": {}}),
        runtime.conversations.add_items(cid, "bob", {"items": []}),
        runtime.conversations.list_items(cid, "bob", after=None, limit=10, order="asc"),
        runtime.conversations.delete(cid, "bob"),
    ):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(NotFound):
        await _create(runtime, "bob", input="x", conversation=cid)
    done = await _create(runtime, "alice", input="again", conversation=cid)
    assert done["conversation"] == {"id": cid}
    page = await runtime.conversations.list_items(cid, "alice", after=None, limit=10,
                                                  order="asc")
    assert len(page["data"]) == 3


async def test_a_refused_response_lets_the_conversation_go(runtime: Runtime):
    cid = (await runtime.conversations.create({}, "alice"))["id"]
    with pytest.raises(InvalidRequest):  # an output with no call: refused after the lock
        await _create(runtime, "alice", conversation=cid,
                      input=[{"type": "function_call_output", "call_id": "c", "output": "x"}])
    assert (await _create(runtime, "alice", input="fine", conversation=cid))["status"] == (
        "completed"
    )


async def test_sealed_reasoning_is_bound_to_its_owner(runtime: Runtime):
    mine = await _create(runtime, "alice", input="hi", store=False,
                         reasoning={"effort": "low"}, include=["reasoning.encrypted_content"])
    reasoning = mine["output"][0]
    assert reasoning["encrypted_content"]
    history = [{"role": "user", "content": "hi"}, reasoning]
    assert (await _create(runtime, "alice", input=history, store=False))["status"] == "completed"
    with pytest.raises(InvalidRequest) as caught:
        await _create(runtime, "bob", input=history, store=False)
    assert caught.value.code == "invalid_encrypted_content"

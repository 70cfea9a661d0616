"""Tool loops, multi-turn state and conversations through the official SDK, on a live server."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support.protocol import check_event_order

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
CLOCK = {"type": "function", "name": "get_time", "parameters": {"type": "object"}}
PATCH = {"type": "custom", "name": "apply_patch", "description": "Apply a patch to files"}
HOSTED = [{"type": "web_search"}, {"type": "tool_search"}, {"type": "namespace", "name": "n",
                                                              "tools": []}]


def _dicts(events) -> list[dict]:  # type: ignore[no-untyped-def]
    return [e.model_dump(mode="json", exclude_unset=True) for e in events]


def _audit(http: httpx.Client, **params) -> list[dict]:  # type: ignore[no-untyped-def]
    reply = http.get("/v1/audit/tool_calls", params={"limit": 100, **params})
    assert reply.status_code == 200, reply.text
    return reply.json()["data"]


@pytest.fixture
def http(server) -> httpx.Client:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def test_a_streamed_call_round_trip_with_previous_response_id(client: OpenAI, http):
    with client.responses.stream(
        model="m",
        input='What is the weather? Use get_weather {"city": "Paris"}',
        instructions="You are a weather bot.",
        tools=[WEATHER, *HOSTED],
    ) as stream:
        events = _dicts(stream)
        first = stream.get_final_response()
    check_event_order(events)
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    added = next(e for e in events if e["type"] == "response.output_item.added")
    assert added["item"]["arguments"] == "" and added["item"]["call_id"] == call.call_id
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert "".join(deltas) == call.arguments and len(deltas) > 1
    assert [t.type for t in first.tools] == ["function"]  # hosted tools are not echoed

    second = client.responses.create(
        model="m",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "20C"}],
    )
    # Tools are not inherited: with none this turn the engine echoes the last user message
    # instead of reporting the tool result.
    assert second.output_text.startswith("What is the weather?")
    assert second.instructions is None and second.tools == []
    items = list(client.responses.input_items.list(second.id, order="asc"))
    assert [i.type for i in items] == ["message", "function_call", "function_call_output"]
    assert items[1].call_id == call.call_id

    [row] = _audit(http, response_id=first.id)
    assert (row["name"], row["call_id"], row["arguments"]) == (
        "get_weather", call.call_id, call.arguments
    )
    assert (row["output"], row["output_response_id"], row["has_output"]) == (
        "20C", second.id, True
    )


def test_full_history_tool_loop_with_required_tool_choice_ends_in_text(client: OpenAI):
    history: list = [{"role": "user", "content": "weather please"}]
    first = client.responses.create(model="m", input=history, tools=[WEATHER],
                                    tool_choice="required", store=False)
    [call] = first.output
    history += [call.model_dump(exclude_none=True),
                {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
    second = client.responses.create(model="m", input=history, tools=[WEATHER],
                                     tool_choice="required", store=False)
    assert second.output_text == "get_weather returned: sunny"


def test_several_calls_and_parallel_tool_calls_false(client: OpenAI):
    both = client.responses.create(model="m", input="get_time and get_weather",
                                   tools=[WEATHER, CLOCK])
    assert [i.name for i in both.output] == ["get_time", "get_weather"]
    assert len({i.call_id for i in both.output}) == 2
    one = client.responses.create(model="m", input="get_time and get_weather",
                                  tools=[WEATHER, CLOCK], parallel_tool_calls=False)
    assert [i.name for i in one.output] == ["get_time"]
    assert one.parallel_tool_calls is False


def test_custom_tool_call_streams_its_input(client: OpenAI):
    patch = "*** Begin Patch\n*** Add File: hello.txt\n+hello \"world\"\n*** End Patch"
    with client.responses.create(
        model="m", input="apply_patch " + json.dumps({"input": patch}), tools=[PATCH, WEATHER],
        stream=True,
    ) as stream:
        events = _dicts(stream)
    check_event_order(events)
    [item] = events[-1]["response"]["output"]
    assert item["type"] == "custom_tool_call" and item["input"] == patch
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert "".join(deltas) == patch
    follow = client.responses.create(
        model="m", input=[
            {"type": "custom_tool_call", "call_id": item["call_id"], "name": "apply_patch",
             "input": patch},
            {"type": "custom_tool_call_output", "call_id": item["call_id"], "output": "Done!"},
        ], tools=[PATCH],
    )
    assert follow.output_text == "apply_patch returned: Done!"


def test_an_output_without_its_call_is_a_400_naming_it(client: OpenAI):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input=[
            {"role": "user", "content": "hi"},
            {"type": "function_call_output", "call_id": "call_missing", "output": "x"},
        ])
    error = caught.value.body
    assert "call_missing" in error["message"] and error["param"] == "input[1]"


def test_sealed_reasoning_round_trip_for_store_false(client: OpenAI):
    first = client.responses.create(
        model="m", input="get_weather", tools=[WEATHER], store=False,
        reasoning={"effort": "low"}, include=["reasoning.encrypted_content"],
    )
    reasoning, call = first.output
    assert reasoning.type == "reasoning" and reasoning.encrypted_content
    assert "get_weather" not in reasoning.encrypted_content  # opaque
    history = [
        {"role": "user", "content": "get_weather"},
        reasoning.model_dump(exclude_none=True),
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "rain"},
    ]
    second = client.responses.create(model="m", input=history, tools=[WEATHER], store=False)
    assert second.output_text == "get_weather returned: rain"
    blob = reasoning.encrypted_content
    tampered = blob[:-6] + ("A" if blob[-6] != "A" else "B") + blob[-5:]
    for bad in (tampered, "gAAAAABforeign-blob"):
        history[1]["encrypted_content"] = bad
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(model="m", input=history, tools=[WEATHER], store=False)
        assert caught.value.body["param"] == "input[1].encrypted_content"


def test_item_reference_finds_stored_items(client: OpenAI):
    first = client.responses.create(model="m", input="remember this")
    message = first.output[0]
    second = client.responses.create(
        model="m", input=[{"type": "item_reference", "id": message.id}]
    )
    items = list(client.responses.input_items.list(second.id))
    assert items[0].id == message.id and items[0].type == "message"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input=[{"type": "item_reference", "id": "msg_nope"}])
    assert caught.value.body["param"] == "input[0].id"


def test_chaining_onto_an_unfinished_or_unknown_response_is_a_400(client: OpenAI):
    running = client.responses.create(model="m", input=" ".join(["w"] * 400), background=True)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="next", previous_response_id=running.id)
    assert caught.value.body["param"] == "previous_response_id"
    for unknown in ("resp_nope",):
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(model="m", input="x", previous_response_id=unknown)
        assert caught.value.body["code"] == "previous_response_not_found"
    unstored = client.responses.create(model="m", input="x", store=False)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="m", input="x", previous_response_id=unstored.id)


def test_conversations_endpoints(client: OpenAI):
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "first"}],
        metadata={"topic": "demo"},
    )
    assert conversation.id.startswith("conv_") and conversation.metadata == {"topic": "demo"}
    assert client.conversations.retrieve(conversation.id).id == conversation.id
    updated = client.conversations.update(conversation.id, metadata={"topic": "changed"})
    assert updated.metadata == {"topic": "changed"}
    added = client.conversations.items.create(
        conversation.id,
        items=[{"type": "message", "role": "user", "content": f"n{i}"} for i in range(3)],
    )
    assert len(added.data) == 3
    listed = [i.id for i in client.conversations.items.list(conversation.id, limit=2)]
    assert len(listed) == 4  # auto-paginated, newest first
    asc = [i.id for i in client.conversations.items.list(conversation.id, order="asc")]
    assert asc == listed[::-1]
    item = client.conversations.items.retrieve(asc[1], conversation_id=conversation.id)
    assert item.content[0].text == "n0"
    client.conversations.items.delete(asc[1], conversation_id=conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(asc[1], conversation_id=conversation.id)
    deleted = client.conversations.delete(conversation.id)
    assert deleted.deleted is True and deleted.object == "conversation.deleted"
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)


def test_responses_in_a_conversation_build_its_history(client: OpenAI, http):
    conversation = client.conversations.create()
    first = client.responses.create(model="m", input="get_weather", tools=[WEATHER],
                                    conversation=conversation.id)
    assert first.conversation.id == conversation.id
    [call] = first.output
    second = client.responses.create(
        model="m", tools=[WEATHER], conversation={"id": conversation.id},
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "hail"}],
    )
    assert second.output_text == "get_weather returned: hail"
    types = [i.type for i in client.conversations.items.list(conversation.id, order="asc")]
    assert types == ["message", "function_call", "function_call_output", "message"]
    [row] = _audit(http, conversation_id=conversation.id)
    assert row["output"] == "hail"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="x", conversation=conversation.id,
                                previous_response_id=first.id)
    assert caught.value.body["param"] == "conversation"
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="m", input="x", conversation="conv_nope")


def test_two_responses_racing_on_one_conversation(client: OpenAI):
    conversation = client.conversations.create()
    slow = client.responses.create(model="m", input=" ".join(["w"] * 200), background=True,
                                   conversation=conversation.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="second", conversation=conversation.id)
    assert caught.value.body["code"] == "conversation_locked"
    deadline = time.monotonic() + 20
    while client.responses.retrieve(slow.id).status in ("queued", "in_progress"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    after = client.responses.create(model="m", input="second", conversation=conversation.id)
    assert after.status == "completed"
    texts = [i.content[0].text for i in client.conversations.items.list(conversation.id,
                                                                        order="asc")]
    assert texts == [" ".join(["w"] * 200)] * 2 + ["second"] * 2

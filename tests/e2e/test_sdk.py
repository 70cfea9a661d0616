"""The official openai SDK against a live server: the acceptance client."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support.protocol import check_event_order

PROMPT = "the quick brown fox jumps over the lazy dog"


def _words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def _dicts(events) -> list[dict]:  # type: ignore[no-untyped-def]
    return [e.model_dump(mode="json", exclude_unset=True) for e in events]


def test_create_stream_follows_the_protocol(client: OpenAI):
    with client.responses.create(model="any-model", input=PROMPT, stream=True) as stream:
        events = _dicts(stream)
    check_event_order(events)
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == PROMPT
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == PROMPT and len(deltas) == len(PROMPT.split())


def test_stream_helper_accepts_our_stream(client: OpenAI):
    with client.responses.stream(model="m", input=PROMPT, instructions="echo") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.output_text == PROMPT == "".join(texts)
    assert final.instructions == "echo"
    assert final.usage is not None and final.usage.output_tokens == len(PROMPT.split())


def test_create_without_stream_then_retrieve(client: OpenAI):
    created = client.responses.create(
        model="m",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "hi you"}]}],
        metadata={"purpose": "test"},
        temperature=0.5,
    )
    assert created.status == "completed" and created.output_text == "hi you"
    fetched = client.responses.retrieve(created.id)
    assert fetched.model_dump() == created.model_dump()
    assert fetched.metadata == {"purpose": "test"} and fetched.temperature == 0.5


def test_max_output_tokens_makes_it_incomplete(client: OpenAI):
    response = client.responses.create(model="m", input=_words(40), max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == _words(16)


def test_reasoning_item_when_asked(client: OpenAI):
    with client.responses.stream(model="m", input="hi", reasoning={"effort": "low"}) as stream:
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.usage.output_tokens_details.reasoning_tokens > 0


def test_engine_failure_ends_with_response_failed(client: OpenAI):
    with client.responses.create(model="m", input="fail: on purpose", stream=True) as stream:
        events = _dicts(stream)
    check_event_order(events)
    assert events[-1]["type"] == "response.failed"
    assert "on purpose" in events[-1]["response"]["error"]["message"]


def test_resume_after_dropping_the_stream(client: OpenAI):
    prompt = _words(120)  # ~0.3 s at the test server's rate
    first: list[dict] = []
    with client.responses.create(model="m", input=prompt, stream=True) as stream:
        for event in stream:
            first.append(event.model_dump(mode="json", exclude_unset=True))
            if len(first) == 12:
                break  # the client goes away midway
    response_id = first[0]["response"]["id"]
    cursor = first[-1]["sequence_number"]
    with client.responses.retrieve(response_id, stream=True, starting_after=cursor) as rest:
        second = _dicts(rest)
    events = first + second
    check_event_order(events)
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == prompt
    # The whole log replays identically from the start, too.
    with client.responses.retrieve(response_id, stream=True) as replay:
        assert _dicts(replay) == events


def test_resume_with_the_sdk_stream_helper(client: OpenAI):
    response = client.responses.create(model="m", input=PROMPT, background=False)
    with client.responses.stream(response_id=response.id, starting_after=5) as stream:
        numbers = [e.sequence_number for e in stream]
        final = stream.get_final_response()
    assert numbers[0] == 6 and final.output_text == PROMPT


def test_last_event_id_header_wins(server, client: OpenAI):  # type: ignore[no-untyped-def]
    response = client.responses.create(model="m", input=PROMPT)
    url = f"{server.base_url}/v1/responses/{response.id}?stream=true&starting_after=1"
    with httpx.stream("GET", url, headers={"Last-Event-ID": "9"}, timeout=10) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        body = reply.read().decode()
    ids = [int(line[4:]) for line in body.splitlines() if line.startswith("id: ")]
    assert ids[0] == 10 and body.endswith("data: [DONE]\n\n")


def test_a_disconnected_client_loses_nothing(server, client: OpenAI):  # type: ignore[no-untyped-def]
    prompt = _words(200)
    with httpx.stream(
        "POST",
        f"{server.base_url}/v1/responses",
        timeout=10,
        json={"model": "m", "input": prompt, "stream": True},
    ) as reply:
        lines = reply.iter_lines()
        response_id = None
        for line in lines:
            if line.startswith("data: ") and '"response.created"' in line:
                response_id = line.split('"id":"')[1].split('"')[0]
                break
    assert response_id is not None
    deadline = time.monotonic() + 10
    while (fetched := client.responses.retrieve(response_id)).status == "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert fetched.status == "completed" and fetched.output_text == prompt


def test_retrieve_mid_generation_folds_the_log(client: OpenAI):
    prompt = _words(300)
    seen: dict = {}

    def read_stream() -> None:
        with client.responses.create(model="m", input=prompt, stream=True) as stream:
            for event in stream:
                if event.type == "response.created":
                    seen["id"] = event.response.id
                seen["last"] = event.type

    reader = threading.Thread(target=read_stream)
    reader.start()
    deadline = time.monotonic() + 10
    while "id" not in seen and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    middle = client.responses.retrieve(seen["id"])
    reader.join()
    assert middle.status == "in_progress"
    assert 0 < len(middle.output_text) < len(prompt) and prompt.startswith(middle.output_text)
    assert client.responses.retrieve(seen["id"]).output_text == prompt


def test_input_items_auto_paginate(client: OpenAI):
    items = [{"role": "user", "content": f"message {i}"} for i in range(45)]
    response = client.responses.create(model="m", input=items, instructions="not an item")
    listed = list(client.responses.input_items.list(response.id, limit=10))
    assert [i.content[0].text for i in listed] == [f"message {i}" for i in reversed(range(45))]
    assert all(i.id.startswith("msg_") for i in listed)
    ascending = client.responses.input_items.list(response.id, order="asc", limit=3)
    assert [i.content[0].text for i in ascending.data] == ["message 0", "message 1", "message 2"]
    assert ascending.has_more is True


def test_previous_response_id_carries_the_conversation(client: OpenAI):
    first = client.responses.create(model="m", input="first turn")
    second = client.responses.create(model="m", input="second turn", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    items = list(client.responses.input_items.list(second.id, order="asc"))
    assert [i.role for i in items] == ["user", "assistant", "user"]
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="m", input="x", previous_response_id="resp_nope")
    assert info.value.code == "previous_response_not_found"


def test_delete(client: OpenAI):
    response = client.responses.create(model="m", input="to be deleted")
    deleted = client.responses.delete(response.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response.id)


def test_store_false_keeps_nothing(client: OpenAI):
    with client.responses.stream(model="m", input=PROMPT, store=False) as stream:
        final = stream.get_final_response()
    assert final.output_text == PROMPT and final.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(final.id)
    unstreamed = client.responses.create(model="m", input="x y", store=False)
    assert unstreamed.output_text == "x y"
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(unstreamed.id)


def test_background_and_cancel_in_embedded_mode(client: OpenAI):
    queued = client.responses.create(model="m", input="later", background=True)
    assert queued.status == "queued"
    while (polled := client.responses.retrieve(queued.id)).status in ("queued", "in_progress"):
        time.sleep(0.01)
    assert polled.output_text == "later"
    slow = client.responses.create(model="m", input=_words(3000), background=True)
    with pytest.raises(openai.BadRequestError):
        client.responses.delete(slow.id)
    cancelled = client.responses.cancel(slow.id)
    assert cancelled.status == "cancelled"
    assert client.responses.cancel(slow.id).model_dump() == cancelled.model_dump()
    with client.responses.stream(response_id=slow.id) as replay:
        events = [e.model_dump(mode="json", exclude_unset=True) for e in replay]
    check_event_order(events)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["status"] == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(polled.id)
    client.responses.delete(slow.id)  # ended: now it can go

"""Compaction end to end with the pinned openai SDK, on SQLite and PostgreSQL: the compact
endpoint, the compaction item sent back as input (the engine gets its summary), a changed or
foreign item refused, the compaction_trigger protocol and context_management."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai import OpenAI

from domain.compaction import SUMMARY_PREFIX
from service.sealing import Sealer
from tests.support.protocol import check_event_order

HISTORY = [
    {"role": "user", "content": "plan the alpha release"},
    {"role": "assistant", "content": "the plan has three steps"},
    {"role": "user", "content": "then ship beta"},
]


def _compact(client: OpenAI) -> list[dict]:
    compacted = client.responses.compact(model="responsed-builtin", input=HISTORY)
    assert compacted.object == "response.compaction"
    return [item.model_dump(mode="json", exclude_none=True) for item in compacted.output]


def test_compact_keeps_user_messages_then_one_sealed_item(client: OpenAI):
    compacted = client.responses.compact(
        model="responsed-builtin", input=HISTORY, instructions="be brief"
    )
    assert compacted.id.startswith("resp_") and compacted.created_at > 0
    kinds = [(i.type, getattr(i, "role", None)) for i in compacted.output]
    assert kinds == [("message", "user"), ("message", "user"), ("compaction", None)]
    item = compacted.output[-1]
    assert item.id.startswith("cmp_")
    # Sealed: the summary's words are not readable in the blob.
    assert "alpha" not in item.encrypted_content and item.encrypted_content
    usage = compacted.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_a_compact_call_is_stored_in_the_event_log(client: OpenAI, server):
    compacted = client.responses.compact(model="responsed-builtin", input=HISTORY)
    item = compacted.output[-1]
    # Stored under the compacted response's id: a response whose output is the one compaction
    # item (as the compaction_trigger protocol stores it), its input the request's input.
    stored = client.responses.retrieve(compacted.id)
    assert stored.object == "response" and stored.status == "completed"
    assert [i.type for i in stored.output] == ["compaction"]
    assert stored.output[0].id == item.id
    assert stored.output[0].encrypted_content == item.encrypted_content
    assert stored.usage.output_tokens == compacted.usage.output_tokens
    inputs = client.responses.input_items.list(compacted.id, order="asc").data
    assert [getattr(i, "role", None) for i in inputs] == ["user", "assistant", "user"]
    # Its log replays like any response's: created, the item added/done, completed.
    with httpx.stream("GET", f"{server.base_url}/v1/responses/{compacted.id}?stream=true",
                      headers={"Authorization": "Bearer sk-test"}, timeout=30) as replay:
        assert replay.status_code == 200
        kinds = [json.loads(line[5:])["type"] for line in replay.iter_lines()
                 if line.startswith("data: {")]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.compaction.compacting",
        "response.output_item.done",
        "response.completed",
    ]
    # And it continues like any stored response: previous_response_id gives the engine the
    # summary instead of the compacted turns.
    follow = client.responses.create(
        model="responsed-builtin", previous_response_id=compacted.id, input="context: recap"
    )
    assert "Summary: plan the alpha release | then ship beta" in follow.output_text
    assert "the plan has three steps" not in follow.output_text


def test_compaction_item_round_trip_gives_the_engine_its_summary(client: OpenAI):
    window = _compact(client)
    reply = client.responses.create(
        model="responsed-builtin",
        input=[*window, {"role": "user", "content": "context: what do you know?"}],
    )
    # The built-in engine answers "context:" with what it was given: the user messages the
    # window keeps, then the summary it wrote of the whole history, opened.
    seen = reply.output_text
    assert SUMMARY_PREFIX.split()[0] in seen
    assert "Summary: plan the alpha release | then ship beta" in seen
    assert "the plan has three steps" not in seen  # the assistant turn was compacted away
    # Stored like any input: the item comes back from input_items as it was sent.
    items = client.responses.input_items.list(reply.id, order="asc").data
    assert [i.type for i in items][-2:] == ["compaction", "message"]
    assert items[-2].model_dump()["encrypted_content"] == window[-1]["encrypted_content"]


def test_a_changed_or_foreign_compaction_item_is_refused(client: OpenAI):
    window = _compact(client)
    blob = window[-1]["encrypted_content"]
    changed = blob[:-8] + ("A" if blob[-8] != "A" else "B") + blob[-7:]
    foreign = Sealer("another deployment's key").seal_summary("forged summary", "default")
    for bad in (changed, foreign, "", "not-even-base64!"):
        item = {**window[-1], "encrypted_content": bad}
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(model="responsed-builtin", input=[item])
        error = caught.value.body
        assert error["code"] == "invalid_encrypted_content", error
        assert error["param"] == "input[0].encrypted_content"
    # And through the compact endpoint too (it opens what it summarises).
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.compact(
            model="responsed-builtin", input=[{**window[-1], "encrypted_content": changed}]
        )
    assert caught.value.body["code"] == "invalid_encrypted_content"


def test_compaction_trigger_streams_exactly_one_compaction_item(client: OpenAI):
    with client.responses.create(
        model="responsed-builtin",
        input=[*HISTORY, {"type": "compaction_trigger"}],
        stream=True,
    ) as stream:
        events = [e.model_dump(mode="json", exclude_unset=True) for e in stream]
    check_event_order(events)
    kinds = [e["type"] for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.compaction.compacting",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]["response"]
    [item] = final["output"]
    assert item["type"] == "compaction" and item["encrypted_content"]
    assert final["usage"]["output_tokens"] > 0
    # Stored like any response; and its item opens as the summary of what it compacted.
    assert client.responses.retrieve(final["id"]).output[0].id == item["id"]
    reply = client.responses.create(
        model="responsed-builtin",
        previous_response_id=final["id"],
        input="context: and now?",
    )
    assert "Summary: plan the alpha release | then ship beta" in reply.output_text


def test_compaction_trigger_must_end_the_input(client: OpenAI):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="responsed-builtin", input=[{"type": "compaction_trigger"}, *HISTORY]
        )
    assert caught.value.body["param"] == "input[0]"


def test_context_management_compacts_past_the_threshold(client: OpenAI):
    below = client.responses.create(
        model="responsed-builtin",
        input=HISTORY,
        context_management=[{"type": "compaction", "compact_threshold": 10_000}],
    )
    assert [i.type for i in below.output] == ["message"]
    above = client.responses.create(
        model="responsed-builtin",
        input=HISTORY,
        context_management=[{"type": "compaction", "compact_threshold": 5}],
    )
    assert [i.type for i in above.output] == ["compaction", "message"]
    assert above.output_text == "then ship beta"  # generated from the compacted input
    follow = client.responses.create(
        model="responsed-builtin", previous_response_id=above.id, input="context: recap"
    )
    assert "Summary: plan the alpha release" in follow.output_text
    assert "the plan has three steps" not in follow.output_text
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="responsed-builtin", input="hi", context_management=[{"type": "compaction"}]
        )
    assert caught.value.body["param"] == "context_management[0].compact_threshold"

"""Compaction's pure parts: input items, the engine's view of an opened item, sealing, the
threshold, the plan a create runs, and the built-in engine's summary."""

from __future__ import annotations

import pytest

from domain.compaction import (
    SUMMARY_PREFIX,
    SUMMARY_PROMPT,
    compaction_threshold,
    estimate_tokens,
    trigger_index,
)
from domain.errors import InvalidRequest
from domain.inputs import normalise_input, to_chat_messages
from domain.request import parse_create_request
from service.compaction import check_trigger, plan
from service.input_items import unseal
from service.sealing import Sealer
from worker.engines.builtin import BuiltinEngine

SEALER = Sealer("unit-test key")


def _history() -> list[dict]:
    return normalise_input([
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
        {"role": "user", "content": "second"},
    ])


def test_compaction_items_are_kept_to_their_fields():
    [item, trigger] = normalise_input([
        {"type": "compaction", "encrypted_content": "blob", "created_by": "x", "extra": 1},
        {"type": "compaction_trigger"},
    ])
    assert item["id"].startswith("cmp_") and set(item) == {
        "id", "type", "encrypted_content", "created_by"}
    assert trigger["type"] == "compaction_trigger" and "status" not in trigger
    with pytest.raises(InvalidRequest) as caught:
        normalise_input([{"type": "compaction"}])
    assert caught.value.param == "input[0].encrypted_content"


def test_the_trigger_must_be_last():
    user = {"role": "user", "content": "a"}
    assert trigger_index(normalise_input([user, {"type": "compaction_trigger"}])) == 1
    assert trigger_index(normalise_input("a")) is None
    with pytest.raises(InvalidRequest) as caught:
        check_trigger(normalise_input([{"type": "compaction_trigger"}, user]))
    assert caught.value.param == "input[0]"


def test_an_opened_item_stands_for_what_came_before_but_the_user_messages():
    blob = SEALER.seal_summary("they asked twice", "tenant")
    items = [*_history(), *normalise_input([{"type": "compaction", "encrypted_content": blob},
                                            {"role": "user", "content": "third"}])]
    opened = unseal(SEALER, items, "tenant", 0)
    assert items[-2].get("summary") is None  # the stored item stays as sent
    messages = to_chat_messages("be kind", opened)
    assert messages == [
        {"role": "system", "content": "be kind"},
        {"role": "user", "content": "first"},
        {"role": "user", "content": "second"},
        {"role": "user", "content": SUMMARY_PREFIX + "they asked twice"},
        {"role": "user", "content": "third"},
    ]


@pytest.mark.parametrize(
    "blob",
    [
        SEALER.seal_summary("s", "another tenant"),  # bound to its tenant
        Sealer("another key").seal_summary("s", "tenant"),  # and to the deployment
        SEALER.seal({"summary": [{"type": "summary_text", "text": "s"}]}, "tenant"),  # reasoning
        "rsd1.AAAA",
        "",
    ],
)
def test_a_foreign_or_changed_summary_is_refused(blob: str):
    items = normalise_input([{"type": "compaction", "encrypted_content": blob}])
    with pytest.raises(InvalidRequest) as caught:
        unseal(SEALER, items, "tenant", 0)
    assert caught.value.code == "invalid_encrypted_content"
    assert caught.value.param == "input[0].encrypted_content"


def test_a_summary_blob_is_not_sealed_reasoning():
    with pytest.raises(InvalidRequest):
        SEALER.open(SEALER.seal_summary("s", "tenant"), "tenant", "input[0]")


def test_thresholds():
    assert compaction_threshold(None) is None
    assert compaction_threshold([{"type": "compaction", "compact_threshold": 9}]) == 9
    for bad in ([{"type": "other", "compact_threshold": 9}], [{"type": "compaction"}],
                [{"type": "compaction", "compact_threshold": 0}],
                [{"type": "compaction", "compact_threshold": True}]):
        with pytest.raises(InvalidRequest):
            compaction_threshold(bad)
    assert estimate_tokens([{"role": "user", "content": "x" * 400}]) == 101


def _request(**fields) -> object:
    return parse_create_request({"model": "m", "input": "", **fields})


def test_plan_for_a_trigger_summarises_everything():
    items = [*_history(), *normalise_input([{"type": "compaction_trigger"}])]
    work = plan(_request(instructions="sys"), items)
    assert work.compact == "trigger" and work.engine_request.purpose == "summarise"
    messages = work.engine_request.messages
    assert messages[0] == {"role": "system", "content": "sys"}
    assert messages[-1] == {"role": "user", "content": SUMMARY_PROMPT}
    assert any(m.get("role") == "tool" for m in messages)  # the whole history is summarised


def test_plan_for_a_compact_call_summarises_the_whole_input_or_refuses_an_empty_one():
    # A compact call (and the job a worker rebuilds from its stored request) summarises
    # everything, with no trigger item, even under a context_management threshold.
    request = _request(instructions="sys",
                       context_management=[{"type": "compaction", "compact_threshold": 10_000}])
    work = plan(request, _history(), compact_call=True)
    assert work.compact == "compact" and work.engine_request.purpose == "summarise"
    assert work.then_request is None
    assert work.engine_request.messages[-1] == {"role": "user", "content": SUMMARY_PROMPT}
    with pytest.raises(InvalidRequest) as caught:
        plan(_request(), [], compact_call=True)
    assert (caught.value.param, caught.value.code) == ("input", "missing_required_parameter")


def test_plan_past_the_threshold_summarises_before_the_last_user_message():
    request = _request(context_management=[{"type": "compaction", "compact_threshold": 3}])
    work = plan(request, _history())
    assert work.compact == "auto"
    summarised = work.engine_request.messages
    assert "42" in [m.get("content") for m in summarised]  # the tool output is in the summary
    then = work.then_request
    assert then is not None and then.purpose == "respond"
    assert then.messages == [{"role": "user", "content": "first"},
                             {"role": "user", "content": "second"}]
    assert work.summary_at == 1  # the summary goes between the kept message and the last one
    below = plan(_request(context_management=[{"type": "compaction",
                                               "compact_threshold": 1000}]), _history())
    assert below.compact == "" and below.engine_request.purpose == "respond"


async def test_the_builtin_engine_summarises_the_user_messages_deterministically():
    work = plan(_request(), [*_history(), *normalise_input([{"type": "compaction_trigger"}])])
    chunks = [c async for c in BuiltinEngine().stream(work.engine_request)]
    text = "".join(c.text for c in chunks[:-1])
    assert text == "Summary: first | second"
    assert chunks[-1].reason == "stop" and chunks[-1].output_tokens == 4


def test_a_compaction_job_crosses_the_queue_whole():
    from domain.builder import ResponseBuilder
    from domain.jobs import Job
    from domain.ports import Claim
    from domain.response import new_response
    from service.jobs import decode_job, encode_job

    request = _request(context_management=[{"type": "compaction", "compact_threshold": 3}])
    work = plan(request, _history())
    builder = ResponseBuilder(new_response("resp_1", request, 0))
    builder.start()
    builder.drain()
    job = Job("resp_1", builder, work.engine_request, owner="tenant", compact=work.compact,
              then_request=work.then_request, summary_at=work.summary_at)
    payload = encode_job(job)
    assert payload is not None
    carried = decode_job("resp_1", payload, Claim(3, False, builder.next_seq - 1))
    assert carried is not None
    assert (carried.compact, carried.summary_at) == ("auto", 1)
    assert carried.engine_request.purpose == "summarise"
    assert carried.then_request == work.then_request

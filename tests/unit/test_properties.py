"""Property tests (hypothesis): input normalisation and the event builder hold their rules for
whatever a client or an engine sends."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.builder import ResponseBuilder, resume_builder
from domain.errors import InvalidRequest
from domain.inputs import ROLES, normalise_input, to_chat_messages
from domain.limits import RequestLimits, check_depth, check_request
from domain.request import parse_create_request
from domain.response import fold, new_response, usage
from tests.support.protocol import check_event_order

SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=25,
)
texts = st.text(max_size=30)
roles = st.sampled_from([*ROLES, "tool", "", "User"])
part_types = st.sampled_from(["input_text", "output_text", "text", "refusal", "input_image",
                              "input_file", "image", None])


@st.composite
def parts(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 3)) == 0:
        return draw(json_values)  # not a part at all
    part: dict[str, Any] = {"type": draw(part_types)}
    for field in ("text", "refusal", "image_url", "file_id", "detail"):
        if draw(st.booleans()):
            part[field] = draw(texts | json_values)
    return part


@st.composite
def items(draw: st.DrawFn) -> Any:
    """Mostly plausible items with random damage, sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    kind = draw(st.sampled_from([None, "message", "function_call", "function_call_output",
                                 "custom_tool_call", "reasoning", "item_reference", "unknown"]))
    item: dict[str, Any] = {} if kind is None else {"type": kind}
    if kind in (None, "message"):
        item["role"] = draw(roles)
        item["content"] = draw(texts | st.lists(parts(), max_size=3) | json_values)
    else:
        for field in ("call_id", "name", "arguments", "output", "summary"):
            if field == "output" or draw(st.booleans()):
                item[field] = draw(st.lists(parts(), max_size=3) | texts | json_values)
    if draw(st.integers(0, 3)) == 0:
        item["id"] = draw(texts | st.integers() | st.none())
    return item


bodies = st.fixed_dictionaries(
    {"model": st.just("m") | json_values},
    optional={
        "input": texts | st.lists(items(), max_size=5) | json_values,
        "instructions": texts | json_values,
        "max_output_tokens": st.integers(-5, 2**40) | json_values,
        "temperature": st.floats(-1, 3, allow_nan=False) | json_values,
        "metadata": st.dictionaries(texts, texts, max_size=20) | json_values,
        "tools": st.lists(st.dictionaries(texts, json_values, max_size=3), max_size=2),
        "tool_choice": json_values,
        "text": json_values | st.just({"format": {"type": "json_schema", "schema": {}}}),
        "stream": json_values,
        "background": json_values,
        "previous_response_id": json_values,
    },
) | json_values


@SETTINGS
@given(bodies)
def test_any_body_is_either_a_clean_400_or_a_request_the_engine_can_take(body: Any):
    """Whatever arrives, the create path raises InvalidRequest or produces engine messages."""
    try:
        check_depth(body)
        request = parse_create_request(body)
        check_request(request, RequestLimits(max_input_items=4, max_output_tokens=1000))
        stored = normalise_input(request.input)
    except InvalidRequest as error:
        assert error.status == 400 and error.message
        return
    messages = to_chat_messages(request.instructions, stored)
    json.dumps(messages)  # the engine request is plain JSON
    for message in messages:
        assert message["role"] in ("system", "user", "assistant", "tool")
    response = new_response("resp_x", request, 1)
    json.dumps(response)


@SETTINGS
@given(st.lists(items(), max_size=6) | texts)
def test_normalised_items_have_ids_and_typed_parts_and_normalise_to_themselves(value: Any):
    try:
        stored = normalise_input(value)
    except InvalidRequest:
        return
    for item in stored:
        assert isinstance(item["id"], str) and item["id"]
        if item["type"] == "message":
            assert item["role"] in ROLES
            assert isinstance(item["content"], list)
            assert all(isinstance(p, dict) and isinstance(p.get("type"), str)
                       for p in item["content"])
    # Stored items are valid input: sent back (as clients replay history), they stay the same.
    assert normalise_input(json.loads(json.dumps(stored))) == stored
    # And whatever was accepted converts for the engine.
    for message in to_chat_messages("be brief", stored):
        assert message["role"] in ("system", "user", "assistant", "tool")


# -- the builder ------------------------------------------------------------------------------

deltas = st.text(min_size=0, max_size=8)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("text"), deltas),
        st.tuples(st.just("refusal"), deltas),
        st.tuples(st.just("reasoning"), deltas),
        st.tuples(st.just("tool"), st.integers(0, 3), st.none() | st.text(max_size=5),
                  st.none() | st.text(max_size=5), deltas),
    ),
    max_size=25,
)
endings = st.sampled_from(["complete", "incomplete", "fail", "cancel"])


def _run(operations: list[tuple], ending: str, *, background: bool = False) -> list[dict]:  # type: ignore[type-arg]
    request = parse_create_request({"model": "m", "background": background})
    builder = ResponseBuilder(new_response("resp_x", request, 1))
    builder.start()
    if background:
        builder.begin()
    for op in operations:
        if op[0] == "tool":
            builder.tool_call(op[1], op[2], op[3], op[4])
        else:
            getattr(builder, op[0])(op[1])
    _end(builder, ending)
    return json.loads(json.dumps(builder.drain()))


def _end(builder: ResponseBuilder, ending: str) -> None:
    if ending == "complete":
        builder.complete(usage(1, 2))
    elif ending == "incomplete":
        builder.incomplete("max_output_tokens")
    elif ending == "fail":
        builder.fail("server_error", "boom")
    else:
        builder.cancel()


@SETTINGS
@given(operations, endings, st.booleans())
def test_any_engine_stream_gives_a_log_clients_accept(ops: list[tuple], ending: str,  # type: ignore[type-arg]
                                                      background: bool):
    events = _run(ops, ending, background=background)
    check_event_order(events)
    final = events[-1]["response"]
    assert fold(events) == final  # the stored Response is the fold of the log
    # Each part's deltas add up to its done text, and to the final item's text.
    streamed: dict[tuple[int, int], str] = {}
    for event in events:
        if event["type"] in ("response.output_text.delta", "response.refusal.delta",
                             "response.reasoning_text.delta"):
            key = (event["output_index"], event["content_index"])
            streamed[key] = streamed.get(key, "") + event["delta"]
        elif event["type"] in ("response.output_text.done", "response.reasoning_text.done"):
            assert event["text"] == streamed.get((event["output_index"], event["content_index"]),
                                                 "")
        elif event["type"] == "response.refusal.done":
            assert event["refusal"] == streamed.get(
                (event["output_index"], event["content_index"]), "")
    ids = [item["id"] for item in final["output"]]
    assert len(ids) == len(set(ids))
    expected = {"complete": "completed", "incomplete": "incomplete", "fail": "failed",
                "cancel": "cancelled"}[ending]
    assert final["status"] == expected


@SETTINGS
@given(operations, st.integers(min_value=2), endings)
def test_a_log_cut_anywhere_resumes_into_a_valid_log(ops: list[tuple], cut: int, ending: str):  # type: ignore[type-arg]
    """A run taken over midway (its worker died) ends with a log that still follows the rules."""
    request = parse_create_request({"model": "m"})
    builder = ResponseBuilder(new_response("resp_x", request, 1))
    builder.start()
    events: list[dict] = builder.drain()  # type: ignore[type-arg]
    for op in ops:
        if op[0] == "tool":
            builder.tool_call(op[1], op[2], op[3], op[4])
        else:
            getattr(builder, op[0])(op[1])
        events += builder.drain()
    kept = json.loads(json.dumps(events[: max(2, cut % (len(events) + 1))]))
    resumed = resume_builder(kept)
    _end(resumed, ending)
    log = kept + json.loads(json.dumps(resumed.drain()))
    check_event_order(log)
    assert fold(log) == log[-1]["response"]

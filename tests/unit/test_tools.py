"""Tools in and out: validation, the Chat Completions mapping, the builder's call items."""

import json

import pytest

from domain.builder import ResponseBuilder, resume_builder
from domain.custom_input import InputDecoder, final_input
from domain.engine import build_engine_request
from domain.errors import InvalidRequest
from domain.request import parse_create_request
from domain.response import fold, new_response
from tests.support.protocol import check_event_order

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}
PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
}
HOSTED = [
    {"type": "web_search", "external_web_access": False},
    {"type": "tool_search"},
    {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "inner"}]},
]


def _engine(**body):
    request = parse_create_request({"model": "m", "input": "hi", **body})
    return build_engine_request(request, [])


def _bad(param: str, **body) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_create_request({"model": "m", "input": "hi", **body})
    assert caught.value.param == param, caught.value.message
    return caught.value


def test_function_and_custom_tools_reach_the_engine_and_hosted_ones_do_not():
    engine = _engine(tools=[WEATHER, PATCH, *HOSTED])
    assert [t["function"]["name"] for t in engine.tools] == ["get_weather", "apply_patch"]
    weather, patch = (t["function"] for t in engine.tools)
    assert weather["parameters"] == WEATHER["parameters"] and weather["strict"] is True
    assert patch["parameters"]["properties"] == {
        "input": {"type": "string", "description": "The tool's input, verbatim."}
    }
    assert "start: /.+/" in patch["description"]  # the grammar is told to the model
    assert engine.tool_choice is None  # the engine's own default (auto) applies
    assert _engine(tools=HOSTED).tools is None


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", "none"),
        ("required", "required"),
        (
            {"type": "function", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
        (
            {"type": "custom", "name": "apply_patch"},
            {"type": "function", "function": {"name": "apply_patch"}},
        ),
    ],
)
def test_tool_choice_mapping(choice, expected):
    assert _engine(tools=[WEATHER, PATCH], tool_choice=choice).tool_choice == expected


def test_allowed_tools_offers_only_the_allowed_ones():
    engine = _engine(
        tools=[WEATHER, PATCH],
        tool_choice={
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "custom", "name": "apply_patch"}],
        },
    )
    assert [t["function"]["name"] for t in engine.tools] == ["apply_patch"]
    assert engine.tool_choice == "required"


def test_parallel_tool_calls_false_is_passed_on():
    assert _engine(tools=[WEATHER], parallel_tool_calls=False).extra == {
        "parallel_tool_calls": False
    }
    assert _engine(tools=[WEATHER]).extra == {}


def test_bad_tools_are_400_with_the_param():
    _bad("tools[0].name", tools=[{"type": "function"}])
    _bad("tools[1].name", tools=[WEATHER, {**WEATHER}])
    _bad("tools[0].parameters", tools=[{**WEATHER, "parameters": "x"}])
    _bad("tools[0].type", tools=[{"name": "x"}])
    _bad("tool_choice", tools=[WEATHER], tool_choice="sometimes")
    _bad("tool_choice.name", tools=[WEATHER], tool_choice={"type": "function", "name": "nope"})
    _bad(
        "tool_choice.tools[0].name",
        tools=[WEATHER],
        tool_choice={"type": "allowed_tools", "tools": [{"type": "function", "name": "x"}]},
    )
    # Hosted tools and hosted tool choices are accepted.
    parse_create_request({"model": "m", "tools": HOSTED, "tool_choice": {"type": "web_search"}})


def _builder(**request) -> ResponseBuilder:
    body = {"model": "m", **request}
    builder = ResponseBuilder(new_response("resp_x", parse_create_request(body), 1))
    builder.start()
    return builder


def _events(builder):
    return json.loads(json.dumps(builder.drain()))


def test_several_calls_in_one_turn_are_several_items_with_the_engine_ids():
    b = _builder(tools=[WEATHER])
    b.tool_call(0, "call_a", "get_weather", '{"ci')
    b.tool_call(0, None, None, 'ty": "Paris"}')
    b.tool_call(1, "call_b", "get_weather", '{"city": "Rome"}')
    b.complete()
    events = _events(b)
    check_event_order(events)
    types = [e["type"] for e in events[2:]]
    assert types == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[2]["item"]["arguments"] == "" and events[2]["item"]["call_id"] == "call_a"
    output = events[-1]["response"]["output"]
    assert [(i["type"], i["call_id"], i["arguments"]) for i in output] == [
        ("function_call", "call_a", '{"city": "Paris"}'),
        ("function_call", "call_b", '{"city": "Rome"}'),
    ]
    assert fold(events[:-1])["output"][0]["arguments"] == '{"city": "Paris"}'


def test_parallel_tool_calls_false_keeps_only_the_first_call():
    b = _builder(tools=[WEATHER], parallel_tool_calls=False)
    b.tool_call(0, "call_a", "get_weather", "{}")
    b.tool_call(1, "call_b", "get_weather", "{")
    b.tool_call(1, None, None, "}")
    b.complete()
    events = _events(b)
    check_event_order(events)
    assert [i["call_id"] for i in events[-1]["response"]["output"]] == ["call_a"]
    assert not any("call_b" in json.dumps(e) for e in events)


def test_a_custom_tool_call_streams_its_input_as_text():
    patch = '*** Begin Patch\n*** Add File: a.txt\n+hé "quoted" \\ tab\t\U0001f600\n*** End Patch'
    arguments = json.dumps({"input": patch})  # \u escapes for the emoji
    b = _builder(tools=[WEATHER, PATCH])
    for start in range(0, len(arguments), 5):  # fragments that split escapes
        first = start == 0
        b.tool_call(
            0,
            "call_p" if first else None,
            "apply_patch" if first else None,
            arguments[start : start + 5],
        )
    b.complete()
    events = _events(b)
    check_event_order(events)
    added = events[2]
    assert added["item"] == {
        "id": added["item"]["id"],
        "type": "custom_tool_call",
        "status": "in_progress",
        "call_id": "call_p",
        "name": "apply_patch",
        "input": "",
    }
    assert added["item"]["id"].startswith("ctc_")
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert len(deltas) > 5 and "".join(deltas) == patch
    [done] = [e for e in events if e["type"] == "response.custom_tool_call_input.done"]
    assert done["input"] == patch
    assert events[-1]["response"]["output"][0]["input"] == patch
    assert fold(events[:-1])["output"][0]["input"] == patch


def test_custom_input_decoder_falls_back_when_arguments_are_not_the_expected_shape():
    decoder = InputDecoder()
    assert decoder.feed('{"other": 1, "input": "x"}') == ""
    assert not decoder.streaming
    assert final_input('{"other": 1, "input": "x"}', "") == "x"
    assert final_input("raw text from a model", "") == "raw text from a model"


def test_a_resumed_open_custom_call_closes_with_what_was_streamed():
    b = _builder(tools=[PATCH])
    b.tool_call(0, "call_p", "apply_patch", '{"input": "half')
    events = _events(b)
    resumed = resume_builder(events)
    resumed.fail("server_error", "restart")
    tail = _events(resumed)
    check_event_order(events + tail)
    assert tail[-1]["response"]["output"][0]["input"] == "half"


def test_reasoning_items_are_sealed_when_asked():
    response = new_response("resp_x", parse_create_request({"model": "m"}), 1)
    b = ResponseBuilder(response, seal=lambda item: "sealed:" + item["content"][0]["text"])
    b.start()
    b.reasoning("think")
    b.text("answer")
    b.complete()
    events = _events(b)
    reasoning = events[-1]["response"]["output"][0]
    assert reasoning["encrypted_content"] == "sealed:think"
    added = next(e for e in events if e["type"] == "response.output_item.added")
    assert "encrypted_content" not in added["item"]

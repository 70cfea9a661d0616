"""The built-in engine calls tools deterministically."""

import json

from domain.engine import EngineRequest, Finish, TextDelta, ToolCallDelta
from worker.engines.builtin import BuiltinEngine
from worker.engines.builtin_tools import example

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city", "unit"],
        },
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {}}}


async def _run(messages, **kwargs):
    request = EngineRequest(model="m", messages=messages, tools=[WEATHER, CLOCK], **kwargs)
    return [chunk async for chunk in BuiltinEngine().stream(request)]


def _calls(chunks):
    calls: dict[int, dict] = {}
    for chunk in chunks:
        if isinstance(chunk, ToolCallDelta):
            call = calls.setdefault(
                chunk.index, {"id": chunk.call_id, "name": chunk.name, "arguments": ""}
            )
            call["arguments"] += chunk.arguments
    return [calls[i] for i in sorted(calls)]


async def test_naming_tools_calls_them_in_order_with_schema_arguments():
    chunks = await _run([{"role": "user", "content": "get_time then get_weather please"}])
    calls = _calls(chunks)
    assert [c["name"] for c in calls] == ["get_time", "get_weather"]
    assert json.loads(calls[1]["arguments"]) == {"city": "example", "unit": "celsius"}
    assert all(c["id"].startswith("call_") for c in calls) and calls[0]["id"] != calls[1]["id"]
    assert isinstance(chunks[-1], Finish) and chunks[-1].reason == "tool_calls"
    fragments = [c for c in chunks if isinstance(c, ToolCallDelta) and c.index == 1]
    assert len(fragments) > 1  # arguments stream in pieces


async def test_json_after_the_name_is_the_arguments():
    chunks = await _run([{"role": "user", "content": 'use get_weather with {"city": "Oslo"}'}])
    assert json.loads(_calls(chunks)[0]["arguments"]) == {"city": "Oslo"}


async def test_tool_choice_decides_and_none_means_text():
    named = await _run(
        [{"role": "user", "content": "hello"}],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert [c["name"] for c in _calls(named)] == ["get_time"]
    required = await _run([{"role": "user", "content": "hello"}], tool_choice="required")
    assert [c["name"] for c in _calls(required)] == ["get_weather"]
    plain = await _run([{"role": "user", "content": "get_time"}], tool_choice="none")
    assert _calls(plain) == [] and plain[-1].reason == "stop"


async def test_after_tool_results_it_answers_in_text_even_when_required():
    messages = [
        {"role": "user", "content": "get_weather"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "20C and sunny"},
    ]
    chunks = await _run(messages, tool_choice="required")
    assert _calls(chunks) == []
    text = "".join(c.text for c in chunks if isinstance(c, TextDelta))
    assert text == "get_weather returned: 20C and sunny"
    assert chunks[-1].reason == "stop"


def test_example_values_fit_the_schema():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"]},
            "b": {"type": "array", "items": {"type": "string"}},
            "c": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "d": {"type": "object", "properties": {"e": {"type": "boolean"}}},
            "f": {"const": "fixed"},
        },
    }
    assert example(schema) == {"a": "example", "b": [], "c": 1.0, "d": {"e": True}, "f": "fixed"}

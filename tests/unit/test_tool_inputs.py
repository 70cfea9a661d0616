"""Items a client sends back: validation and their Chat Completions form."""

import json

import pytest

from domain.errors import InvalidRequest
from domain.inputs import check_tool_outputs, normalise_input, to_chat_messages


def _call(call_id, name="get_weather", arguments='{"city":"Paris"}', **extra):
    return {
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        **extra,
    }


def _output(call_id, output="20C", kind="function_call_output"):
    return {"type": kind, "call_id": call_id, "output": output}


def test_consecutive_calls_merge_into_one_assistant_message_with_outputs_after_it():
    items = normalise_input(
        [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": "two cities"}],
            },
            _call("call_a", id="fc_a"),
            _call("call_b", arguments='{"city":"Rome"}'),
            _output("call_b", "25C"),
            _output("call_a", [{"type": "input_text", "text": "20C"}]),
            {"role": "assistant", "content": "Paris 20C, Rome 25C", "id": "msg_a"},
        ]
    )
    assert items[2]["id"] == "fc_a" and items[3]["id"].startswith("fc_")
    assert items[4]["id"].startswith("fco_")
    messages = to_chat_messages(None, items)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assistant = messages[1]
    assert assistant["content"] is None and assistant["reasoning_content"] == "two cities"
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_a", "call_b"]
    assert assistant["tool_calls"][1]["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Rome"}',
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "call_b", "content": "25C"}
    assert messages[3] == {"role": "tool", "tool_call_id": "call_a", "content": "20C"}


def test_an_output_sent_late_goes_right_after_its_call():
    items = normalise_input(
        [_call("call_a"), {"role": "user", "content": "and?"}, _output("call_a")]
    )
    assert [m["role"] for m in to_chat_messages(None, items)] == ["assistant", "tool", "user"]


def test_text_then_calls_is_one_assistant_turn():
    items = normalise_input([{"role": "assistant", "content": "Let me look."}, _call("call_a")])
    [message] = to_chat_messages(None, items)
    assert message["content"] == "Let me look." and len(message["tool_calls"]) == 1


def test_custom_tool_calls_go_back_as_function_calls_with_one_input_parameter():
    items = normalise_input(
        [
            {
                "type": "custom_tool_call",
                "call_id": "call_p",
                "name": "apply_patch",
                "input": "*** Begin Patch\n*** End Patch",
            },
            _output("call_p", "Done", kind="custom_tool_call_output"),
        ]
    )
    assert items[0]["id"].startswith("ctc_") and items[1]["id"].startswith("ctco_")
    call, result = to_chat_messages(None, items)
    arguments = call["tool_calls"][0]["function"]["arguments"]
    assert json.loads(arguments) == {"input": "*** Begin Patch\n*** End Patch"}
    assert result == {"role": "tool", "tool_call_id": "call_p", "content": "Done"}


def test_reasoning_summary_is_used_when_there_is_no_content():
    items = normalise_input(
        [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "brief"}]},
            {"role": "assistant", "content": "ok"},
        ]
    )
    assert to_chat_messages(None, items)[0]["reasoning_content"] == "brief"


def test_an_output_without_its_call_is_400_naming_the_call_id():
    items = normalise_input([_call("call_a"), _output("call_a"), _output("call_zzz")])
    with pytest.raises(InvalidRequest) as caught:
        check_tool_outputs(items, first_new=0)
    assert "call_zzz" in caught.value.message and caught.value.param == "input[2]"
    history = normalise_input([_call("call_h")])
    check_tool_outputs(history + normalise_input([_output("call_h")]), first_new=1)


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ({"type": "function_call", "name": "f", "arguments": "{}"}, "input[0].call_id"),
        ({"type": "function_call", "call_id": "c", "arguments": "{}"}, "input[0].name"),
        ({"type": "function_call_output", "call_id": 5, "output": "x"}, "input[0].call_id"),
        ({"type": "function_call_output", "call_id": "c"}, "input[0].output"),
        ({"type": "custom_tool_call", "call_id": "c", "name": "p"}, "input[0].input"),
        ({"type": "item_reference"}, "input[0].id"),
        ({"type": "reasoning", "summary": "x"}, "input[0].summary"),
        (
            {"type": "reasoning", "summary": [], "encrypted_content": 3},
            "input[0].encrypted_content",
        ),
    ],
)
def test_bad_items_are_400_with_the_param(item, param):
    with pytest.raises(InvalidRequest) as caught:
        normalise_input([item])
    assert caught.value.param == param

import pytest

from domain.engine import build_engine_request
from domain.errors import InvalidRequest
from domain.inputs import normalise_input, to_chat_messages
from domain.request import parse_create_request


def test_string_input_is_one_user_message():
    [item] = normalise_input("hi")
    assert item["type"] == "message" and item["role"] == "user"
    assert item["content"] == [{"type": "input_text", "text": "hi"}]
    assert item["id"].startswith("msg_")


def test_items_with_and_without_type_and_client_ids():
    items = normalise_input(
        [
            {"role": "developer", "content": "be brief"},
            {
                "type": "message",
                "role": "user",
                "id": "msg_client",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ],
            },
            {"role": "assistant", "content": "earlier answer"},
        ]
    )
    assert [i["role"] for i in items] == ["developer", "user", "assistant"]
    assert items[1]["id"] == "msg_client"
    assert items[2]["content"][0]["type"] == "output_text"
    messages = to_chat_messages("sys", items)
    assert messages[0] == {"role": "system", "content": "sys"}
    assert messages[1] == {"role": "system", "content": "be brief"}
    assert messages[2]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    assert messages[3] == {"role": "assistant", "content": "earlier answer"}


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ([{"role": "robot", "content": "x"}], "input[0].role"),
        ([{"role": "user", "content": 7}], "input[0].content"),
        ([{"role": "user", "content": [{"type": "input_video"}]}], "input[0].content[0].type"),
        ([{"role": "user", "content": [{"type": "input_text"}]}], "input[0].content[0].text"),
        (["just a string"], "input[0]"),
    ],
)
def test_bad_items_name_the_param(value, param):
    with pytest.raises(InvalidRequest) as info:
        normalise_input(value)
    assert info.value.param == param


def test_function_call_round_trip_becomes_tool_messages():
    items = normalise_input(
        [
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "call_1", "name": "w", "arguments": "{}"},
            {"type": "function_call", "call_id": "call_2", "name": "t", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "call_2", "output": "noon"},
        ]
    )
    messages = to_chat_messages(None, items)
    assert messages[1]["role"] == "assistant"
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["call_1", "call_2"]
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


def test_engine_request_maps_only_what_the_client_set():
    request = parse_create_request(
        {
            "model": "m",
            "max_output_tokens": 50,
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "out",
                    "schema": {"type": "object"},
                    "strict": True,
                }
            },
        }
    )
    engine = build_engine_request(request, [{"role": "user", "content": "x"}])
    assert engine.max_tokens == 50
    assert engine.temperature is None and engine.top_p is None
    assert engine.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
    }

import json

import pytest

from domain.builder import BuilderClosed, ResponseBuilder, resume_builder
from domain.request import parse_create_request
from domain.response import fold, new_response, usage
from tests.support.protocol import check_event_order


def _builder(**request) -> ResponseBuilder:
    body = {"model": "m", **request}
    return ResponseBuilder(new_response("resp_x", parse_create_request(body), 1))


def _roundtrip(events):
    return json.loads(json.dumps(events))  # what a client gets: plain JSON, no shared objects


def test_text_stream_follows_protocol_order():
    b = _builder()
    b.start()
    for word in ["Hello", " there"]:
        b.text(word)
    b.complete(usage(3, 2))
    events = _roundtrip(b.drain())
    check_event_order(events)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert final["completed_at"] is not None
    assert final["output"][0]["content"][0]["text"] == "Hello there"
    assert final["usage"]["total_tokens"] == 5
    assert events[2]["item"]["content"] == []  # added in its empty state


def test_reasoning_then_text_makes_two_items():
    b = _builder()
    b.start()
    b.reasoning("let me")
    b.reasoning(" think")
    b.text("answer")
    b.complete()
    events = _roundtrip(b.drain())
    check_event_order(events)
    final = events[-1]["response"]["output"]
    assert [item["type"] for item in final] == ["reasoning", "message"]
    assert final[0]["id"].startswith("rs_") and final[1]["id"].startswith("msg_")
    assert final[0]["content"] == [{"type": "reasoning_text", "text": "let me think"}]
    assert any(e["type"] == "response.reasoning_text.done" for e in events)


def test_refusal_is_a_content_part():
    b = _builder()
    b.start()
    b.refusal("I can't")
    b.refusal(" help")
    b.incomplete("content_filter")
    events = _roundtrip(b.drain())
    check_event_order(events)
    types = [e["type"] for e in events]
    assert "response.refusal.delta" in types and "response.refusal.done" in types
    final = events[-1]["response"]
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "content_filter"}
    assert final["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help"}]


def test_tool_call_fragments_become_function_call_items():
    b = _builder()
    b.start()
    b.tool_call(0, "call_1", "get_weather", '{"city"')
    b.tool_call(0, None, None, ': "Paris"}')
    b.tool_call(1, "call_2", "get_time", "{}")
    b.complete()
    events = _roundtrip(b.drain())
    check_event_order(events)
    calls = events[-1]["response"]["output"]
    assert [(c["call_id"], c["name"], c["arguments"]) for c in calls] == [
        ("call_1", "get_weather", '{"city": "Paris"}'),
        ("call_2", "get_time", "{}"),
    ]
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert all(e["item"]["arguments"] == "" for e in added)


def test_failure_closes_open_items_first():
    b = _builder()
    b.start()
    b.text("partial")
    b.fail("server_error", "engine went away")
    events = _roundtrip(b.drain())
    check_event_order(events)
    final = events[-1]
    assert final["type"] == "response.failed"
    assert final["response"]["error"] == {"code": "server_error", "message": "engine went away"}
    assert final["response"]["output"][0]["status"] == "incomplete"


def test_nothing_after_the_terminal_event():
    b = _builder()
    b.start()
    b.complete()
    with pytest.raises(BuilderClosed):
        b.text("late")
    with pytest.raises(BuilderClosed):
        b.fail("server_error", "twice")


def test_background_starts_queued():
    b = _builder(background=True)
    b.start()
    b.begin()
    b.text("x")
    b.complete()
    events = _roundtrip(b.drain())
    check_event_order(events)
    assert [e["type"] for e in events[:3]] == [
        "response.created",
        "response.queued",
        "response.in_progress",
    ]
    assert events[0]["response"]["status"] == "queued"


def test_fold_matches_the_stream_at_every_point():
    b = _builder()
    b.start()
    b.reasoning("hmm")
    for word in ["a", " b", " c"]:
        b.text(word)
    b.complete()
    events = _roundtrip(b.drain())
    assert fold(events) == events[-1]["response"]
    middle = fold(events[:-3])  # before output_text.done
    assert middle is not None and middle["status"] == "in_progress"
    assert middle["output"][1]["content"][0]["text"] == "a b c"
    assert fold([]) is None


def test_resume_builder_ends_a_cut_off_log_cleanly():
    b = _builder()
    b.start()
    b.text("cut")
    b.text(" off")
    head = _roundtrip(b.drain())
    resumed = resume_builder(head)
    resumed.fail("server_error", "restart")
    tail = _roundtrip(resumed.drain())
    events = head + tail
    check_event_order(events)
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "cut off"


def test_continuable_text_only_for_a_single_open_text_message():
    fresh = _builder()
    fresh.start()
    assert fresh.continuable_text() == ""
    fresh.text("half")
    fresh.text(" way")
    assert resume_builder(_roundtrip(fresh.drain())).continuable_text() == "half way"
    thinking = _builder()
    thinking.start()
    thinking.reasoning("hmm")
    assert resume_builder(_roundtrip(thinking.drain())).continuable_text() is None
    after_reasoning = _builder()
    after_reasoning.start()
    after_reasoning.reasoning("hmm")
    after_reasoning.text("x")
    assert resume_builder(_roundtrip(after_reasoning.drain())).continuable_text() is None

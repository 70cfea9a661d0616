"""openai-agents (pinned) runs a tool loop against a live server three ways: full history,
auto_previous_response_id and conversation_id."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    calls.append(city)
    return f"sunny in {city}"


def _run(server, mode: str):  # type: ignore[no-untyped-def]
    async def run():  # type: ignore[no-untyped-def]
        client = AsyncOpenAI(base_url=server.base_url + "/v1", api_key="sk-test", max_retries=0)
        agent = Agent(
            name="weather",
            instructions="Answer with the weather.",
            tools=[get_weather],
            model=OpenAIResponsesModel(model="m", openai_client=client),
        )
        kwargs = {}
        if mode == "previous_response_id":
            kwargs["auto_previous_response_id"] = True
        elif mode == "conversation":
            conversation = await client.conversations.create()
            kwargs["conversation_id"] = conversation.id
        try:
            result = await Runner.run(agent, 'Use get_weather {"city": "Lyon"}', **kwargs)
        finally:
            await client.close()
        return result, kwargs

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["full_history", "previous_response_id", "conversation"])
def test_agent_tool_loop(server, mode):  # type: ignore[no-untyped-def]
    set_tracing_disabled(True)
    calls.clear()
    result, kwargs = _run(server, mode)
    assert calls == ["Lyon"]
    assert result.final_output == "get_weather returned: sunny in Lyon"
    responses = [r.response_id for r in result.raw_responses]
    assert len(responses) == 2
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        [row] = http.get("/v1/audit/tool_calls", params={"response_id": responses[0]}).json()[
            "data"
        ]
        assert (row["name"], row["output"], row["output_response_id"]) == (
            "get_weather", "sunny in Lyon", responses[1]
        )
        second = http.get(f"/v1/responses/{responses[1]}").json()
        if mode == "previous_response_id":
            assert second["previous_response_id"] == responses[0]
        if mode == "conversation":
            conversation_id = kwargs["conversation_id"]
            assert second["conversation"] == {"id": conversation_id}
            items = http.get(f"/v1/conversations/{conversation_id}/items",
                             params={"order": "asc"}).json()["data"]
            assert [i["type"] for i in items] == [
                "message", "function_call", "function_call_output", "message"
            ]

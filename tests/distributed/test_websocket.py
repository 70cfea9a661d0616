"""WebSocket mode and input token counts in distributed mode: PostgreSQL + Redis, two API
processes, two workers. A socket is one more follower of the shared log, so a drop on one API
process resumes on the other."""

from __future__ import annotations

import json
from typing import Any

from openai import OpenAI
from openai.types.websocket_reconnection import ReconnectingEvent, ReconnectingOverrides

from tests.support.cluster import Cluster
from tests.support.protocol import TERMINAL, check_event_order
from tests.support.tcp_proxy import TcpProxy

LONG_INPUT = " ".join(f"w{i}" for i in range(80))


def _sdk(base_url: str) -> OpenAI:
    return OpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0, timeout=60)


def _text(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


def test_a_socket_dropped_on_one_api_process_resumes_on_the_other(cluster: Cluster):
    first, second = cluster.apis[0], cluster.apis[1]
    seen: list[dict[str, Any]] = []

    def on_reconnecting(event: ReconnectingEvent) -> ReconnectingOverrides:
        return {"extra_query": {"response_id": seen[0]["response"]["id"],
                                "starting_after": str(seen[-1]["sequence_number"])}}

    with TcpProxy(first.port) as proxy, _sdk(first.base_url) as sdk:
        proxy.drop_after_frames = 5
        via_proxy = sdk.with_options(websocket_base_url=f"ws://127.0.0.1:{proxy.port}/v1")
        with via_proxy.responses.connect(on_reconnecting=on_reconnecting,
                                         initial_delay=0.05) as connection:
            connection.response.create(model="m", input=LONG_INPUT)
            for event in connection:
                if not seen:
                    proxy.target_port = second.port  # the reconnection lands elsewhere
                seen.append(event.model_dump(mode="json", exclude_unset=True))
                if event.type in TERMINAL:
                    break
            connection.response.create(
                model="m", input="next", previous_response_id=seen[0]["response"]["id"]
            )
            after = [json.loads(connection.recv_bytes())]
            while after[-1]["type"] not in TERMINAL:
                after.append(json.loads(connection.recv_bytes()))
        assert proxy.connections == 2
    check_event_order(seen)
    assert _text(seen) == LONG_INPUT
    check_event_order(after)
    assert after[-1]["response"]["usage"]["input_tokens"] == 80 + 80 + 1


def test_input_tokens_count_history_made_on_another_api_process(cluster: Cluster):
    with _sdk(cluster.apis[0].base_url) as one, _sdk(cluster.apis[1].base_url) as other:
        created = one.responses.create(model="m", input="alpha beta gamma delta")
        counted = other.responses.input_tokens.count(
            model="m", input="epsilon", instructions="short", previous_response_id=created.id
        )
        follow_up = other.responses.create(
            model="m", input="epsilon", instructions="short", previous_response_id=created.id
        )
    assert follow_up.usage is not None
    assert counted.input_tokens == follow_up.usage.input_tokens == 1 + 4 + 4 + 1

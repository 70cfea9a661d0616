"""WebSocket mode end to end: the pinned SDK's `client.responses.connect()` against a live
server under uvicorn, on SQLite and PostgreSQL; drops made real by cutting a TCP proxy."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.websocket_reconnection import ReconnectingEvent, ReconnectingOverrides
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as raw_connect

from tests.conftest import BACKENDS
from tests.e2e.conftest import MAX_BODY, backend_env
from tests.support.keys import create_key
from tests.support.protocol import TERMINAL, check_event_order
from tests.support.server import ServerProcess
from tests.support.tcp_proxy import TcpProxy

LONG_INPUT = " ".join(f"word{i}" for i in range(120))


def _until_terminal(connection: Any) -> list[dict[str, Any]]:
    """Raw events (the JSON as sent) up to and including the terminal one."""
    events = []
    while True:
        event = json.loads(connection.recv_bytes())
        events.append(event)
        if event["type"] in TERMINAL or event["type"] == "error":
            return events


def _sse_events(server: ServerProcess, response_id: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{server.base_url}/v1/responses/{response_id}?stream=true", timeout=30)
    return [
        json.loads(line[5:]) for line in reply.text.splitlines()
        if line.startswith("data:") and line != "data: [DONE]"
    ]


def _text(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


def test_connect_streams_exactly_the_events_sse_does(client: OpenAI, server: ServerProcess):
    with client.responses.connect() as connection:
        connection.response.create(model="m", input="hello over a socket")
        events = _until_terminal(connection)
    check_event_order(events)
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "hello over a socket"
    assert events == _sse_events(server, events[0]["response"]["id"])


def test_several_responses_in_turn_over_one_connection(client: OpenAI):
    with client.responses.connect() as connection:
        # Sent back to back: answered one after the other, never interleaved.
        connection.response.create(model="m", input="first one")
        connection.response.create(model="m", input="second one")
        first, second = _until_terminal(connection), _until_terminal(connection)
        for events in (first, second):
            check_event_order(events)
        assert (_text(first), _text(second)) == ("first one", "second one")

        connection.response.create(
            model="m", input="third", previous_response_id=second[0]["response"]["id"]
        )
        third = _until_terminal(connection)
    check_event_order(third)
    assert third[-1]["response"]["previous_response_id"] == second[0]["response"]["id"]
    assert third[-1]["response"]["usage"]["input_tokens"] == 2 + 2 + 1  # history counted


def test_an_unstored_response_chains_from_the_connections_memory(client: OpenAI):
    with client.responses.connect() as connection:
        connection.response.create(model="m", input="keep this off disk", store=False)
        first = _until_terminal(connection)
        first_id = first[0]["response"]["id"]
        connection.response.create(model="m", input="and then", previous_response_id=first_id)
        second = _until_terminal(connection)
    assert second[-1]["type"] == "response.completed"
    assert second[-1]["response"]["previous_response_id"] == first_id
    assert second[-1]["response"]["usage"]["input_tokens"] == 4 + 4 + 2
    # Nothing of it was stored: over HTTP (or another socket) the id is unknown.
    with pytest.raises(Exception, match="not found"):
        client.responses.create(model="m", input="x", previous_response_id=first_id)


def test_a_warm_up_prepares_a_chain_without_generating(client: OpenAI):
    with client.responses.connect() as connection:
        connection.response.create(model="m", input="prepare these four words", generate=False,
                                   instructions="be terse")
        warm = _until_terminal(connection)
        connection.response.create(model="m", input="go now",
                                   previous_response_id=warm[0]["response"]["id"])
        real = _until_terminal(connection)
    assert [e["type"] for e in warm] == [
        "response.created", "response.in_progress", "response.completed"
    ]
    assert warm[-1]["response"]["output"] == []
    assert warm[-1]["response"]["usage"]["input_tokens"] == 0  # the engine saw nothing
    assert _text(real) == "go now"
    assert real[-1]["response"]["usage"]["input_tokens"] == 4 + 2  # the warm-up's input, then


def test_a_dropped_socket_resumes_through_the_sdks_reconnection(client: OpenAI, server):  # type: ignore[no-untyped-def]
    seen: list[dict[str, Any]] = []
    reconnects: list[tuple[ReconnectingEvent, int]] = []

    def on_reconnecting(event: ReconnectingEvent) -> ReconnectingOverrides:
        reconnects.append((event, len(seen)))
        cursor = {"response_id": seen[0]["response"]["id"],
                  "starting_after": str(seen[-1]["sequence_number"])}
        return {"extra_query": cursor}

    with TcpProxy(server.port) as proxy:
        proxy.drop_after_frames = 6  # the network drops after six events: no close frame
        via_proxy = client.with_options(websocket_base_url=f"ws://127.0.0.1:{proxy.port}/v1")
        with via_proxy.responses.connect(on_reconnecting=on_reconnecting,
                                         initial_delay=0.05) as connection:
            connection.response.create(model="m", input=LONG_INPUT)
            for event in connection:
                seen.append(event.model_dump(mode="json", exclude_unset=True))
                if event.type in TERMINAL:
                    break
            # The reconnected socket carries on with the next response.
            connection.response.create(model="m", input="after the drop")
            after = _until_terminal(connection)
        assert proxy.connections == 2
    assert [(e.close_code, held) for e, held in reconnects] == [(1006, 6)]
    check_event_order(seen)  # every event once, in order: nothing lost, nothing repeated
    assert _text(seen) == LONG_INPUT
    assert _text(after) == "after the drop"
    assert seen == _sse_events(server, seen[0]["response"]["id"])


def test_a_new_socket_asks_for_the_events_after_a_cursor(client: OpenAI):
    with client.responses.connect() as connection:
        connection.response.create(model="m", input=LONG_INPUT)
        head = [json.loads(connection.recv_bytes()) for _ in range(4)]
    response_id, cursor = head[0]["response"]["id"], head[-1]["sequence_number"]
    query = {"response_id": response_id, "starting_after": str(cursor)}
    with client.responses.connect(extra_query=query) as connection:
        rest = _until_terminal(connection)
    check_event_order(head + rest)
    assert _text(head + rest) == LONG_INPUT


# -- bad messages --------------------------------------------------------------------------------


def _ws_url(server: ServerProcess, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/v1/responses{query}"


def _error(raw: str | bytes, status: int, code: str | None) -> dict[str, Any]:
    event = json.loads(raw)
    assert event["type"] == "error" and event["status"] == status, event
    assert set(event["error"]) >= {"message", "type", "param", "code"}
    if code is not None:
        assert event["error"]["code"] == code, event
    return event["error"]


BAD_MESSAGES = [
    ("not json", 400, "invalid_json"),
    ("[1, 2]", 400, "invalid_json"),
    ('{"no": "type"}', 400, "missing_required_parameter"),
    ('{"type": "session.update"}', 400, "invalid_value"),
    ('{"type": "response.create", "input": "no model"}', 400, "missing_required_parameter"),
    ('{"type": "response.create", "model": "m", "temperature": "hot"}', 400, "invalid_type"),
    ('{"type": "response.create", "model": "m", "background": true}', 400,
     "unsupported_parameter"),
    ('{"type": "response.create", "model": "m", "stream_id": 5}', 400, "invalid_type"),
    ('{"type": "response.create", "model": "m", "generate": "no"}', 400, "invalid_type"),
    ('{"type": "response.steer", "previous_response_id": "resp_x", "input": []}', 400,
     "unsupported_event_type"),
    ('{"type": "response.create", "model": "m", "previous_response_id": "resp_nope"}', 400,
     "previous_response_not_found"),
    ("[" * 100 + "]" * 100, 400, None),
]


def test_bad_messages_get_error_events_and_the_connection_lives_on(server: ServerProcess):
    with raw_connect(_ws_url(server)) as socket:
        for message, status, code in BAD_MESSAGES:
            socket.send(message)
            _error(socket.recv(timeout=30), status, code)
        socket.send("x" * (int(MAX_BODY) + 1))
        _error(socket.recv(timeout=30), 413, "request_too_large")
        # Binary frames are read as JSON text too, and `stream_id` is echoed on every event.
        socket.send(json.dumps({"type": "response.create", "model": "m", "input": "still here",
                                "stream_id": "lane-1"}).encode())
        events = []
        while not events or events[-1]["type"] not in TERMINAL:
            events.append(json.loads(socket.recv(timeout=30)))
    assert {e["stream_id"] for e in events} == {"lane-1"}
    assert _text(events) == "still here"


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("?response_id=resp_unknown", 404, None),
        ("?starting_after=3", 400, "missing_required_parameter"),
        ("?response_id=resp_x&starting_after=soon", 400, "invalid_type"),
        ("?response_id=a&response_id=b", 400, "invalid_value"),
    ],
)
def test_a_bad_resume_is_an_error_event(server: ServerProcess, query, status, code):  # type: ignore[no-untyped-def]
    with raw_connect(_ws_url(server, query)) as socket:
        _error(socket.recv(timeout=30), status, code)
        socket.send('{"type": "response.processed", "response_id": "resp_x"}')  # Codex's ack
        socket.send('{"type": "response.create", "model": "m", "input": "fine"}')
        assert json.loads(socket.recv(timeout=30))["type"] == "response.created"


def test_a_plain_get_is_not_an_upgrade(server: ServerProcess):
    with pytest.raises(InvalidStatus):  # sanity: the handshake itself is what is refused
        raw_connect(_ws_url(server).replace("/v1/responses", "/v1/nowhere"))


# -- keys and tenants ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def secured(request: pytest.FixtureRequest, tmp_path_factory):  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("secured-ws")
    env = backend_env(request.param, request, workdir)
    keys = create_key(env, "a"), create_key(env, "b")
    server = ServerProcess.start(workdir, "--auth", "required", "--builtin-rate", "400", env=env)
    yield server, keys
    server.stop()


def _sdk(server: ServerProcess, key: str) -> OpenAI:
    return OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0, timeout=30)


@pytest.mark.parametrize("key", [None, "rsd_wrong"])
def test_the_handshake_needs_a_valid_key(secured, key):  # type: ignore[no-untyped-def]
    server, _ = secured
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with pytest.raises(InvalidStatus) as refused:
        raw_connect(_ws_url(server), additional_headers=headers)
    reply = refused.value.response
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == "Bearer"
    error = json.loads(reply.body)["error"]
    assert error["code"] == ("invalid_api_key" if key else "missing_api_key")
    assert set(error) == {"message", "type", "param", "code"}


def test_a_tenant_reaches_only_its_own_responses(secured):  # type: ignore[no-untyped-def]
    server, (key_a, key_b) = secured
    with _sdk(server, key_a) as a, a.responses.connect() as connection:
        connection.response.create(model="m", input="tenant a only")
        events = _until_terminal(connection)
    response_id = events[0]["response"]["id"]
    assert events[-1]["type"] == "response.completed"

    query = {"response_id": response_id, "starting_after": "2"}
    with _sdk(server, key_b) as b:
        with b.responses.connect(extra_query=query) as connection:
            unknown = _error(connection.recv_bytes(), 404, None)
            connection.response.create(model="m", input="x", previous_response_id=response_id)
            _error(connection.recv_bytes(), 400, "previous_response_not_found")
        # Counting tokens of another tenant's history is refused the same way.
        with pytest.raises(openai.BadRequestError) as refused:
            b.responses.input_tokens.count(input="x", previous_response_id=response_id)
        assert refused.value.code == "previous_response_not_found"
        # Exactly as an id that never existed.
        never = {"response_id": "resp_" + response_id[5:][::-1], "starting_after": "2"}
        with b.responses.connect(extra_query=never) as connection:
            assert _error(connection.recv_bytes(), 404, None)["message"] == unknown[
                "message"
            ].replace(response_id, never["response_id"])
    with _sdk(server, key_a) as a, a.responses.connect(extra_query=query) as connection:
        assert _until_terminal(connection) == events[3:]

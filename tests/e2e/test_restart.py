"""State survives a crash: stored responses stay readable, cut-off runs end cleanly."""

from __future__ import annotations

import signal

from openai import OpenAI

from tests.support.protocol import check_event_order
from tests.support.server import ServerProcess


def test_kill_and_restart(tmp_path):  # type: ignore[no-untyped-def]
    data = str(tmp_path / "data")
    server = ServerProcess.start(tmp_path, "--data-dir", data, "--builtin-rate", "50")
    with OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0) as sdk:
        done = sdk.responses.create(model="m", input="kept across restarts")
        first = []
        with sdk.responses.create(model="m", input=" ".join(["word"] * 500), stream=True) as s:
            for event in s:
                first.append(event.model_dump(mode="json", exclude_unset=True))
                if len(first) == 10:
                    break
    server.stop(signal.SIGKILL)  # no shutdown hook runs: the run is cut off mid-stream

    server = ServerProcess.start(tmp_path, "--data-dir", data)
    try:
        with OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0) as sdk:
            assert sdk.responses.retrieve(done.id).output_text == "kept across restarts"
            cut_id = first[0]["response"]["id"]
            with sdk.responses.retrieve(cut_id, stream=True, starting_after=9) as rest:
                second = [e.model_dump(mode="json", exclude_unset=True) for e in rest]
            events = first + second
            assert events[-1]["type"] == "response.failed"
            assert "restarted" in events[-1]["response"]["error"]["message"]
            check_event_order(events)
            assert sdk.responses.retrieve(cut_id).status == "failed"
    finally:
        server.stop()


def test_graceful_shutdown_ends_running_responses(tmp_path):  # type: ignore[no-untyped-def]
    data = str(tmp_path / "data")
    server = ServerProcess.start(tmp_path, "--data-dir", data, "--builtin-rate", "20")
    with OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0) as sdk:
        created = sdk.responses.create(model="m", input="slow " * 200, background=True)
    server.stop(signal.SIGTERM)
    server = ServerProcess.start(tmp_path, "--data-dir", data)
    try:
        with OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0) as sdk:
            response = sdk.responses.retrieve(created.id)
            assert response.status == "failed"
            assert "shut down" in response.error.message
    finally:
        server.stop()

"""While an engine is silent, the stream carries `: keep-alive` comments, then goes on."""

from __future__ import annotations

import httpx

from tests.support.server import ServerProcess


def test_idle_stream_gets_keepalive_comments(tmp_path):  # type: ignore[no-untyped-def]
    server = ServerProcess.start(tmp_path, "--data-dir", str(tmp_path / "data"),
                                 "--builtin-rate", "1.5", "--keepalive-s", "0.2")
    try:
        with httpx.stream("POST", server.base_url + "/v1/responses", timeout=20,
                          json={"model": "m", "input": "slow reply", "stream": True}) as reply:
            lines = list(reply.iter_lines())
    finally:
        server.stop()
    assert ": keep-alive" in lines
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert events[-1] == "response.completed"
    assert lines[-2:] == ["data: [DONE]", ""] or lines[-1] == "data: [DONE]"

"""GET /v1/models with the pinned openai SDK: the built-in engine's name, the model map's names
with what the engine tells of them, and a dead engine that does not make the list fail."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.e2e.test_openai_engine import _start, engine_url  # noqa: F401 - a fixture
from tests.support.ports import free_port
from tests.support.server import ServerProcess

MODEL_MAP = "gpt-5=fake,codex-local=fake-tools,*=fake"


def test_the_builtin_engine_lists_its_name(client: OpenAI, server: ServerProcess):
    models = client.models.list()
    assert [m.id for m in models.data] == ["responsed-builtin"]
    model = client.models.retrieve("responsed-builtin")
    assert model.object == "model" and model.owned_by == "responsed" and model.created > 0
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert caught.value.body["code"] == "model_not_found"


def test_mapped_names_and_the_engines_own_with_context_length(engine_url, tmp_path_factory):  # noqa: F811
    server = _start(tmp_path_factory, "--engine-url", engine_url, "--engine-model-map", MODEL_MAP)
    try:
        with OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0) as sdk:
            models = {m.id: m.model_dump() for m in sdk.models.list(extra_query={
                "client_version": "0.169.0"})}  # what Codex adds; it changes nothing
            assert "*" not in models
            assert models["gpt-5"]["context_window"] == 32768
            assert models["gpt-5"]["owned_by"] == "fake-engine"
            assert models["codex-local"]["context_window"] == 32768
            assert "fake-reasoning" in models  # what the engine serves is sendable as is
            assert sdk.models.retrieve("gpt-5").id == "gpt-5"
    finally:
        server.stop()


def test_a_dead_engine_leaves_the_mapped_names(tmp_path_factory):
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    server = _start(tmp_path_factory, "--engine-url", dead, "--engine-model-map", MODEL_MAP,
                    "--engine-connect-timeout", "1")
    try:
        with OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0) as sdk:
            listed = sdk.models.list().data
            assert sorted(m.id for m in listed) == ["codex-local", "gpt-5"]
            assert all(m.owned_by == "responsed" for m in listed)
            assert "context_window" not in listed[0].model_dump()
    finally:
        server.stop()

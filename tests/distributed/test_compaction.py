"""Compaction in distributed mode (PostgreSQL + Redis, two API processes and a worker), with the
pinned openai SDK: a window compacted by one API process continues through the other (the
worker opens the item), the trigger protocol runs on the worker, a changed item is refused."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from openai import OpenAI

from tests.distributed.conftest import start_cluster
from tests.support.cluster import Cluster

HISTORY = [
    {"role": "user", "content": "plan the alpha release"},
    {"role": "assistant", "content": "the plan has three steps"},
    {"role": "user", "content": "then ship beta"},
]
SUMMARY = "Summary: plan the alpha release | then ship beta"


@pytest.fixture(scope="module")
def compacting(request: pytest.FixtureRequest, tmp_path_factory, redis_server) -> Iterator[Cluster]:  # type: ignore[no-untyped-def]
    cluster = start_cluster(
        request, tmp_path_factory.mktemp("compacting"), redis_server.url, apis=2, workers=1,
        # One key for every process: what one seals, the others open.
        extra_env={"RESPONSED_ENCRYPTION_KEY": "cluster-wide compaction key"},
    )
    yield cluster
    cluster.stop()


def _sdk(cluster: Cluster, index: int) -> OpenAI:
    return OpenAI(base_url=cluster.apis[index].base_url + "/v1", api_key="sk-test",
                  max_retries=0, timeout=60)


def test_compact_on_one_api_continue_on_the_other(compacting: Cluster):
    with _sdk(compacting, 0) as first, _sdk(compacting, 1) as second:
        window = first.responses.compact(model="m", input=HISTORY).output
        items = [i.model_dump(mode="json", exclude_none=True) for i in window]
        assert [i["type"] for i in items] == ["message", "message", "compaction"]
        reply = second.responses.create(
            model="m", input=[*items, {"role": "user", "content": "context: recap"}]
        )
        assert SUMMARY in reply.output_text
        assert "three steps" not in reply.output_text

        blob = items[-1]["encrypted_content"]
        changed = {**items[-1], "encrypted_content": blob[:-6] + "AAAAAA"}
        with pytest.raises(openai.BadRequestError) as caught:
            second.responses.create(model="m", input=[changed])
        assert caught.value.body["code"] == "invalid_encrypted_content"


def test_compaction_trigger_runs_on_the_worker_and_is_stored(compacting: Cluster):
    with _sdk(compacting, 0) as first, _sdk(compacting, 1) as second:
        with first.responses.create(
            model="m", input=[*HISTORY, {"type": "compaction_trigger"}], stream=True
        ) as stream:
            events = list(stream)
        kinds = [e.type for e in events]
        assert kinds[-1] == "response.completed" and "response.compaction.compacting" in kinds
        response_id = events[-1].response.id
        stored = second.responses.retrieve(response_id)
        assert [i.type for i in stored.output] == ["compaction"]
        follow = second.responses.create(
            model="m", previous_response_id=stored.id, input="context: and now?"
        )
        assert SUMMARY in follow.output_text


def test_context_management_compacts_on_the_worker(compacting: Cluster):
    with _sdk(compacting, 1) as sdk:
        reply = sdk.responses.create(
            model="m", input=HISTORY,
            context_management=[{"type": "compaction", "compact_threshold": 5}],
        )
        assert [i.type for i in reply.output] == ["compaction", "message"]
        assert reply.output_text == "then ship beta"


def test_a_compact_call_is_stored_and_read_from_the_other_api(compacting: Cluster):
    with _sdk(compacting, 0) as first, _sdk(compacting, 1) as second:
        compacted = first.responses.compact(model="m", input=HISTORY)
        stored = second.responses.retrieve(compacted.id)
        assert stored.status == "completed"
        assert [i.type for i in stored.output] == ["compaction"]
        assert stored.output[0].encrypted_content == compacted.output[-1].encrypted_content
        inputs = second.responses.input_items.list(compacted.id, order="asc").data
        assert len(inputs) == len(HISTORY)
        follow = second.responses.create(
            model="m", previous_response_id=compacted.id, input="context: recap"
        )
        assert SUMMARY in follow.output_text

"""Schemathesis over the served OpenAPI document: every operation, with a key, against a live
server. No 5xx, every answer as documented (status, content type, headers, body), invalid input
refused, access control enforced, and no error that shows internals."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis import checks as st_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi import checks as openapi_checks

from api.app import create_app
from service.settings import Settings
from tests.support.keys import create_key
from tests.support.server import ServerProcess

# Examples per operation and mode. CI runs a fixed set (the same every time); a longer,
# randomised run: RESPONSED_FUZZ_EXAMPLES=1000 RESPONSED_FUZZ_RANDOM=1 uv run pytest <this file>
DERANDOMIZE = not os.environ.get("RESPONSED_FUZZ_RANDOM")
MAX_EXAMPLES = int(os.environ.get("RESPONSED_FUZZ_EXAMPLES", "100"))
LEAKS = re.compile(
    r"Traceback|File \"|\.py\b|sqlalchemy|sqlite|asyncpg|psycopg|SELECT |INSERT |UPDATE "
    r"|litestar|uvicorn|/(?:home|root|tmp|usr|opt|srv)/|"
    + re.escape(str(Path(__file__).resolve().parents[2])),
    re.IGNORECASE,
)


@schemathesis.check
def no_internals_in_errors(ctx, response, case) -> bool | None:  # type: ignore[no-untyped-def]
    """Error bodies never carry stack traces, SQL, module names or file paths."""
    if response.status_code >= 400:
        text = response.text
        match = LEAKS.search(text)
        sent = repr((case.path_parameters, case.query, case.headers, case.body)).lower()
        # An error may quote what the client sent; only what it did not send is a leak.
        if match is not None and match.group(0).lower() not in sent:
            raise AssertionError(f"error body shows internals ({match.group(0)!r}): {text[:300]}")
    return None


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[tuple[ServerProcess, str]]:  # type: ignore[no-untyped-def]
    workdir: Path = tmp_path_factory.mktemp("fuzz")
    env = {"RESPONSED_DATA_DIR": str(workdir / "data"), "DATABASE_URL": ""}
    key = create_key(env, "fuzz")
    # The fuzzer sends wrong keys on purpose, thousands of them: the failed-authentication
    # throttle (tests/e2e/test_abuse.py) would answer 429 where it checks for a 401.
    server = ServerProcess.start(workdir, "--auth", "required", "--max-body-bytes", "200000",
                                 "--auth-failure-rate", "0", env=env)
    yield server, key
    server.stop()


@pytest.fixture(scope="module")
def api_schema(live: tuple[ServerProcess, str]):  # type: ignore[no-untyped-def]
    server, key = live
    # The key for the document's `bearer` scheme: negative cases that drop or spoil the
    # credentials stay what they were generated to be, and ignored_auth probes without them.
    config = SchemathesisConfig.from_dict({
        "auth": {"openapi": {"bearer": {"bearer": key}}},
        # A body over the size limit is refused before it is read: 413 is a rejection too; so
        # is 403 for another tenant named by a non-admin key (the inspector's `tenant`).
        "checks": {"negative_data_rejection": {"expected-statuses": [
            "400", "401", "403", "404", "405", "413", "415", "429"]}},
    })
    return schemathesis.openapi.from_url(server.base_url + "/docs/openapi.json", config=config)


# The operations, known before the server starts: the app generates its document when built.
_DOCUMENT = create_app(Settings(auth="required")).state.openapi
CASES = [
    pytest.param(f"{method.upper()} {path}", mode, id=f"{method.upper()} {path} {mode.value}")
    for path, item in _DOCUMENT["paths"].items()
    for method, operation in item.items()
    if method != "parameters"
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # Invalid input needs something to get wrong: parameters or a body.
    if mode is GenerationMode.POSITIVE or "parameters" in item or "parameters" in operation
    or "requestBody" in operation
]

CHECKS = [
    st_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
    openapi_checks.ignored_auth,
    no_internals_in_errors,
]


def _responses_to_find(server: ServerProcess, key: str) -> list[str]:
    """Ids that exist, so the operations on one response get past 404 and answer for real:
    completed, failed, incomplete, background, with tools and metadata, and one made up."""
    bodies = [
        {"input": "a short answer"},
        {"input": "fail: the engine breaks", "stream": True},
        {"input": "cut " * 20, "max_output_tokens": 3},
        {"input": "later", "background": True},
        {"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
         "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
         "metadata": {"k": "v"}, "instructions": "be brief", "reasoning": {"effort": "low"}},
    ]
    ids = []
    with httpx.Client(base_url=server.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {key}"}) as http:
        for body in bodies:
            with http.stream("POST", "/v1/responses", json={"model": "m", **body}) as reply:
                text = reply.read().decode()
            ids.append(re.search(r'"id":"(resp_[0-9a-f]+)"', text).group(1))  # type: ignore[union-attr]
    return [*ids, "resp_" + "0" * 48]


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("label", "mode"), CASES)
def test_every_operation_keeps_the_document(api_schema, live, label: str,  # type: ignore[no-untyped-def]
                                            mode: GenerationMode):
    server, key = live
    method, path = label.split(" ", 1)
    operation = api_schema[path][method]
    if "{response_id}" in path:
        # Fresh responses for each operation: a DELETE must not leave the next one only 404s.
        ids = _responses_to_find(server, key)
        cases = st.sampled_from(ids).flatmap(lambda response_id: operation.as_strategy(
            generation_mode=mode, path_parameters={"response_id": response_id}))
    else:
        cases = operation.as_strategy(generation_mode=mode)

    @given(case=cases)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
              database=None)
    def fuzz(case) -> None:  # type: ignore[no-untyped-def]
        case.call_and_validate(checks=CHECKS, timeout=30)

    fuzz()

"""OpenAI's error envelope for every failure: {"error": {message, type, param, code}}."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from litestar import Request, Response
from litestar.exceptions import HTTPException

from domain.errors import ResponsedError, ServiceUnavailable
from service.runtime import is_outage

log = logging.getLogger("responsed.api")

# Every `code` an error envelope can carry, with what it means: the document lists them, and a
# test fails when the server raises a code missing here.
ERROR_CODES = {
    "invalid_json": "The body is not JSON, or not a JSON object.",
    "invalid_type": "A field or parameter has the wrong type (`param` names it).",
    "invalid_value": "A field or parameter is out of range, malformed or repeated.",
    "missing_required_parameter": "A required field is missing.",
    "mutually_exclusive_parameters": "Two fields that cannot be combined were both sent.",
    "invalid_request": "The request cannot be carried out in this state.",
    "integer_above_max_value": "A number is above this deployment's limit.",
    "array_above_max_length": "An array has more entries than this deployment allows.",
    "invalid_encrypted_content": "A reasoning or compaction item's encrypted_content was not "
    "made here, for this tenant.",
    "engine_error": "The engine could not do its part (a compaction's summary); retry.",
    "model_not_found": "The model is not one this server lists (GET /v1/models).",
    "previous_response_not_found": "`previous_response_id` names no response of this tenant.",
    "previous_response_in_progress": "The previous response has not ended yet.",
    "response_in_progress": "The response is still running.",
    "conversation_locked": "Another response is running in this conversation.",
    "item_not_found": "No such item.",
    "not_found": "No such route.",
    "method_not_allowed": "The route does not take this method.",
    "request_too_large": "The body is over this deployment's size limit.",
    "unsupported_media_type": "The body was not sent as application/json.",
    "missing_api_key": "No API key was sent.",
    "invalid_api_key": "The API key is unknown or revoked.",
    "too_many_auth_failures": "Too many failed authentications from this client address; "
    "retry after Retry-After seconds.",
    "tenant_not_allowed": "Only an admin key can read another tenant's data.",
    "too_many_in_flight": "Too many of this tenant's responses are queued or running.",
    "too_many_subscribers": "Too many clients are streaming this response.",
    "idempotency_key_reused": "The Idempotency-Key was used before with another body.",
    "idempotency_key_in_use": "The first request with this Idempotency-Key is still running.",
    "service_unavailable": "A storage dependency is away; retry after Retry-After seconds.",
    "unsupported_parameter": "A WebSocket `response.create` field this mode does not take.",
    "unsupported_event_type": "A WebSocket message type this server does not take.",
}
if TYPE_CHECKING:
    ErrorCode = str  # the Literal below is built from the table, which a type checker cannot read
else:
    ErrorCode = Literal[tuple(ERROR_CODES)]

_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


def error_response(
    status: int,
    message: str,
    *,
    type_: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, object]]:
    error_type = (
        type_
        or _TYPES.get(status)
        or ("server_error" if status >= 500 else "invalid_request_error")
    )
    return Response(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}},
        status_code=status,
        headers=headers,
    )


def on_responsed_error(
    _: Request[Any, Any, Any], exc: ResponsedError
) -> Response[dict[str, object]]:
    return error_response(
        exc.status, exc.message, type_=exc.type, param=exc.param, code=exc.code,
        headers=exc.headers,
    )


def on_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, object]]:
    status = exc.status_code
    if status == 413:
        message = "The request body is too large."
        code = "request_too_large"
    elif status == 404:
        message, code = "Not found.", "not_found"
    elif status == 405:
        message, code = "Method not allowed.", "method_not_allowed"
    else:
        message, code = str(exc.detail), None
    return error_response(status, message, code=code, headers=exc.headers)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    if is_outage(exc):
        # Not a bug: a dependency is away. A 503 with Retry-After, which the SDKs retry.
        log.warning("%s %s: a dependency is unavailable: %s", request.method,
                    request.url.path, exc.__class__.__name__)
        return on_responsed_error(request, ServiceUnavailable(code="service_unavailable"))
    log.exception("unhandled error", exc_info=exc)
    # Retrying will not change the outcome of a bug: tell the SDK not to.
    return error_response(
        500,
        "The server had an error while processing your request.",
        headers={"x-should-retry": "false"},
    )

"""OpenAI's error envelope for every failure: {"error": {message, type, param, code}}."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException

from domain.errors import ResponsedError, ServiceUnavailable
from storage.outage import is_outage

log = logging.getLogger("responsed.api")

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


def on_responsed_error(_: Request, exc: ResponsedError) -> Response[dict[str, object]]:
    return error_response(
        exc.status, exc.message, type_=exc.type, param=exc.param, code=exc.code,
        headers=exc.headers,
    )


def on_http_exception(_: Request, exc: HTTPException) -> Response[dict[str, object]]:
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


def on_unexpected(request: Request, exc: Exception) -> Response[dict[str, object]]:
    if is_outage(exc):
        # Not a bug: a dependency is away. A 503 with Retry-After, which the SDKs retry.
        log.warning("%s %s: a dependency is unavailable: %s", request.method,
                    request.url.path, exc.__class__.__name__)
        return on_responsed_error(request, ServiceUnavailable())
    log.exception("unhandled error", exc_info=exc)
    # Retrying will not change the outcome of a bug: tell the SDK not to.
    return error_response(
        500,
        "The server had an error while processing your request.",
        headers={"x-should-retry": "false"},
    )

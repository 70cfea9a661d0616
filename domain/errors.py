"""Errors the domain raises; the API maps them onto OpenAI's error envelope."""

from __future__ import annotations


class ResponsedError(Exception):
    """Base class: something a client can be told about, with an HTTP status."""

    status: int = 400
    type: str = "invalid_request_error"
    headers: dict[str, str] | None = None  # extra HTTP headers for the error reply

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequest(ResponsedError):
    status = 400


class NotFound(ResponsedError):
    status = 404

    @classmethod
    def response(cls, response_id: str) -> NotFound:
        return cls(f"Response with id '{response_id}' not found.", param="response_id")


class PayloadTooLarge(ResponsedError):
    status = 413


class Unauthorized(ResponsedError):
    """A missing, unknown or revoked API key. OpenAI types it invalid_request_error."""

    status = 401
    headers = {"WWW-Authenticate": "Bearer"}


class UnsupportedMediaType(ResponsedError):
    status = 415


class TooManyRequests(ResponsedError):
    """A limit that frees up by itself: the client may try again after `retry_after` seconds."""

    status = 429
    type = "rate_limit_error"

    def __init__(
        self,
        message: str,
        *,
        retry_after: int = 1,
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message, param=param, code=code)
        self.headers = {"Retry-After": str(retry_after)}


class ServiceUnavailable(ResponsedError):
    """A dependency (the database, Redis) is away: the same request may succeed later."""

    status = 503
    type = "server_error"
    RETRY_AFTER_S = 2

    def __init__(self, message: str = "The service is temporarily unavailable: a storage "
                 "dependency is not answering. Retry the request.", *,
                 code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.headers = {"Retry-After": str(self.RETRY_AFTER_S)}


class Conflict(ResponsedError):
    """The same thing is being done by another request right now: retry shortly (the SDKs
    retry a 409 by themselves)."""

    status = 409

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message, param=param, code=code)
        self.headers = {"Retry-After": "1"}


class EngineError(Exception):
    """The inference engine failed; the response ends with response.failed."""

    def __init__(self, message: str, *, code: str = "server_error"):
        super().__init__(message)
        self.message = message
        self.code = code


class Fenced(Exception):
    """A writer lost ownership of a response (its epoch or last_seq moved on)."""

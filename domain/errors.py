"""Errors the domain raises; the API maps them onto OpenAI's error envelope."""

from __future__ import annotations


class ResponsedError(Exception):
    """Base class: something a client can be told about, with an HTTP status."""

    status: int = 400
    type: str = "invalid_request_error"

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


class EngineError(Exception):
    """The inference engine failed; the response ends with response.failed."""

    def __init__(self, message: str, *, code: str = "server_error"):
        super().__init__(message)
        self.message = message
        self.code = code


class Fenced(Exception):
    """A writer lost ownership of a response (its epoch or last_seq moved on)."""

"""The inspector's operations in the OpenAPI document (api.inspect serves them)."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _query(name: str, schema: Schema, description: str = "") -> Schema:
    parameter: Schema = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def _error(description: str) -> Schema:
    return {"description": description, **_ERROR}


def _json(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_STRING = {"type": "string"}
_TIME = {"type": "number", "description": "Unix seconds"}
_STATUS = {"type": "string",
           "enum": ["queued", "in_progress", "completed", "failed", "cancelled", "incomplete"]}
_TENANT = _query("tenant", _STRING, "An admin key: only this tenant. Another key: its own only "
                 "(a different tenant is a 403).")
_RESPONSE_FILTERS = [
    _query("status", _STATUS),
    _query("model", _STRING),
    _query("conversation_id", _STRING),
    _query("previous_response_id", _STRING, "The responses that continue this one."),
    _query("created_after", _TIME),
    _query("created_before", _TIME),
    _query("has_tool_calls", {"type": "boolean"}),
    _query("q", _STRING, "Text in the input items or the output, any case."),
    _TENANT,
]
_RESPONSE_ID = {"name": "response_id", "in": "path", "required": True, "schema": _STRING}

_RESPONSE_LIST: Schema = {
    "type": "object",
    "required": ["object", "data", "first_id", "last_id", "has_more"],
    "properties": {
        "object": {"const": "list"},
        "data": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Response"},
            "description": "Responses; running ones as their log's first event has them, "
            "with the status now. An admin key's list adds `tenant` to each.",
        },
        "first_id": {"type": ["string", "null"]},
        "last_id": {"type": ["string", "null"]},
        "has_more": {"type": "boolean"},
    },
}
_EVENT_PAGE: Schema = {
    "type": "object",
    "required": ["object", "response_id", "tenant", "data", "has_more"],
    "properties": {
        "object": {"const": "list"},
        "response_id": _STRING,
        "tenant": _STRING,
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sequence_number", "type", "created_at", "event"],
                "properties": {
                    "sequence_number": {"type": "integer"},
                    "type": _STRING,
                    "created_at": {"type": "number", "description": "when it was stored"},
                    "event": {"type": "object", "description": "the event as SSE sent it"},
                },
            },
        },
        "first_sequence_number": {"type": ["integer", "null"]},
        "last_sequence_number": {"type": ["integer", "null"]},
        "has_more": {"type": "boolean"},
    },
}
_VERIFICATION: Schema = {
    "type": "object",
    "required": ["object", "checked", "ok", "broken", "has_more"],
    "properties": {
        "object": {"const": "audit.verification"},
        "checked": {"type": "integer"},
        "ok": {"type": "boolean"},
        "broken": {"type": "array", "items": {
            "type": "object", "required": ["response_id", "reason"],
            "properties": {"response_id": _STRING, "reason": _STRING}}},
        "has_more": {"type": "boolean"},
    },
}
_ACTIVITY: Schema = {
    "type": "object",
    "required": ["object", "now", "window_s", "bucket_s", "buckets", "running", "viewer"],
    "properties": {
        "object": {"const": "inspect.activity"},
        "now": {"type": "number"},
        "window_s": {"type": "integer"},
        "bucket_s": {"type": "integer"},
        "buckets": {"type": "array", "items": {"type": "object", "properties": {
            "start": {"type": "integer"}, "status": _STRING, "count": {"type": "integer"}}}},
        "running": {"type": "array", "items": {"type": "object", "properties": {
            "worker": {"type": ["string", "null"]}, "responses": {"type": "integer"},
            "lease_until": {"type": ["number", "null"]}}}},
        "viewer": {"type": "object", "properties": {
            "tenant": _STRING, "admin": {"type": "boolean"}}},
    },
}


def inspect_paths() -> dict[str, Schema]:
    """Operations by path; GET /v1/responses joins the create operation's path."""
    unauthorized = _error("Missing, unknown or revoked API key.")
    return {
        "/v1/responses": {"get": {
            "operationId": "listResponses",
            "tags": ["responses"],
            "summary": "List responses, newest first (an admin key reads every tenant's)",
            "parameters": [
                *_RESPONSE_FILTERS,
                _query("after", _STRING, "The last id of the previous page."),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 100,
                                 "default": 20}),
                _query("order", {"type": "string", "enum": ["asc", "desc"], "default": "desc"},
                       "By created_at (whole seconds), then id."),
            ],
            "responses": {"200": _json("A page of responses.", _RESPONSE_LIST),
                          "400": _error("Malformed parameter."), "401": unauthorized,
                          "403": _error("Another tenant asked for by a non-admin key.")},
        }},
        "/v1/responses/{response_id}/events": {"get": {
            "operationId": "listResponseEvents",
            "tags": ["responses"],
            "summary": "Page through a response's event log, or follow it (stream=true)",
            "parameters": [
                _RESPONSE_ID,
                _query("after", {"type": "integer", "minimum": -1, "default": -1}),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000,
                                 "default": 100}),
                _query("stream", {"type": "boolean", "default": False},
                       "text/event-stream: the stored events after `after`, then live ones."),
            ],
            "responses": {
                "200": {"description": "A page of the log, or its events as a stream.",
                        "content": {
                            "application/json": {"schema": _EVENT_PAGE},
                            "text/event-stream": {
                                "schema": {"$ref": "#/components/schemas/ServerSentEvent"}},
                        }},
                "400": _error("Malformed parameter."), "401": unauthorized,
                "404": _error("No such response for this tenant."),
            },
        }},
        "/v1/audit/verify": {"get": {
            "operationId": "verifyChains",
            "tags": ["audit"],
            "summary": "Check the event hash chains of one response or of a range",
            "parameters": [
                _query("response_id", _STRING),
                *_RESPONSE_FILTERS,
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000,
                                 "default": 100}),
            ],
            "responses": {"200": _json("What was checked and what is broken.", _VERIFICATION),
                          "400": _error("Malformed parameter."), "401": unauthorized,
                          "403": _error("Another tenant asked for by a non-admin key."),
                          "404": _error("No such response for this tenant.")},
        }},
        "/v1/inspect/activity": {"get": {
            "operationId": "inspectActivity",
            "tags": ["inspect"],
            "summary": "Responses created per time bucket and status; running ones by worker",
            "parameters": [
                _query("window_s", {"type": "integer", "minimum": 60, "maximum": 86400,
                                    "default": 3600}),
                _query("bucket_s", {"type": "integer", "minimum": 10, "maximum": 3600,
                                    "default": 60}),
                _TENANT,
            ],
            "responses": {"200": _json("Recent activity.", _ACTIVITY),
                          "400": _error("Malformed parameter."), "401": unauthorized,
                          "403": _error("Another tenant asked for by a non-admin key.")},
        }},
    }

"""The OpenAPI document, written out rather than derived from the handlers.

Handlers read their bodies and query strings themselves (to answer in OpenAI's error envelope),
so nothing could be inferred from their signatures; this document says what they accept and
answer, JSON and `text/event-stream` variants and errors included, with this deployment's
limits. A test holds it to the routes the app really has, and the fuzzing runs against it.
"""

from __future__ import annotations

from typing import Any

from domain.limits import MAX_JSON_DEPTH
from domain.request import MAX_METADATA_KEY, MAX_METADATA_PAIRS, MAX_METADATA_VALUE
from service.settings import Settings

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


_STRING_OR_NULL: Schema = {"type": ["string", "null"]}
_BOOL_OR_NULL: Schema = {"type": ["boolean", "null"]}
_OBJECT: Schema = {"type": "object"}

STREAM_EVENT_TYPES = [
    "response.created",
    "response.queued",
    "response.in_progress",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.delta",
    "response.output_text.done",
    "response.refusal.delta",
    "response.refusal.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.reasoning_text.delta",
    "response.reasoning_text.done",
    "response.completed",
    "response.failed",
    "response.incomplete",
]

_SSE_DESCRIPTION = (
    "One server-sent event: `id: <sequence_number>`, `event: <type>` and one `data:` line "
    "holding a `ResponseStreamEvent` as JSON. A stream ends with its terminal event "
    "(`response.completed`, `response.failed` or `response.incomplete`) and then "
    "`data: [DONE]`; `: keep-alive` comment lines may come between events."
)


def _schemas(settings: Settings) -> dict[str, Schema]:
    metadata: Schema = {
        "type": "object",
        "maxProperties": MAX_METADATA_PAIRS,
        "propertyNames": {"maxLength": MAX_METADATA_KEY},
        "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE},
        "description": f"Up to {MAX_METADATA_PAIRS} pairs; keys up to {MAX_METADATA_KEY} "
        f"characters, values up to {MAX_METADATA_VALUE}.",
    }
    item: Schema = {
        "type": "object",
        "description": "An input item: a message (`role` user, system, developer or assistant; "
        "`content` a string or content parts), a function call or its output, a reasoning "
        "item or an `item_reference`. Items of unknown types are ignored.",
        "additionalProperties": True,
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["message", "type", "param", "code"],
                    "additionalProperties": False,
                    "properties": {
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                        "param": _STRING_OR_NULL,
                        "code": _STRING_OR_NULL,
                    },
                }
            },
        },
        "CreateResponse": {
            "type": "object",
            "required": ["model"],
            "additionalProperties": True,
            "description": "Unknown fields are accepted and ignored. Arrays and objects may "
            f"nest at most {MAX_JSON_DEPTH} levels deep.",
            "properties": {
                "model": {"type": "string", "minLength": 1},
                "input": {
                    "anyOf": [
                        {"type": "string"},
                        {"type": "array", "maxItems": settings.max_input_items, "items": item},
                    ]
                },
                "instructions": _STRING_OR_NULL,
                "max_output_tokens": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "maximum": settings.max_output_tokens_ceiling,
                },
                "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
                "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "presence_penalty": {"type": ["number", "null"], "minimum": -2, "maximum": 2},
                "frequency_penalty": {"type": ["number", "null"], "minimum": -2, "maximum": 2},
                "top_logprobs": {"type": ["integer", "null"], "minimum": 0, "maximum": 20},
                "metadata": _nullable(metadata),
                "store": _BOOL_OR_NULL,
                "stream": {
                    "type": ["boolean", "null"],
                    "description": "true: the reply is a text/event-stream.",
                },
                "background": {
                    "type": ["boolean", "null"],
                    "description": "Run with no client attached; needs `store`.",
                },
                "text": _nullable(
                    {
                        "type": "object",
                        "properties": {
                            "format": {
                                "type": "object",
                                "properties": {
                                    "type": {"enum": ["text", "json_schema", "json_object"]},
                                    "name": _STRING_OR_NULL,
                                    "schema": _nullable(_OBJECT),
                                    "strict": _BOOL_OR_NULL,
                                    "description": _STRING_OR_NULL,
                                },
                            },
                            "verbosity": _STRING_OR_NULL,
                        },
                    }
                ),
                "reasoning": _nullable(
                    {
                        "type": "object",
                        "properties": {"effort": _STRING_OR_NULL, "summary": _STRING_OR_NULL},
                    }
                ),
                "user": _STRING_OR_NULL,
                "safety_identifier": _STRING_OR_NULL,
                "prompt_cache_key": _STRING_OR_NULL,
                "service_tier": _STRING_OR_NULL,
                "truncation": _STRING_OR_NULL,
                "include": _nullable({"type": "array", "items": {"type": "string"}}),
                "tools": _nullable({"type": "array", "items": _OBJECT}),
                "tool_choice": {"anyOf": [{"type": "string"}, _OBJECT, {"type": "null"}]},
                "parallel_tool_calls": _BOOL_OR_NULL,
                "max_tool_calls": {"type": ["integer", "null"], "minimum": 1},
                "previous_response_id": _STRING_OR_NULL,
                "conversation": {"anyOf": [{"type": "string"}, _OBJECT, {"type": "null"}]},
            },
        },
        "Item": {
            "type": "object",
            "required": ["id", "type"],
            "properties": {"id": {"type": "string"}, "type": {"type": "string"}},
            "additionalProperties": True,
        },
        "Usage": {
            "type": "object",
            "required": [
                "input_tokens",
                "input_tokens_details",
                "output_tokens",
                "output_tokens_details",
                "total_tokens",
            ],
            "properties": {
                "input_tokens": {"type": "integer"},
                "input_tokens_details": {
                    "type": "object",
                    "required": ["cached_tokens"],
                    "properties": {"cached_tokens": {"type": "integer"}},
                },
                "output_tokens": {"type": "integer"},
                "output_tokens_details": {
                    "type": "object",
                    "required": ["reasoning_tokens"],
                    "properties": {"reasoning_tokens": {"type": "integer"}},
                },
                "total_tokens": {"type": "integer"},
            },
        },
        "Response": {
            "type": "object",
            "required": list(_RESPONSE_FIELDS),
            "properties": dict(_RESPONSE_FIELDS, metadata=metadata),
        },
        "ResponseStreamEvent": {
            "type": "object",
            "description": "One event of a response's log, as each `data:` line carries it.",
            "required": ["type", "sequence_number"],
            "properties": {
                "type": {"enum": STREAM_EVENT_TYPES},
                "sequence_number": {"type": "integer", "minimum": 0},
                "response": _ref("Response"),
                "output_index": {"type": "integer"},
                "content_index": {"type": "integer"},
                "item_id": {"type": "string"},
                "item": _ref("Item"),
                "part": _OBJECT,
                "delta": {"type": "string"},
                "text": {"type": "string"},
                "refusal": {"type": "string"},
                "arguments": {"type": "string"},
            },
        },
        "ServerSentEvent": {
            "description": _SSE_DESCRIPTION,
            "anyOf": [
                {
                    "type": "object",
                    "required": ["id", "event", "data"],
                    "properties": {
                        "id": {"type": "string", "pattern": "^[0-9]+$"},
                        "event": {"enum": STREAM_EVENT_TYPES},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": _ref("ResponseStreamEvent"),
                        },
                    },
                },
                {
                    "type": "object",
                    "required": ["data"],
                    "properties": {"data": {"const": "[DONE]"}},
                },
            ],
        },
        "DeletedResponse": {
            "type": "object",
            "required": ["id", "object", "deleted"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "object": {"const": "response"},
                "deleted": {"const": True},
            },
        },
        "InputItemList": {
            "type": "object",
            "required": ["object", "data", "first_id", "last_id", "has_more"],
            "additionalProperties": False,
            "properties": {
                "object": {"const": "list"},
                "data": {"type": "array", "items": _ref("Item")},
                "first_id": _STRING_OR_NULL,
                "last_id": _STRING_OR_NULL,
                "has_more": {"type": "boolean"},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "role", "engine", "running", "dependencies"],
            "properties": {
                "status": {"const": "ok"},
                "role": {"enum": ["embedded", "api", "worker"]},
                "engine": {"type": "string"},
                "running": {"type": "integer"},
                "dependencies": {"type": "object", "additionalProperties": {"type": "boolean"}},
            },
        },
        "Readiness": {
            "type": "object",
            "required": ["status", "dependencies"],
            "properties": {
                "status": {"enum": ["ready", "unavailable"]},
                "dependencies": {"type": "object", "additionalProperties": {"type": "boolean"}},
            },
        },
    }


_RESPONSE_FIELDS: dict[str, Schema] = {
    "id": {"type": "string"},
    "object": {"const": "response"},
    "created_at": {"type": "integer"},
    "status": {"enum": ["queued", "in_progress", "completed", "failed", "cancelled", "incomplete"]},
    "background": {"type": "boolean"},
    "completed_at": {"type": ["integer", "null"]},
    "error": _nullable(
        {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    ),
    "incomplete_details": _nullable(
        {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}
    ),
    "instructions": _STRING_OR_NULL,
    "max_output_tokens": {"type": ["integer", "null"]},
    "max_tool_calls": {"type": ["integer", "null"]},
    "model": {"type": "string"},
    "output": {"type": "array", "items": _ref("Item")},
    "parallel_tool_calls": {"type": "boolean"},
    "previous_response_id": _STRING_OR_NULL,
    "conversation": _nullable(_OBJECT),
    "prompt_cache_key": _STRING_OR_NULL,
    "reasoning": _nullable(_OBJECT),
    "safety_identifier": _STRING_OR_NULL,
    "service_tier": {"type": "string"},
    "store": {"type": "boolean"},
    "temperature": {"type": "number"},
    "text": _OBJECT,
    "tool_choice": {"anyOf": [{"type": "string"}, _OBJECT]},
    "tools": {"type": "array", "items": _OBJECT},
    "top_logprobs": {"type": "integer"},
    "top_p": {"type": "number"},
    "presence_penalty": {"type": "number"},
    "frequency_penalty": {"type": "number"},
    "truncation": {"type": "string"},
    "usage": _nullable(_ref("Usage")),
    "user": _STRING_OR_NULL,
    "metadata": _OBJECT,  # replaced by the metadata schema in _schemas
}


def _error(description: str, headers: dict[str, Schema] | None = None) -> Schema:
    reply: Schema = {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if headers:
        reply["headers"] = headers
    return reply


_UNAUTHORIZED = _error(
    "Missing, unknown or revoked API key.",
    {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
)
_NOT_FOUND = _error("No such response for this tenant (another tenant's ids answer the same).")
_RETRY_AFTER = {
    "Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}
}


def _response_or_stream(description: str) -> Schema:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": _ref("Response")},
            "text/event-stream": {"schema": _ref("ServerSentEvent")},
        },
    }


_RESPONSE_ID = {
    "name": "response_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}


_LIST: Schema = {
    "type": "object",
    "required": ["object", "data", "has_more"],
    "properties": {
        "object": {"const": "list"},
        "data": {"type": "array"},
        "has_more": {"type": "boolean"},
    },
}
_CONVERSATION: Schema = {
    "type": "object",
    "required": ["id", "object"],
    "properties": {"id": {"type": "string"}, "object": {"type": "string"}},
}


def _json_reply(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _conversation_paths() -> dict[str, Schema]:
    """The Conversations API. Item shapes are those of input items (protocol.md)."""
    conversation_id = {
        "name": "conversation_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    item_id = {"name": "item_id", "in": "path", "required": True, "schema": {"type": "string"}}
    body = {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}
    missing = _error("No such conversation (or item) for this tenant.")

    def operation(
        op_id: str,
        summary: str,
        reply: Schema,
        *,
        with_body: bool = False,
        extra: dict[str, Schema] | None = None,
    ) -> Schema:
        spec: Schema = {
            "operationId": op_id,
            "tags": ["conversations"],
            "summary": summary,
            "responses": {
                "200": reply,
                "400": _error("Invalid request."),
                "401": _UNAUTHORIZED,
                "404": missing,
                **(extra or {}),
            },
        }
        if with_body:
            spec["requestBody"] = body
        return spec

    conversation = _json_reply("The conversation.", _CONVERSATION)
    listing = [
        {"name": "after", "in": "query", "required": False, "schema": {"type": "string"}},
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        },
        {
            "name": "order",
            "in": "query",
            "required": False,
            "schema": {"enum": ["asc", "desc"], "default": "desc"},
        },
    ]
    items_get = operation(
        "listConversationItems",
        "List a conversation's items",
        _json_reply("A page of items.", _LIST),
    )
    items_get["parameters"] = listing
    return {
        "/v1/conversations": {
            "post": operation(
                "createConversation", "Create a conversation", conversation, with_body=True
            ),
        },
        "/v1/conversations/{conversation_id}": {
            "parameters": [conversation_id],
            "get": operation("getConversation", "Retrieve a conversation", conversation),
            "post": operation(
                "updateConversation",
                "Update a conversation's metadata",
                conversation,
                with_body=True,
            ),
            "delete": operation(
                "deleteConversation",
                "Delete a conversation",
                _json_reply("Deleted.", {"type": "object"}),
            ),
        },
        "/v1/conversations/{conversation_id}/items": {
            "parameters": [conversation_id],
            "post": operation(
                "addConversationItems",
                "Add items (up to 20)",
                _json_reply("The added items.", _LIST),
                with_body=True,
            ),
            "get": items_get,
        },
        "/v1/conversations/{conversation_id}/items/{item_id}": {
            "parameters": [conversation_id, item_id],
            "get": operation(
                "getConversationItem",
                "Retrieve an item",
                _json_reply("The item.", {"type": "object"}),
            ),
            "delete": operation(
                "deleteConversationItem",
                "Delete an item",
                _json_reply("The conversation.", _CONVERSATION),
            ),
        },
    }


def _paths(settings: Settings) -> dict[str, Schema]:
    cursor = {"type": "integer", "minimum": -1, "maximum": 2**31 - 1}
    return {
        "/v1/responses": {
            "post": {
                "operationId": "createResponse",
                "tags": ["responses"],
                "summary": "Create a response",
                "description": "`stream: true` answers text/event-stream; `background: true` "
                "(without stream) answers at once with status `queued`.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CreateResponse")}},
                },
                "responses": {
                    "200": _response_or_stream("The Response, or its events as they happen."),
                    "400": _error("Invalid request; `param` names the field."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No such conversation for this tenant (`conversation`)."),
                    "413": _error(f"Body over {settings.max_body_bytes} bytes."),
                    "415": _error("Body not sent as application/json."),
                    "429": _error(
                        "Too many responses of this tenant queued or in progress.", _RETRY_AFTER
                    ),
                },
            }
        },
        "/v1/responses/{response_id}": {
            "parameters": [_RESPONSE_ID],
            "get": {
                "operationId": "getResponse",
                "tags": ["responses"],
                "summary": "Retrieve a response, or stream its events",
                "description": "`stream=true` replays the stored events after the cursor "
                "(`Last-Event-ID`, else `starting_after`, else from the start) and follows "
                "the live ones to the end.",
                "parameters": [
                    {
                        "name": "stream",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "boolean"},
                    },
                    {"name": "starting_after", "in": "query", "required": False, "schema": cursor},
                    {"name": "Last-Event-ID", "in": "header", "required": False, "schema": cursor},
                ],
                "responses": {
                    "200": _response_or_stream(
                        "The Response (the fold of its log while it runs), or its events."
                    ),
                    "400": _error("Malformed parameter."),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                    "429": _error("Too many clients streaming this response.", _RETRY_AFTER),
                },
            },
            "delete": {
                "operationId": "deleteResponse",
                "tags": ["responses"],
                "summary": "Delete a response",
                "responses": {
                    "200": {
                        "description": "Deleted.",
                        "content": {"application/json": {"schema": _ref("DeletedResponse")}},
                    },
                    "400": _error("The response is still in progress."),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                },
            },
        },
        "/v1/responses/{response_id}/cancel": {
            "parameters": [_RESPONSE_ID],
            "post": {
                "operationId": "cancelResponse",
                "tags": ["responses"],
                "summary": "Cancel a background response",
                "description": "Queued or in-progress background responses end with status "
                "`cancelled`; a repeated cancel answers the same object. No body.",
                "responses": {
                    "200": {
                        "description": "The cancelled Response.",
                        "content": {"application/json": {"schema": _ref("Response")}},
                    },
                    "400": _error("Not a background response, or it has already ended."),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                },
            },
        },
        "/v1/responses/{response_id}/input_items": {
            "parameters": [_RESPONSE_ID],
            "get": {
                "operationId": "listInputItems",
                "tags": ["responses"],
                "summary": "List a response's input items",
                "parameters": [
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                    {
                        "name": "order",
                        "in": "query",
                        "required": False,
                        "schema": {"enum": ["asc", "desc"], "default": "desc"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "A page of input items.",
                        "content": {"application/json": {"schema": _ref("InputItemList")}},
                    },
                    "400": _error("Malformed parameter."),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                },
            },
        },
        **_conversation_paths(),
        "/v1/audit/tool_calls": {
            "get": {
                "operationId": "listToolCalls",
                "tags": ["audit"],
                "summary": "List recorded tool calls (an admin key reads every tenant's)",
                "parameters": [
                    *(
                        {
                            "name": name,
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        }
                        for name in ("name", "response_id", "conversation_id", "status", "after")
                    ),
                    {
                        "name": "has_output",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "boolean"},
                    },
                    {
                        "name": "created_after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "number"},
                    },
                    {
                        "name": "created_before",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "number"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                ],
                "responses": {
                    "200": _json_reply("A page of tool-call records.", _LIST),
                    "400": _error("Malformed parameter."),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "tags": ["operations"],
                "summary": "Liveness, with each dependency's state",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Alive.",
                        "content": {"application/json": {"schema": _ref("Health")}},
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "tags": ["operations"],
                "summary": "Readiness: 200 when every dependency answers, else 503",
                "security": [],
                "responses": {
                    code: {
                        "description": description,
                        "content": {"application/json": {"schema": _ref("Readiness")}},
                    }
                    for code, description in (("200", "Ready."), ("503", "Not ready."))
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "tags": ["operations"],
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def _count_and_socket(document: dict[str, Any], settings: Settings) -> None:
    """POST /v1/responses/input_tokens, and WebSocket mode on /v1/responses. OpenAPI has no
    words for a WebSocket: its handshake, messages and events are in the document's
    `x-websocket` (kept out of `paths`, where every key must be an HTTP method)."""
    paths, schemas = document["paths"], document["components"]["schemas"]
    count_request = {
        **schemas["CreateResponse"],
        "description": "The body of a create (`model` optional: the engine's default): the "
        "same input, instructions, tools, previous_response_id or conversation.",
    }
    count_request.pop("required", None)
    schemas["InputTokenCountRequest"] = count_request
    schemas["InputTokenCount"] = {
        "type": "object",
        "required": ["object", "input_tokens"],
        "additionalProperties": False,
        "properties": {
            "object": {"const": "response.input_tokens"},
            "input_tokens": {"type": "integer", "minimum": 0},
        },
    }
    schemas["WebSocketClientEvent"] = {
        "type": "object",
        "required": ["type"],
        "additionalProperties": True,
        "description": "`response.create` (the create body's fields, plus an optional "
        "`stream_id` echoed on its events; `stream` is implicit, `background` and "
        "`generate: false` are refused) or `response.processed` (an acknowledgement).",
        "properties": {
            "type": {"enum": ["response.create", "response.processed"]},
            "stream_id": {"type": "string"},
        },
    }
    schemas["WebSocketErrorEvent"] = {
        "type": "object",
        "required": ["type", "status", "error"],
        "properties": {
            "type": {"const": "error"},
            "status": {"type": "integer", "description": "The HTTP status it would have had."},
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": _STRING_OR_NULL,
                    "code": _STRING_OR_NULL,
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        },
    }
    paths["/v1/responses/input_tokens"] = {
        "post": {
            "operationId": "countInputTokens",
            "tags": ["responses"],
            "summary": "Count a create request's input tokens",
            "description": "Counted by the engine's own tokenizer where it offers one (vLLM's "
            "and SGLang's `/tokenize`; the built-in engine's count), else estimated: the "
            "`x-token-count-source` header says which (`engine` or `estimate`).",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("InputTokenCountRequest")}},
            },
            "responses": {
                "200": {
                    "description": "The count.",
                    "headers": {
                        "x-token-count-source": {
                            "required": True,
                            "schema": {"enum": ["engine", "estimate"]},
                        }
                    },
                    "content": {"application/json": {"schema": _ref("InputTokenCount")}},
                },
                "400": _error("Invalid request; `param` names the field."),
                "401": _UNAUTHORIZED,
                "404": _error("No such conversation for this tenant (`conversation`)."),
                "413": _error(f"Body over {settings.max_body_bytes} bytes."),
                "415": _error("Body not sent as application/json."),
            },
        }
    }
    paths["/v1/responses"]["post"]["description"] += (
        " The same path serves WebSocket mode (`client.responses.connect()`): see `x-websocket`."
    )
    document["x-websocket"] = {
        "path": "/v1/responses",
        "summary": "WebSocket mode: `client.responses.connect()`",
        "handshake": "GET /v1/responses with `Upgrade: websocket` and the same bearer key as "
        "HTTP; a missing or wrong key is refused with HTTP 401 in the error envelope.",
        "query": {
            "response_id": "Resume this response on the new socket (with `starting_after`).",
            "starting_after": "The last sequence number the client holds (-1 for all).",
        },
        "clientMessages": _ref("WebSocketClientEvent"),
        "serverMessages": {"oneOf": [_ref("ResponseStreamEvent"), _ref("WebSocketErrorEvent")]},
        "description": "Each `response.create` is answered with its events exactly as SSE "
        "carries them (same JSON, same sequence numbers); responses on one connection run "
        f"in turn. Messages over {settings.max_body_bytes} bytes are refused.",
    }


def build_openapi(settings: Settings) -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "responsed",
            "version": "0.1.0",
            "description": "An event-sourced server for the OpenAI Responses API. Errors always "
            'come as `{"error": {message, type, param, code}}`. Query parameters not listed '
            "here (such as `include[]`) are accepted and ignored.",
        },
        "paths": _paths(settings),
        "components": {"schemas": _schemas(settings)},
    }
    _count_and_socket(document, settings)
    if settings.auth_required:
        document["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key made by `responsed keys create` (rsd_…).",
            }
        }
        document["security"] = [{"bearer": []}]
    else:
        # No key needed: the document says so, and carries no 401s.
        for path in document["paths"].values():
            for operation in path.values():
                if isinstance(operation, dict) and "responses" in operation:
                    operation["responses"].pop("401", None)
                    operation.pop("security", None)
    return document

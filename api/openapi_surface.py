"""The OpenAPI description of compaction and models (POST /v1/responses/compact,
GET /v1/models, GET /v1/models/{model_id}); api.openapi splices it into the document."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _json(description: str, name: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


_UNAUTHORIZED = {
    "description": "Missing, unknown or revoked API key.",
    "headers": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    "content": {"application/json": {"schema": _ref("Error")}},
}

CONTEXT_MANAGEMENT: Schema = {
    "type": ["array", "null"],
    "description": "`[{type: \"compaction\", compact_threshold: N}]`: when the input passes N "
    "tokens (estimated at four characters a token), the server compacts it first; the output "
    "then starts with a `compaction` item.",
    "items": {
        "type": "object",
        "required": ["type", "compact_threshold"],
        "properties": {
            "type": {"const": "compaction"},
            "compact_threshold": {"type": "integer", "minimum": 1},
        },
    },
}


def surface_schemas() -> dict[str, Schema]:
    model: Schema = {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "model"},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
            "context_window": {
                "type": "integer",
                "description": "The engine's context length, where it tells one.",
            },
        },
    }
    return {
        "CompactResponse": {
            "type": "object",
            "required": ["model"],
            "additionalProperties": True,
            "description": "Unknown fields are accepted and ignored; `prompt_cache_*`, "
            "`service_tier` and `image` are accepted and have no effect.",
            "properties": {
                "model": {"type": "string", "minLength": 1},
                "input": {"anyOf": [{"type": "string"}, {"type": "array"}, {"type": "null"}]},
                "instructions": {"type": ["string", "null"]},
                "previous_response_id": {"type": ["string", "null"]},
            },
        },
        "CompactionItem": {
            "type": "object",
            "required": ["id", "type", "encrypted_content"],
            "properties": {
                "id": {"type": "string"},
                "type": {"const": "compaction"},
                "encrypted_content": {"type": "string"},
            },
        },
        "CompactedResponse": {
            "type": "object",
            "required": ["id", "object", "created_at", "output", "usage"],
            "properties": {
                "id": {"type": "string"},
                "object": {"const": "response.compaction"},
                "created_at": {"type": "integer"},
                "output": {
                    "type": "array",
                    "description": "The input's user messages, then one compaction item.",
                    "items": {"anyOf": [_ref("Item"), _ref("CompactionItem")]},
                },
                "usage": _ref("Usage"),
            },
        },
        "Model": model,
        "ModelList": {
            "type": "object",
            "required": ["object", "data"],
            "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": model}},
        },
    }


def surface_paths() -> dict[str, Schema]:
    return {
        "/v1/responses/compact": {
            "post": {
                "operationId": "compactResponse",
                "tags": ["responses"],
                "summary": "Compact a conversation",
                "description": "The engine summarises the input (with `previous_response_id`'s "
                "history before it); the summary comes back sealed in a `compaction` item, "
                "which a later create takes as input. Nothing is stored.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CompactResponse")}},
                },
                "responses": {
                    "200": _json("The compacted window.", "CompactedResponse"),
                    "400": _error("Invalid request, or a compaction item that does not verify "
                                  "(`invalid_encrypted_content`)."),
                    "401": _UNAUTHORIZED,
                    "413": _error("Body too large."),
                    "415": _error("Body not sent as application/json."),
                    "503": _error("The engine could not write the summary; retry."),
                },
            }
        },
        "/v1/models": {
            "get": {
                "operationId": "listModels",
                "tags": ["models"],
                "summary": "List the models clients may ask for",
                "description": "The model map's names and what the engines list (asked at most "
                "every 30 s). An engine that does not answer is left out, never an error.",
                "responses": {
                    "200": _json("The models.", "ModelList"),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/v1/models/{model_id}": {
            "parameters": [
                {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": {
                "operationId": "retrieveModel",
                "tags": ["models"],
                "summary": "Retrieve a model",
                "responses": {
                    "200": _json("The model.", "Model"),
                    "401": _UNAUTHORIZED,
                    "404": _error("Not a model this server lists (`model_not_found`)."),
                },
            },
        },
    }

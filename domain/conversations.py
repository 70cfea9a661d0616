"""The Conversations API's request bodies and object shapes."""

from __future__ import annotations

from typing import Any

from domain.errors import InvalidRequest
from domain.inputs import Item, normalise_input
from domain.request import MAX_METADATA_KEY, MAX_METADATA_PAIRS, MAX_METADATA_VALUE

MAX_ADDED_ITEMS = 20


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest(
            "The request body must be a JSON object.", param=None, code="invalid_json"
        )
    return body


def parse_metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(
            "Invalid type for 'metadata': expected an object.",
            param="metadata",
            code="invalid_type",
        )
    if len(value) > MAX_METADATA_PAIRS:
        raise InvalidRequest(
            f"Invalid 'metadata': at most {MAX_METADATA_PAIRS} key-value pairs are allowed.",
            param="metadata",
            code="invalid_value",
        )
    for key, item in value.items():
        if not isinstance(item, str):
            raise InvalidRequest(
                f"Invalid type for 'metadata.{key}': expected a string.",
                param=f"metadata.{key}",
                code="invalid_type",
            )
        if len(key) > MAX_METADATA_KEY or len(item) > MAX_METADATA_VALUE:
            raise InvalidRequest(
                f"Invalid 'metadata': keys are at most {MAX_METADATA_KEY} characters, values at "
                f"most {MAX_METADATA_VALUE}.",
                param=f"metadata.{key}",
                code="invalid_value",
            )
    return value


def _items(value: Any, required: bool) -> list[Item]:
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(
            "Invalid type for 'items': expected an array of items.",
            param="items",
            code="missing_required_parameter" if value is None else "invalid_type",
        )
    if len(value) > MAX_ADDED_ITEMS:
        raise InvalidRequest(
            f"Invalid 'items': at most {MAX_ADDED_ITEMS} items can be added at once.",
            param="items",
            code="invalid_value",
        )
    try:
        return normalise_input(value)
    except InvalidRequest as error:  # name the field of this endpoint, not 'input'
        if error.param and error.param.startswith("input"):
            error.param = "items" + error.param[len("input") :]
            error.message = error.message.replace("'input", "'items")
        raise


def parse_create(body: Any) -> tuple[list[Item], dict[str, str]]:
    body = _body(body)
    return _items(body.get("items"), required=False), parse_metadata(body.get("metadata"))


def parse_update(body: Any) -> dict[str, str]:
    body = _body(body)
    if "metadata" not in body:
        raise InvalidRequest(
            "Missing required parameter: 'metadata'.",
            param="metadata",
            code="missing_required_parameter",
        )
    return parse_metadata(body["metadata"])


def parse_add(body: Any) -> list[Item]:
    return _items(_body(body).get("items"), required=True)


def conversation_object(
    conversation_id: str, created_at: int, metadata: dict[str, str]
) -> dict[str, Any]:
    return {
        "id": conversation_id,
        "object": "conversation",
        "created_at": created_at,
        "metadata": metadata,
    }

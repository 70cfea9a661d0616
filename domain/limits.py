"""Request limits that hold whatever a client sends: nesting depth, input size, output size."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidRequest
from domain.request import CreateResponse

# Deeper bodies are refused: events embed the request's values a few levels down, and the JSON
# encoder stops at 255 levels. No real request comes near this.
MAX_JSON_DEPTH = 64


def check_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise InvalidRequest if arrays and objects nest more than `limit` levels deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            raise InvalidRequest(
                f"The request body is nested too deeply: at most {limit} levels of arrays and "
                "objects are allowed.",
                code="invalid_value",
            )
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


@dataclass(frozen=True, slots=True)
class RequestLimits:
    max_input_items: int = 10_000
    max_output_tokens: int = 131_072


def check_request(request: CreateResponse, limits: RequestLimits) -> None:
    """The deployment's ceilings, in OpenAI's words for them."""
    if isinstance(request.input, list) and len(request.input) > limits.max_input_items:
        raise InvalidRequest(
            f"Invalid 'input': array too long. Expected an array with maximum length "
            f"{limits.max_input_items}, but got an array with length {len(request.input)} "
            "instead.",
            param="input",
            code="array_above_max_length",
        )
    tokens = request.max_output_tokens
    if tokens is not None and tokens > limits.max_output_tokens:
        raise InvalidRequest(
            f"Invalid 'max_output_tokens': integer above maximum value. Expected a value <= "
            f"{limits.max_output_tokens}, but got {tokens} instead.",
            param="max_output_tokens",
            code="integer_above_max_value",
        )

"""The create-response request: validation of every field a client may send.

Unknown fields are accepted and ignored (real clients send many); known fields are checked
strictly so that a wrong type is a clear 400 instead of a surprise further down.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from domain.errors import InvalidRequest
from domain.tools import check_tools

MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512

# Key-value pairs a client attaches; the limits are checked by the validators below and shown
# in the JSON Schema of every model that carries metadata.
Metadata = Annotated[
    dict[str, str],
    Field(
        json_schema_extra={
            "maxProperties": MAX_METADATA_PAIRS,
            "propertyNames": {"maxLength": MAX_METADATA_KEY},
            "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE},
        },
        description=f"Up to {MAX_METADATA_PAIRS} pairs; keys up to {MAX_METADATA_KEY} "
        f"characters, values up to {MAX_METADATA_VALUE}.",
    ),
]


class TextFormat(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    type: Literal["text", "json_schema", "json_object"] = "text"
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    format: TextFormat = Field(default_factory=TextFormat)
    verbosity: str | None = None


class ReasoningConfig(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    effort: str | None = None
    summary: str | None = None


class CreateResponse(BaseModel):
    """POST /v1/responses body. `input` items are checked separately by domain.inputs.

    Unknown fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)

    model: str = Field(min_length=1)
    input: str | list[Any] = Field(
        "",
        description="Text, or input items: messages (`role` user, system, developer or "
        "assistant; `content` a string or content parts), function or custom tool calls and "
        "their outputs, reasoning items, `item_reference`s.",
    )
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    metadata: Metadata | None = None
    store: bool | None = True
    stream: bool | None = Field(False, description="true: the reply is a text/event-stream.")
    background: bool | None = Field(
        False, description="Run with no client attached; needs `store`."
    )
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    truncation: str | None = None
    include: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = True
    max_tool_calls: int | None = Field(default=None, ge=1)
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    context_management: list[dict[str, Any]] | None = None  # checked by domain.compaction

    @field_validator("model", "previous_response_id", "user", "safety_identifier",
                     "prompt_cache_key")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # NUL cannot be stored in a PostgreSQL text column; no real value contains one.
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return value
        if len(value) > MAX_METADATA_PAIRS:
            raise ValueError(f"at most {MAX_METADATA_PAIRS} key-value pairs are allowed")
        for key, item in value.items():
            if len(key) > MAX_METADATA_KEY:
                raise ValueError(f"keys are at most {MAX_METADATA_KEY} characters")
            if len(item) > MAX_METADATA_VALUE:
                raise ValueError(f"values are at most {MAX_METADATA_VALUE} characters")
        return value

    @property
    def conversation_id(self) -> str | None:
        """The conversation's id, whether `conversation` was sent as the id or as {"id": ...}."""
        return _conversation_id(self.conversation)


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "dict_type": "an object",
    "list_type": "an array",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def param_path(loc: tuple[int | str, ...]) -> str:
    """('input', 0, 'content') -> 'input[0].content', the way OpenAI names params."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


def _first_error(error: ValidationError) -> InvalidRequest:
    # For unions pydantic reports one error per branch; the first names the field well enough.
    details = error.errors(include_url=False)
    first = details[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.endswith("]")))
    loc = tuple(p for p in loc if p not in ("str", "list[any]", "dict[str,any]", "function-after"))
    param = param_path(loc) or None
    kind = first["type"]
    if kind == "missing":
        return InvalidRequest(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    if kind == "literal_error":
        return InvalidRequest(
            f"Invalid value for '{param}': {first['msg']}.", param=param, code="invalid_value"
        )
    expected = _TYPE_NAMES.get(kind) or ("a valid value" if kind.endswith("_type") else None)
    if expected is not None:
        got = _json_type(first.get("input"))
        return InvalidRequest(
            f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
            param=param,
            code="invalid_type",
        )
    message = first["msg"].removeprefix("Value error, ")
    return InvalidRequest(f"Invalid '{param}': {message}.", param=param, code="invalid_value")


def parse_create_request(body: Any) -> CreateResponse:
    if not isinstance(body, dict):
        raise InvalidRequest(
            "The request body must be a JSON object.", param=None, code="invalid_json"
        )
    try:
        request = CreateResponse.model_validate(body)
    except ValidationError as error:
        raise _first_error(error) from None
    check_tools(request.tools, request.tool_choice)
    request.conversation = request.conversation_id
    return request


def _conversation_id(value: str | dict[str, Any] | None) -> str | None:
    """`conversation` is an id or {"id": ...}."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("id")
        if not isinstance(value, str):
            raise InvalidRequest(
                "Missing required parameter: 'conversation.id'.",
                param="conversation.id",
                code="missing_required_parameter",
            )
    if not value or "\x00" in value or len(value) > 256:
        raise InvalidRequest(
            "Invalid 'conversation': expected a conversation id.",
            param="conversation",
            code="invalid_value",
        )
    return value

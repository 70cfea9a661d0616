"""Input normalisation: Responses input (string or items) -> stored items -> chat messages.

Stored items are what `input_items` returns: every item has an id and message content is a list
of typed parts. Chat messages are what a Chat Completions engine accepts.
"""

from __future__ import annotations

from typing import Any

from domain import ids
from domain.errors import InvalidRequest

Item = dict[str, Any]
ROLES = ("user", "system", "developer", "assistant")
MAX_ITEM_ID = 256
_INPUT_PART_TYPES = ("input_text", "input_image", "input_file", "output_text", "refusal", "text")
# Items a client may send back from an earlier turn; kept verbatim and converted for the engine.
_PASSTHROUGH_TYPES = (
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "reasoning",
    "item_reference",
)


def _invalid(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _normalise_part(part: Any, role: str, param: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise _invalid(f"Invalid type for '{param}': expected an object.", param, "invalid_type")
    kind = part.get("type")
    if kind not in _INPUT_PART_TYPES:
        raise _invalid(
            f"Invalid value for '{param}.type': expected one of {', '.join(_INPUT_PART_TYPES)}.",
            f"{param}.type",
        )
    if kind in ("input_text", "output_text", "text"):
        text = part.get("text")
        if not isinstance(text, str):
            raise _invalid(
                f"Invalid type for '{param}.text': expected a string.",
                f"{param}.text",
                "invalid_type",
            )
        if kind == "text":  # a Chat Completions habit; store it as the Responses part type
            kind = "output_text" if role == "assistant" else "input_text"
        normalised: dict[str, Any] = {"type": kind, "text": text}
        if kind == "output_text":
            normalised["annotations"] = part.get("annotations") or []
        return normalised
    if kind == "input_image":
        url = part.get("image_url")
        file_id = part.get("file_id")
        if not isinstance(url, str) and not isinstance(file_id, str):
            raise _invalid(
                f"Missing required parameter: '{param}.image_url'.",
                f"{param}.image_url",
                "missing_required_parameter",
            )
        return {
            "type": "input_image",
            "image_url": url,
            "file_id": file_id,
            "detail": part.get("detail") or "auto",
        }
    if kind == "refusal":
        refusal = part.get("refusal")
        if not isinstance(refusal, str):
            raise _invalid(
                f"Invalid type for '{param}.refusal': expected a string.",
                f"{param}.refusal",
                "invalid_type",
            )
        return {"type": "refusal", "refusal": refusal}
    return dict(part)  # input_file: kept as sent


def _item_id(item: dict[str, Any], param: str, prefix: str) -> str:
    """Client-made ids are kept as opaque text; items without one get ours."""
    item_id = item.get("id")
    if item_id is None or item_id == "":
        return ids.new_id(prefix)
    if not isinstance(item_id, str):
        raise _invalid(f"Invalid type for '{param}.id': expected a string.", f"{param}.id",
                       "invalid_type")
    if "\x00" in item_id or len(item_id) > MAX_ITEM_ID:
        raise _invalid(f"Invalid '{param}.id': at most {MAX_ITEM_ID} characters, no NUL.",
                       f"{param}.id")
    return item_id


def _normalise_message(item: dict[str, Any], param: str) -> Item:
    role = item.get("role")
    if role not in ROLES:
        raise _invalid(
            f"Invalid value for '{param}.role': expected one of {', '.join(ROLES)}.",
            f"{param}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        part_type = "output_text" if role == "assistant" else "input_text"
        parts = [{"type": part_type, "text": content}]
        if role == "assistant":
            parts[0]["annotations"] = []
    elif isinstance(content, list):
        parts = [
            _normalise_part(part, role, f"{param}.content[{index}]")
            for index, part in enumerate(content)
        ]
    else:
        raise _invalid(
            f"Invalid type for '{param}.content': expected a string or an array of content parts.",
            f"{param}.content",
            "invalid_type",
        )
    return {
        "id": _item_id(item, param, ids.MESSAGE),
        "type": "message",
        "role": role,
        "content": parts,
        "status": "completed",
    }


def normalise_input(value: str | list[Any]) -> list[Item]:
    """Validate the request's `input` and give every item an id and typed content parts."""
    if isinstance(value, str):
        return [_normalise_message({"role": "user", "content": value}, "input")]
    items: list[Item] = []
    for index, raw in enumerate(value):
        param = f"input[{index}]"
        if not isinstance(raw, dict):
            raise _invalid(
                f"Invalid type for '{param}': expected an object.", param, "invalid_type"
            )
        kind = raw.get("type", "message")
        if kind == "message":
            items.append(_normalise_message(raw, param))
        elif kind in _PASSTHROUGH_TYPES:
            item = dict(raw)
            item["id"] = _item_id(raw, param, ids.FUNCTION_CALL if "call" in kind else ids.MESSAGE)
            items.append(item)
        # Unknown item types are ignored, as protocol.md asks.
    return items


def _text_of(parts: list[dict[str, Any]]) -> str:
    texts = (
        part.get("text") or part.get("refusal")
        for part in parts
        # A tool output's parts arrive as sent: anything that is not a text part adds nothing.
        if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "refusal")
    )
    return "".join(text for text in texts if isinstance(text, str))


def _chat_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    # Plain text stays a string: every engine accepts that, not every one accepts part arrays.
    if all(part["type"] in ("input_text", "output_text", "refusal") for part in parts):
        return _text_of(parts)
    chat_parts: list[dict[str, Any]] = []
    for part in parts:
        if part["type"] in ("input_text", "output_text"):
            chat_parts.append({"type": "text", "text": part["text"]})
        elif part["type"] == "input_image" and part.get("image_url"):
            chat_parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
    return chat_parts


def to_chat_messages(instructions: str | None, items: list[Item]) -> list[dict[str, Any]]:
    """Turn stored input items into Chat Completions messages for the engine."""
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    for item in items:
        kind = item.get("type")
        if kind == "message":
            # Most engines' chat templates know no 'developer' role; it means system.
            role = "system" if item["role"] == "developer" else item["role"]
            messages.append({"role": role, "content": _chat_content(item["content"])})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""},
            }
            previous = messages[-1] if messages else None
            # Consecutive calls belong to one assistant turn.
            if previous and previous["role"] == "assistant" and "tool_calls" in previous:
                previous["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            if isinstance(output, list):
                output = _text_of(output)
            messages.append(
                {"role": "tool", "tool_call_id": item.get("call_id"), "content": output or ""}
            )
    return messages


def last_user_text(items: list[Item]) -> str:
    for item in reversed(items):
        if item.get("type") == "message" and item.get("role") == "user":
            return _text_of(item["content"])
    return ""

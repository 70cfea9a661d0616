"""Input normalisation: Responses input (string or items) -> stored items -> chat messages.

Stored items are what `input_items` returns: every item has an id and message content is a list
of typed parts. Chat messages are what a Chat Completions engine accepts.
"""

from __future__ import annotations

import json
from typing import Any

from domain import ids
from domain.errors import InvalidRequest

Item = dict[str, Any]
ROLES = ("user", "system", "developer", "assistant")
MAX_ITEM_ID = 256
_INPUT_PART_TYPES = ("input_text", "input_image", "input_file", "output_text", "refusal", "text")
# Items a client may send back from an earlier turn: the id prefix each gets when it has none,
# and the string fields each must carry. Kept as sent otherwise, and converted for the engine.
_PASSTHROUGH_TYPES = {
    "function_call": (ids.FUNCTION_CALL, ("call_id", "name", "arguments")),
    "function_call_output": (ids.FUNCTION_CALL_OUTPUT, ("call_id",)),
    "custom_tool_call": (ids.CUSTOM_TOOL_CALL, ("call_id", "name", "input")),
    "custom_tool_call_output": (ids.CUSTOM_TOOL_CALL_OUTPUT, ("call_id",)),
    "reasoning": (ids.REASONING, ()),
    "item_reference": ("", ("id",)),
    "compaction": (ids.COMPACTION, ("encrypted_content",)),
    "compaction_trigger": (ids.COMPACTION, ()),
}
CALL_TYPES = ("function_call", "custom_tool_call")
OUTPUT_TYPES = ("function_call_output", "custom_tool_call_output")


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
        raise _invalid(
            f"Invalid type for '{param}.id': expected a string.", f"{param}.id", "invalid_type"
        )
    if "\x00" in item_id or len(item_id) > MAX_ITEM_ID:
        raise _invalid(
            f"Invalid '{param}.id': at most {MAX_ITEM_ID} characters, no NUL.", f"{param}.id"
        )
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
        parts: list[dict[str, Any]] = [{"type": part_type, "text": content}]
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
            items.append(_normalise_passthrough(raw, kind, param))
        # Unknown item types are ignored, as protocol.md asks.
    return items


def _normalise_passthrough(raw: dict[str, Any], kind: str, param: str) -> Item:
    prefix, required = _PASSTHROUGH_TYPES[kind]
    for key in required:
        value = raw.get(key)
        if value is None and key == "arguments":
            continue  # a call with no arguments; "" below
        if not isinstance(value, str):
            code = "missing_required_parameter" if value is None else "invalid_type"
            message = (
                f"Missing required parameter: '{param}.{key}'."
                if value is None
                else f"Invalid type for '{param}.{key}': expected a string."
            )
            raise _invalid(message, f"{param}.{key}", code)
        if "\x00" in value:
            raise _invalid(f"Invalid '{param}.{key}': no NUL characters.", f"{param}.{key}")
    if kind == "item_reference":
        if not raw["id"]:
            raise _invalid(f"Invalid '{param}.id': an item id is required.", f"{param}.id")
        return {"type": "item_reference", "id": raw["id"]}
    if kind in ("compaction", "compaction_trigger"):
        # Kept to the fields the API defines: a compaction item has no status.
        item: Item = {"id": _item_id(raw, param, prefix), "type": kind}
        if kind == "compaction":
            item["encrypted_content"] = raw["encrypted_content"]
            if isinstance(raw.get("created_by"), str):
                item["created_by"] = raw["created_by"]
        return item
    item = dict(raw)
    item["id"] = _item_id(raw, param, prefix)
    if kind == "function_call":
        item["arguments"] = raw.get("arguments") or ""
    if kind in OUTPUT_TYPES:
        output = raw.get("output")
        if not isinstance(output, (str, list)):
            raise _invalid(
                f"Invalid type for '{param}.output': expected a string or an array of parts.",
                f"{param}.output",
                "missing_required_parameter" if output is None else "invalid_type",
            )
    if kind == "reasoning":
        for key in ("summary", "content"):
            if raw.get(key) is not None and not isinstance(raw[key], list):
                raise _invalid(
                    f"Invalid type for '{param}.{key}': expected an array.",
                    f"{param}.{key}",
                    "invalid_type",
                )
        item["summary"] = raw.get("summary") or []
        encrypted = raw.get("encrypted_content")
        if encrypted is not None and not isinstance(encrypted, str):
            raise _invalid(
                f"Invalid type for '{param}.encrypted_content': expected a string.",
                f"{param}.encrypted_content",
                "invalid_type",
            )
    item.setdefault("status", "completed")
    return item


def check_tool_outputs(items: list[Item], first_new: int) -> None:
    """Every tool output must follow its call: 400 naming the call_id otherwise.

    `first_new` is where the request's own input starts (history comes first), so the error
    can point at the right `input[i]`.
    """
    calls: set[str] = set()
    for position, item in enumerate(items):
        kind = item.get("type")
        if kind in CALL_TYPES:
            calls.add(item["call_id"])
        elif kind in OUTPUT_TYPES and item["call_id"] not in calls:
            index = position - first_new
            raise _invalid(
                f"No tool call found for {kind.replace('_', ' ')} with call_id "
                f"'{item['call_id']}'.",
                f"input[{index}]" if index >= 0 else "input",
            )


def _text_of(parts: list[Any]) -> str:
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


def _output_text(output: Any) -> str:
    if isinstance(output, list):
        return _text_of([p for p in output if isinstance(p, dict)])
    return output if isinstance(output, str) else ""


def reasoning_text(item: Item) -> str:
    """The readable text of a reasoning item: its content, else its summary."""
    parts = item.get("content") or item.get("summary") or []
    return "\n".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def _tool_call(item: Item) -> dict[str, Any]:
    if item["type"] == "custom_tool_call":
        # Offered to the engine as a function taking {"input": ...} (domain.tools).
        arguments = json.dumps({"input": item.get("input") or ""}, ensure_ascii=False)
    else:
        arguments = item.get("arguments") or ""
    return {
        "id": item.get("call_id"),
        "type": "function",
        "function": {"name": item.get("name"), "arguments": arguments},
    }


def to_chat_messages(instructions: str | None, items: list[Item]) -> list[dict[str, Any]]:
    """Turn stored input items into Chat Completions messages for the engine.

    Consecutive calls become one assistant message with several tool_calls (joined to the
    assistant text just before them); each output becomes a tool message right after the
    assistant message that holds its call; a reasoning item's text rides on the next
    assistant message as `reasoning_content`, which engines that know it feed back to the
    model (the engine adapter may rename or drop it). An opened compaction item (its
    `summary` set by the service) stands for everything before it but the user and system
    messages, which a compacted window keeps: the rest is dropped and the summary takes its
    place. Long because it is one pass over the items that carries the pending assistant
    message between them.
    """
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    reasoning: list[str] = []
    where: dict[str, int] = {}  # call_id -> index of the assistant message holding it

    def assistant(message: dict[str, Any]) -> dict[str, Any]:
        if reasoning:
            message["reasoning_content"] = "\n".join(reasoning)
            reasoning.clear()
        return message

    for item in items:
        kind = item.get("type")
        if kind == "message":
            # Most engines' chat templates know no 'developer' role; it means system.
            role = "system" if item["role"] == "developer" else item["role"]
            message = {"role": role, "content": _chat_content(item["content"])}
            messages.append(assistant(message) if role == "assistant" else message)
        elif kind in CALL_TYPES:
            call = _tool_call(item)
            previous = messages[-1] if messages else None
            if previous is not None and previous["role"] == "assistant" and not reasoning:
                previous.setdefault("tool_calls", []).append(call)
                if not previous.get("content"):
                    previous["content"] = None
            else:
                messages.append(
                    assistant({"role": "assistant", "content": None, "tool_calls": [call]})
                )
            where[item["call_id"]] = len(messages) - 1
        elif kind in OUTPUT_TYPES:
            message = {
                "role": "tool",
                "tool_call_id": item.get("call_id"),
                "content": _output_text(item.get("output")),
            }
            call_id = item.get("call_id")
            holder = where.get(call_id) if isinstance(call_id, str) else None
            if holder is None or holder == len(messages) - 1:
                messages.append(message)
                continue
            # After its call's assistant message and the tool messages already behind it.
            position = holder + 1
            while position < len(messages) and messages[position]["role"] == "tool":
                position += 1
            messages.insert(position, message)
            where = {k: (v + 1 if v >= position else v) for k, v in where.items()}
        elif kind == "reasoning":
            text = reasoning_text(item)
            if text:
                reasoning.append(text)
        elif kind == "compaction" and isinstance(item.get("summary"), str):
            from domain.compaction import summary_message  # local: it builds on this module

            messages = [m for m in messages if m["role"] in ("system", "user")]
            messages.append(summary_message(item["summary"]))
            reasoning.clear()
            where = {}
    return messages


def last_user_text(items: list[Item]) -> str:
    for item in reversed(items):
        if item.get("type") == "message" and item.get("role") == "user":
            return _text_of(item["content"])
    return ""

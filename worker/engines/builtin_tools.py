"""How the built-in engine decides to call tools, deterministically, so tool loops are testable
with no GPU:

- no tools, or tool_choice "none": no call;
- the conversation ends with tool results: no call, a text answer that reports them (so a
  client that keeps tool_choice "required" on its follow-up does not loop forever);
- tool_choice names a function: that one;
- the last user message names tools (as words): each of them, in the order they appear;
- tool_choice "required": the first tool;
- otherwise no call.

Arguments: a JSON object written right after the tool's name in the prompt, else an example
built from the tool's JSON schema (required properties; enum, const or default values first).
"""

from __future__ import annotations

import json
import re
from typing import Any

from domain.engine import EngineRequest

_DECODER = json.JSONDecoder()
_JOINER = re.compile(r"[\s:]*(?:(?:with|using)[\s:]*)?", re.IGNORECASE)


def _names(request: EngineRequest) -> list[str]:
    return [t["function"]["name"] for t in request.tools or [] if t.get("type") == "function"]


def ends_with_tool_results(request: EngineRequest) -> bool:
    return bool(request.messages) and request.messages[-1].get("role") == "tool"


def plan_calls(request: EngineRequest, prompt: str) -> list[tuple[str, str]]:
    """[(name, arguments JSON)] to call, in order; empty for a text answer."""
    names = _names(request)
    choice = request.tool_choice
    if not names or choice == "none" or ends_with_tool_results(request):
        return []
    if isinstance(choice, dict):
        chosen = [choice.get("function", {}).get("name")]
    else:
        chosen = _mentioned(names, prompt)
        if not chosen and choice == "required":
            chosen = names[:1]
    schemas = {
        t["function"]["name"]: t["function"].get("parameters") or {} for t in request.tools or []
    }
    return [
        (name, _arguments(name, prompt, schemas.get(name) or {}))
        for name in chosen
        if name in schemas
    ]


def _mentioned(names: list[str], prompt: str) -> list[str]:
    found = []
    for name in names:
        match = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", prompt)
        if match:
            found.append((match.start(), name))
    return [name for _, name in sorted(found)]


def _arguments(name: str, prompt: str, schema: dict[str, Any]) -> str:
    match = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", prompt)
    if match:
        start = prompt.find("{", match.end())
        # Only a JSON object right after the name counts ("name {...}", "name with {...}").
        if start != -1 and _JOINER.fullmatch(prompt[match.end() : start]):
            try:
                value, _ = _DECODER.raw_decode(prompt, start)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return json.dumps(value)
    return json.dumps(example(schema))


def example(schema: dict[str, Any]) -> Any:
    """A value that fits a (simple) JSON schema."""
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        keys = schema.get("required", list(properties))
        return {key: example(properties.get(key) or {}) for key in keys}
    if kind == "array":
        return []
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "example"


def tool_results_reply(request: EngineRequest) -> str:
    """The text answer after tool results: what each trailing tool message said."""
    names: dict[str, str] = {}
    for message in request.messages:
        for call in message.get("tool_calls") or []:
            names[call.get("id")] = (call.get("function") or {}).get("name") or "tool"
    results = []
    for message in reversed(request.messages):
        if message.get("role") != "tool":
            break
        name = names.get(message.get("tool_call_id"), "tool")
        results.append(f"{name} returned: {message.get('content') or '(nothing)'}")
    return " ".join(reversed(results))


def fragments(text: str, count: int = 3) -> list[str]:
    """Split arguments into a few pieces, the way engines stream them."""
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]

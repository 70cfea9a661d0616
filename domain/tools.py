"""Tools: validation of `tools` and `tool_choice`, and their mapping onto Chat Completions.

Function tools go to the engine as they are. Custom tools (free-form text input, e.g. Codex's
`apply_patch`) go as a function with one string parameter, `input`; the builder turns calls
of them back into custom_tool_call items. Every other tool type (web_search, file_search,
tool_search, namespace, mcp, ...) needs something to run it that a Chat Completions engine
does not have: such tools are accepted and not forwarded.
"""

from __future__ import annotations

from typing import Any

from domain.errors import InvalidRequest

FORWARDED_TYPES = ("function", "custom")
MAX_TOOL_NAME = 128
CHOICE_MODES = ("auto", "none", "required")
# The one parameter a custom tool is offered with.
CUSTOM_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The tool's input, verbatim."}},
    "required": ["input"],
    "additionalProperties": False,
}
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def _invalid(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _check_optional(tool: dict[str, Any], key: str, kind: type, what: str, param: str) -> None:
    value = tool.get(key)
    if value is not None and not isinstance(value, kind):
        raise _invalid(
            f"Invalid type for '{param}.{key}': expected {what}.", f"{param}.{key}", "invalid_type"
        )


def _check_name(tool: dict[str, Any], param: str) -> str:
    name = tool.get("name")
    if name is None:
        raise _invalid(
            f"Missing required parameter: '{param}.name'.",
            f"{param}.name",
            "missing_required_parameter",
        )
    if not isinstance(name, str):
        raise _invalid(
            f"Invalid type for '{param}.name': expected a string.", f"{param}.name", "invalid_type"
        )
    if not name or len(name) > MAX_TOOL_NAME or "\x00" in name or any(c.isspace() for c in name):
        raise _invalid(
            f"Invalid '{param}.name': 1 to {MAX_TOOL_NAME} characters, no spaces.",
            f"{param}.name",
        )
    return name


def check_tools(tools: list[Any] | None, tool_choice: str | dict[str, Any] | None) -> None:
    """400 for tools or a tool_choice that can't be right; unknown tool types pass."""
    names: dict[str, str] = {}
    for index, tool in enumerate(tools or []):
        param = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise _invalid(
                f"Invalid type for '{param}': expected an object.", param, "invalid_type"
            )
        kind = tool.get("type")
        if not isinstance(kind, str):
            raise _invalid(
                f"Missing required parameter: '{param}.type'.",
                f"{param}.type",
                "missing_required_parameter",
            )
        if kind not in FORWARDED_TYPES:
            continue
        name = _check_name(tool, param)
        _check_optional(tool, "description", str, "a string", param)
        if kind == "function":
            _check_optional(tool, "parameters", dict, "an object", param)
            _check_optional(tool, "strict", bool, "a boolean", param)
        else:
            _check_optional(tool, "format", dict, "an object", param)
        if name in names:
            raise _invalid(f"Duplicate tool name '{name}' in '{param}.name'.", f"{param}.name")
        names[name] = kind
    _check_choice(tool_choice, names)


def _check_choice(choice: str | dict[str, Any] | None, names: dict[str, str]) -> None:
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in CHOICE_MODES:
            raise _invalid(
                f"Invalid value for 'tool_choice': expected one of {', '.join(CHOICE_MODES)}.",
                "tool_choice",
            )
        return
    kind = choice.get("type")
    if kind in FORWARDED_TYPES:
        name = choice.get("name")
        if not isinstance(name, str) or names.get(name) != kind:
            raise _invalid(
                f"Tool choice '{name}' not found in 'tools' parameter.", "tool_choice.name"
            )
    elif kind == "allowed_tools":
        mode = choice.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise _invalid(
                "Invalid value for 'tool_choice.mode': expected 'auto' or 'required'.",
                "tool_choice.mode",
            )
        allowed = choice.get("tools")
        if not isinstance(allowed, list):
            raise _invalid(
                "Invalid type for 'tool_choice.tools': expected an array.",
                "tool_choice.tools",
                "invalid_type",
            )
        for index, entry in enumerate(allowed):
            if not isinstance(entry, dict):
                raise _invalid(
                    f"Invalid type for 'tool_choice.tools[{index}]': expected an object.",
                    f"tool_choice.tools[{index}]",
                    "invalid_type",
                )
            if entry.get("type") in FORWARDED_TYPES and entry.get("name") not in names:
                raise _invalid(
                    f"Tool '{entry.get('name')}' in 'tool_choice.tools' is not in 'tools'.",
                    f"tool_choice.tools[{index}].name",
                )
    elif not isinstance(kind, str):
        raise _invalid(
            "Missing required parameter: 'tool_choice.type'.",
            "tool_choice.type",
            "missing_required_parameter",
        )
    # Choices of hosted tool types (web_search, ...) are accepted; nothing here runs them.


def custom_tool_names(tools: list[dict[str, Any]] | None) -> frozenset[str]:
    return frozenset(
        t["name"]
        for t in tools or []
        if t.get("type") == "custom" and isinstance(t.get("name"), str)
    )


def _custom_description(tool: dict[str, Any]) -> str:
    # A grammar constrains the input on OpenAI's side; here the model can only be told about it.
    description = tool.get("description") or ""
    fmt = tool.get("format") or {}
    if fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        syntax = fmt.get("syntax") or "grammar"
        note = f"The input must follow this {syntax} grammar:\n{fmt['definition']}"
        description = f"{description}\n\n{note}" if description else note
    return description


def _chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    description: str | None
    if tool["type"] == "custom":
        function: dict[str, Any] = {"name": tool["name"], "parameters": CUSTOM_INPUT_SCHEMA}
        description = _custom_description(tool)
    else:
        function = {"name": tool["name"], "parameters": tool.get("parameters") or _EMPTY_SCHEMA}
        description = tool.get("description")
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
    if description:
        function["description"] = description
    return {"type": "function", "function": function}


def chat_tools(
    tools: list[dict[str, Any]] | None, choice: str | dict[str, Any] | None
) -> tuple[list[dict[str, Any]] | None, str | dict[str, Any] | None]:
    """(tools, tool_choice) for a Chat Completions request; (None, None) when none apply."""
    forwarded = [t for t in tools or [] if t.get("type") in FORWARDED_TYPES]
    mode: str | dict[str, Any] | None = None
    if isinstance(choice, str):
        mode = choice
    elif isinstance(choice, dict) and choice.get("type") in FORWARDED_TYPES:
        mode = {"type": "function", "function": {"name": choice.get("name")}}
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        # Engines rarely know allowed_tools: offer only the allowed ones instead.
        allowed = {e.get("name") for e in choice.get("tools") or [] if isinstance(e, dict)}
        forwarded = [t for t in forwarded if t["name"] in allowed]
        mode = choice.get("mode", "auto")
    if not forwarded:
        return None, None
    return [_chat_tool(t) for t in forwarded], mode

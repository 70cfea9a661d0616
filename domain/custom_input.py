"""Streams the text of a custom tool's input out of the JSON arguments an engine produces.

A custom tool is offered to the engine as a function taking `{"input": "<text>"}`; clients
expect `custom_tool_call_input.delta` events carrying the text itself. This decoder follows
the arguments as they stream and yields the decoded text as soon as it is known. When the
arguments do not start the expected way, it yields nothing and the caller falls back to the
whole input at the end.
"""

from __future__ import annotations

import json
import re

_OPENING = '{"input":"'
_PLAIN = re.compile(r'[^"\\]+')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class InputDecoder:
    def __init__(self) -> None:
        self._state = "head"  # head | text | escape | unicode | done | off
        self._head = ""
        self._hex = ""
        self._high: int | None = None  # a high surrogate waiting for its pair

    @property
    def streaming(self) -> bool:
        return self._state not in ("head", "off")

    def feed(self, fragment: str) -> str:
        out: list[str] = []
        i, n = 0, len(fragment)
        while i < n:
            state = self._state
            if state in ("done", "off"):
                break
            if state == "head":
                char = fragment[i]
                i += 1
                if not char.isspace():
                    self._head += char
                if self._head == _OPENING:
                    self._state = "text"
                elif not _OPENING.startswith(self._head):
                    self._state = "off"
            elif state == "text":
                match = _PLAIN.match(fragment, i)
                if match:
                    out.append(match.group())
                    i = match.end()
                    continue
                char = fragment[i]
                i += 1
                self._state = "done" if char == '"' else "escape"
            elif state == "escape":
                char = fragment[i]
                i += 1
                if char == "u":
                    self._state, self._hex = "unicode", ""
                else:
                    out.append(_ESCAPES.get(char, char))
                    self._state = "text"
            else:  # unicode: four hex digits
                take = min(4 - len(self._hex), n - i)
                self._hex += fragment[i : i + take]
                i += take
                if len(self._hex) == 4:
                    self._state = "text"
                    out.append(self._codepoint(int(self._hex, 16)))
        return "".join(out)

    def _codepoint(self, value: int) -> str:
        if 0xD800 <= value < 0xDC00:
            self._high = value
            return ""
        if 0xDC00 <= value < 0xE000 and self._high is not None:
            high, self._high = self._high, None
            return chr(0x10000 + ((high - 0xD800) << 10) + (value - 0xDC00))
        self._high = None
        return chr(value)


def final_input(arguments: str, streamed: str) -> str:
    """The complete input: the parsed `input` value when the arguments are well-formed JSON,
    else whatever the engine wrote (a model that ignored the schema still gets its text through).
    """
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return streamed or arguments
    value = parsed.get("input") if isinstance(parsed, dict) else None
    if isinstance(value, str):
        return value
    return streamed or arguments

"""Counting a request's input tokens: the engine's own tokenizer where it offers one, otherwise
an estimate (the README's "Input token counts" says how it is made)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from domain.engine import EngineRequest

# OpenAI's rule of thumb for English text; code and other languages run denser.
CHARS_PER_TOKEN = 4
# What a chat template adds around each message (role markers, separators), and the
# generation prompt after the last one: a typical ChatML-style template's cost.
TOKENS_PER_MESSAGE = 4
TOKENS_FOR_REPLY = 3
# An image part, whatever its size: OpenAI's low-detail price.
TOKENS_PER_IMAGE = 85


@dataclass(frozen=True, slots=True)
class TokenCount:
    input_tokens: int
    exact: bool  # False: estimated, the engine offers no tokenizer (or did not answer)


@runtime_checkable
class TokenCounter(Protocol):
    """An engine that can count a request's prompt tokens itself; None when it cannot."""

    async def count_tokens(self, request: EngineRequest) -> int | None: ...


def _content_chars(content: Any) -> tuple[int, int]:
    """(characters of text, images) in a message's content."""
    if isinstance(content, str):
        return len(content), 0
    chars = images = 0
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "image_url":
            images += 1
        else:
            chars += len(part.get("text") or "")
    return chars, images


def estimate_tokens(request: EngineRequest) -> int:
    """About one token per four characters of message text, tool calls and tool definitions,
    plus the chat template's few tokens a message and a fixed price per image."""
    chars = images = 0
    for message in request.messages:
        text, pictures = _content_chars(message.get("content"))
        chars += text + len(message.get("reasoning_content") or "")
        images += pictures
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            chars += len(function.get("name") or "") + len(function.get("arguments") or "")
    if request.tools:
        chars += len(json.dumps(request.tools, separators=(",", ":"), ensure_ascii=False))
    return (
        math.ceil(chars / CHARS_PER_TOKEN)
        + TOKENS_PER_MESSAGE * len(request.messages)
        + TOKENS_FOR_REPLY
        + TOKENS_PER_IMAGE * images
    )

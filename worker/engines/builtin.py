"""The built-in engine: deterministic replies with no GPU, for development, demos and tests.

It echoes the last user message back word by word. Prompt prefixes steer it:
  "fail:"    -> the engine errors (the response ends with response.failed)
  "refuse:"  -> the rest of the prompt comes back as a refusal
A request with reasoning.effort (other than "none") first streams a short reasoning text.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from domain.engine import Chunk, EngineRequest, Finish, ReasoningDelta, RefusalDelta, TextDelta
from domain.errors import EngineError

_EMPTY_PROMPT_REPLY = "Hello! Send me a message and I will echo it back."


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _words(text: str) -> list[str]:
    words = text.split()
    return [words[0], *(" " + w for w in words[1:])] if words else []


class BuiltinEngine:
    def __init__(self, tokens_per_s: float = 0.0) -> None:
        self._interval = 1.0 / tokens_per_s if tokens_per_s > 0 else 0.0

    async def stream(self, request: EngineRequest) -> AsyncIterator[Chunk]:
        prompt = next(
            (_text(m.get("content")) for m in reversed(request.messages) if m["role"] == "user"),
            "",
        )
        input_tokens = sum(len(_text(m.get("content")).split()) for m in request.messages)
        if prompt.startswith("fail:"):
            raise EngineError(f"The built-in engine was asked to fail: {prompt[5:].strip()}")
        refuse = prompt.startswith("refuse:")
        words = _words(prompt[7:] if refuse else prompt) or _words(_EMPTY_PROMPT_REPLY)
        reasoning = []
        if request.reasoning_effort not in (None, "none"):
            reasoning = _words(f"The user wrote {len(words)} words; I will repeat them.")
        budget = (
            request.max_tokens if request.max_tokens is not None else len(reasoning) + len(words)
        )
        kind = RefusalDelta if refuse else TextDelta
        if request.assistant_prefix is not None:
            # Continue a reply cut off midway: the words it already has are not sent again.
            reasoning = []
            words = words[len(_words(request.assistant_prefix)) :]
        plan: list[Chunk] = [ReasoningDelta(w) for w in reasoning] + [kind(w) for w in words]
        emitted = 0
        loop = asyncio.get_running_loop()
        start = loop.time()
        for chunk in plan[:budget]:
            if self._interval:
                delay = start + emitted * self._interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            emitted += 1
            yield chunk
        yield Finish(
            "length" if budget < len(plan) else "stop",
            input_tokens=input_tokens,
            output_tokens=emitted,
            reasoning_tokens=min(emitted, len(reasoning)),
        )

    async def close(self) -> None:
        return None

"""The built-in engine: deterministic replies with no GPU, for development, demos and tests.

It echoes the last user message back word by word. Prompt prefixes steer it:
  "fail:"    -> the engine errors (the response ends with response.failed)
  "refuse:"  -> the rest of the prompt comes back as a refusal
  "context:" -> the text of every message before the prompt comes back, joined by " | "
               (what the engine was given: a compaction summary, for instance)
A request with reasoning.effort (other than "none") first streams a short reasoning text.
When the last user message is a compaction summary it says it can go on, and calls nothing.
A summarising request (compaction) is answered with "Summary:" and the conversation's user
messages joined by " | ", so that what a summary carries can be checked.
With tools it calls them deterministically (see builtin_tools): naming a tool in the prompt,
or tool_choice, makes a call; after tool results it answers in text. It does not obey
parallel_tool_calls itself (the server keeps only the first call), like many real models.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from domain import ids
from domain.compaction import SUMMARY_PREFIX
from domain.engine import (
    Chunk,
    EngineRequest,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
)
from domain.errors import EngineError
from worker.engines.builtin_tools import (
    ends_with_tool_results,
    fragments,
    plan_calls,
    tool_results_reply,
)

_EMPTY_PROMPT_REPLY = "Hello! Send me a message and I will echo it back."
_AFTER_SUMMARY_REPLY = "I have the summary of our conversation and can go on from there."


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def input_tokens(messages: list[dict[str, Any]]) -> int:
    """The engine's own token count: one token a word of every message's text."""
    return sum(len(_split(_text(m.get("content")))) for m in messages)


def _split(text: str, piece: int = 64 * 1024) -> list[str]:
    """str.split, a slice at a time: one split of megabytes holds the GIL throughout, and with
    it the event loop, even from a thread."""
    if len(text) <= piece:
        return text.split()
    words: list[str] = []
    carry = ""
    for start in range(0, len(text), piece):
        chunk = carry + text[start : start + piece]
        parts = chunk.split()
        carry = parts.pop() if parts and not chunk[-1].isspace() else ""
        words += parts
    if carry:
        words.append(carry)
    return words


def _words(text: str) -> list[str]:
    words = _split(text)
    return [words[0], *(" " + w for w in words[1:])] if words else []


_INLINE_PLAN_CHARS = 64 * 1024


class BuiltinEngine:
    def __init__(self, tokens_per_s: float = 0.0) -> None:
        self._interval = 1.0 / tokens_per_s if tokens_per_s > 0 else 0.0

    async def stream(self, request: EngineRequest) -> AsyncIterator[Chunk]:
        if request.purpose == "summarise":
            async for chunk in self._summarise(request):
                yield chunk
            return
        size = sum(len(_text(m.get("content"))) for m in request.messages)
        # Splitting a huge prompt into words takes seconds of CPU: in a thread, the event loop
        # keeps serving every other stream meanwhile. Small ones are planned inline.
        if size > _INLINE_PLAN_CHARS:
            planned = await asyncio.to_thread(self._plan, request)
        else:
            planned = self._plan(request)
        plan, budget, calls, reasoning, prompt_tokens = planned
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
            "length" if budget < len(plan) else "tool_calls" if calls else "stop",
            input_tokens=prompt_tokens,
            output_tokens=emitted,
            reasoning_tokens=min(emitted, reasoning),
        )

    @staticmethod
    def _plan(request: EngineRequest) -> tuple[list[Chunk], int, bool, int, int]:
        """(chunks, budget, calls made, reasoning chunks, input tokens)."""
        prompt = next(
            (_text(m.get("content")) for m in reversed(request.messages) if m["role"] == "user"),
            "",
        )
        prompt_tokens = input_tokens(request.messages)
        if prompt.startswith(SUMMARY_PREFIX):
            # Compacted mid-task, the summary is the last word: a real model would carry on;
            # this one says so and stops, rather than redo what the summary tells of.
            prompt = _AFTER_SUMMARY_REPLY
        if prompt.startswith("fail:"):
            raise EngineError(f"The built-in engine was asked to fail: {prompt[5:].strip()}")
        if prompt.startswith("context:"):
            prompt = " | ".join(_text(m.get("content")) for m in request.messages[:-1])
        refuse = prompt.startswith("refuse:")
        calls = plan_calls(request, prompt)
        if request.tools and ends_with_tool_results(request):
            prompt, refuse = tool_results_reply(request), False
        words = _words(prompt[7:] if refuse else prompt) or _words(_EMPTY_PROMPT_REPLY)
        reasoning = []
        if request.reasoning_effort not in (None, "none"):
            if calls:
                reasoning = _words(f"I will call {', '.join(name for name, _ in calls)}.")
            else:
                reasoning = _words(f"The user wrote {len(words)} words; I will repeat them.")
        kind = RefusalDelta if refuse else TextDelta
        if request.assistant_prefix is not None:
            # Continue a reply cut off midway: the words it already has are not sent again.
            reasoning = []
            words = words[len(_words(request.assistant_prefix)) :]
        plan: list[Chunk] = [ReasoningDelta(w) for w in reasoning]
        if calls:
            for index, (name, arguments) in enumerate(calls):
                call_id = ids.new_id(ids.CALL)
                for number, piece in enumerate(fragments(arguments)):
                    first = number == 0
                    plan.append(
                        ToolCallDelta(
                            index, call_id if first else None, name if first else None, piece
                        )
                    )
        else:
            plan += [kind(w) for w in words]
        budget = request.max_tokens if request.max_tokens is not None else len(plan)
        return plan, budget, bool(calls), len(reasoning), prompt_tokens

    async def _summarise(self, request: EngineRequest) -> AsyncIterator[Chunk]:
        # The last message is the summary prompt itself; the user messages before it are what
        # the summary keeps.
        said = [_text(m.get("content")) for m in request.messages[:-1] if m["role"] == "user"]
        words = _words("Summary: " + " | ".join(said or ["(nothing yet)"]))
        budget = request.max_tokens if request.max_tokens is not None else len(words)
        for word in words[:budget]:
            yield TextDelta(word)
        yield Finish(
            "length" if budget < len(words) else "stop",
            input_tokens=input_tokens(request.messages),
            output_tokens=min(budget, len(words)),
        )

    async def count_tokens(self, request: EngineRequest) -> int | None:
        return input_tokens(request.messages)

    async def close(self) -> None:
        return None

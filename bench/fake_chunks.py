"""What the fake engine replies, and how it is encoded in vLLM's wire format.

`plan_reply` turns a Chat Completions request into a `Plan` (token texts, tool calls,
finish reason, behaviour); `encode_stream` and `encode_completion` render a plan as
vLLM renders its streamed chunks and its non-streamed `chat.completion` objects.
See `bench.fake_engine` for the rules a plan follows.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Behaviour = Literal["normal", "hang", "midstream-error", "linger"]

REASONING_TOKENS = 8
MIDSTREAM_TOKENS = 3
REFUSAL_WORDS = ("I", "can't", "help", "with", "that.")
TOOL_ARGUMENT_FRAGMENTS = ('{"city": "', "Par", "is", '"}')
DEFAULT_TOOL_NAME = "get_weather"


class RequestError(Exception):
    """A request the engine rejects with HTTP 400, as vLLM does."""


class EngineFailure(Exception):
    """A request the engine fails with HTTP 500."""


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    fragments: tuple[str, ...] = TOOL_ARGUMENT_FRAGMENTS


@dataclass
class Plan:
    model: str
    reasoning: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    include_usage: bool = False
    behaviour: Behaviour = "normal"

    @property
    def completion_tokens(self) -> int:
        fragments = sum(len(call.fragments) for call in self.tool_calls)
        return len(self.reasoning) + len(self.content) + fragments


def plan_reply(body: Any, natural_tokens: int) -> Plan:
    """Decide the reply to one request; raises RequestError for malformed ones."""
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    model = body.get("model") or "fake"
    if not isinstance(model, str):
        raise RequestError("'model' must be a string")
    if model == "fake-400":
        raise RequestError("This model's maximum context length is 16 tokens (fake-400).")
    if model == "fake-error":
        raise EngineFailure("The engine failed while generating (fake-error).")
    limit = _max_tokens(body)
    stream_options = body.get("stream_options") or {}
    plan = Plan(
        model=model,
        prompt_tokens=sum(len(_text(m).split()) for m in messages if isinstance(m, dict)),
        include_usage=bool(
            isinstance(stream_options, dict) and stream_options.get("include_usage")
        ),
    )
    if model == "fake-tools":
        plan.tool_calls = _tool_calls(body.get("tools"))
        plan.finish_reason = "tool_calls"
        return plan
    if model == "fake-reasoning":
        plan.reasoning = _words([f"think{i}" for i in range(REASONING_TOKENS)], REASONING_TOKENS)
    if model == "fake-refusal":
        plan.content = _words(list(REFUSAL_WORDS), len(REFUSAL_WORDS))
        plan.finish_reason = "content_filter"
    else:
        plan.content = _words(_last_user_words(messages), natural_tokens)
    if model == "fake-hang":
        plan.behaviour = "hang"
    elif model == "fake-midstream-error":
        plan.behaviour = "midstream-error"
    elif model == "fake-linger":
        plan.behaviour = "linger"
    if limit is not None and limit < len(plan.reasoning) + len(plan.content):
        plan.reasoning = plan.reasoning[:limit]
        plan.content = plan.content[: limit - len(plan.reasoning)]
        plan.finish_reason = "length"
    return plan


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise RequestError(f"'{key}' must be a non-negative integer")
        return value
    return None


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _last_user_words(messages: list[Any]) -> list[str]:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message).split()
    return []


def _words(vocabulary: list[str], count: int) -> list[str]:
    """`count` tokens cycling through `vocabulary` (tok0, tok1, ... if it is empty)."""
    if not vocabulary:
        words = [f"tok{i}" for i in range(count)]
    else:
        words = [vocabulary[i % len(vocabulary)] for i in range(count)]
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _tool_calls(tools: Any) -> list[ToolCall]:
    names = [
        t["function"]["name"]
        for t in tools or []
        if isinstance(t, dict)
        and isinstance(t.get("function"), dict)
        and isinstance(t["function"].get("name"), str)
    ] or [DEFAULT_TOOL_NAME]
    return [ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=name) for name in names]


@dataclass(frozen=True)
class EncodedStream:
    """A streamed reply: the role chunk, the token chunks, then usage and [DONE]."""

    first: bytes
    chunks: list[bytes]
    last: bytes


def encode_stream(plan: Plan) -> EncodedStream:
    head = _chunk_head(plan.model)

    def chunk(delta: bytes, finish: str | None = None) -> bytes:
        if finish is None:
            return head + delta + b',"logprobs":null,"finish_reason":null}]}\n\n'
        return (
            head
            + delta
            + b',"logprobs":null,"finish_reason":"'
            + finish.encode()
            + b'","stop_reason":null}]}\n\n'
        )

    # Each distinct token text is JSON-encoded once; replies repeat few words.
    cache: dict[str, bytes] = {}
    deltas: list[bytes] = []
    for key, tokens in (("reasoning", plan.reasoning), ("content", plan.content)):
        for token in tokens:
            delta = cache.get(key + token)
            if delta is None:
                text = orjson.dumps(token)
                if key == "reasoning":
                    delta = b'{"reasoning_content":' + text + b',"reasoning":' + text + b"}"
                else:
                    delta = b'{"content":' + text + b"}"
                cache[key + token] = delta
            deltas.append(delta)
    for index, call in enumerate(plan.tool_calls):
        deltas.append(_tool_delta(index, call, start=True))
        deltas.extend(_tool_delta(index, call, fragment=f) for f in call.fragments)

    chunks = [chunk(d) for d in deltas[:-1]]
    # vLLM reports the finish reason on the last token's chunk, or alone if there was none.
    chunks.append(chunk(deltas[-1] if deltas else b'{"content":""}', plan.finish_reason))
    last = b""
    if plan.include_usage:
        usage = orjson.dumps(_usage(plan))
        last = head[: head.rindex(b'"choices":')] + b'"choices":[],"usage":' + usage + b"}\n\n"
    return EncodedStream(
        first=chunk(b'{"role":"assistant","content":""}'),
        chunks=chunks,
        last=last + b"data: [DONE]\n\n",
    )


def _chunk_head(model: str) -> bytes:
    prefix = orjson.dumps(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
    )
    return b"data: " + prefix[:-1] + b',"choices":[{"index":0,"delta":'


def _tool_delta(index: int, call: ToolCall, *, start: bool = False, fragment: str = "") -> bytes:
    entry: dict[str, Any] = {"index": index, "function": {"arguments": fragment}}
    if start:
        entry = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
    return orjson.dumps({"tool_calls": [entry]})


def _usage(plan: Plan) -> dict[str, int]:
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
    }


def encode_completion(plan: Plan) -> bytes:
    """The non-streamed `chat.completion` object for a plan."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(plan.content) if not plan.tool_calls else None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": "".join(call.fragments)},
            }
            for call in plan.tool_calls
        ],
    }
    if plan.reasoning:
        text = "".join(plan.reasoning)
        message["reasoning_content"] = text
        message["reasoning"] = text
    return orjson.dumps(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": plan.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": plan.finish_reason,
                    "stop_reason": None,
                }
            ],
            "usage": _usage(plan),
        }
    )

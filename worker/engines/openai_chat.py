"""Adapter for any OpenAI-compatible Chat Completions engine (vLLM, SGLang, LMDeploy, TGI,
llama.cpp, Ollama): streams over HTTP and turns chunks into the domain's deltas."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

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

log = logging.getLogger("responsed.engine")
# An engine's own error text may name hosts (a proxy's error page): those go to the log only.
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)


def parse_model_map(spec: str) -> dict[str, str]:
    """'gpt-4o=Qwen/Qwen3-8B,*=Qwen/Qwen3-8B' -> mapping; '*' maps every other name."""
    mapping = {}
    for pair in filter(None, (p.strip() for p in spec.split(","))):
        name, _, target = pair.partition("=")
        if target:
            mapping[name.strip()] = target.strip()
    return mapping


_REASONING = "reasoning_content"


def _messages(messages: list[dict[str, Any]], reasoning_field: str) -> list[dict[str, Any]]:
    """Reasoning sent back rides as `reasoning_content`; some engines name it otherwise, some
    refuse unknown fields (reasoning_field "" drops it)."""
    if reasoning_field == _REASONING or not any(_REASONING in m for m in messages):
        return messages
    out = []
    for message in messages:
        if _REASONING in message:
            message = dict(message)
            text = message.pop(_REASONING)
            if reasoning_field:
                message[reasoning_field] = text
        out.append(message)
    return out


def _body(
    request: EngineRequest, model: str, reasoning_field: str = _REASONING
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": _messages(request.messages, reasoning_field),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    optional = {
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "response_format": request.response_format,
        "tools": request.tools,
        "tool_choice": request.tool_choice,
        "reasoning_effort": request.reasoning_effort,
        "user": request.user,
    }
    body.update((k, v) for k, v in optional.items() if v is not None)
    if request.assistant_prefix:
        body["messages"] = [*body["messages"],
                            {"role": "assistant", "content": request.assistant_prefix}]
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False
    body.update(request.extra)
    return body


def _error_message(status: int, payload: bytes) -> str:
    try:
        data = orjson.loads(payload)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message") if isinstance(error, dict) else None
    except orjson.JSONDecodeError:
        message = None
    text = str(message or payload[:300].decode(errors="replace"))
    if _URL.search(text):
        log.warning("the engine answered HTTP %d: %s", status, text)
        text = _URL.sub("<engine url>", text)
    return f"The engine answered HTTP {status}: {text}"


class OpenAIChatEngine:
    """Streams from the engine over pooled keep-alive connections (aiohttp: its C HTTP parser
    and O(1) pool cost a quarter of httpx's CPU per stream; see docs/benchmarks.md)."""

    def __init__(
        self,
        base_urls: list[str],
        *,
        api_key: str | None = None,
        model_map: dict[str, str] | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        max_connections: int = 1024,
        reasoning_field: str = _REASONING,
    ) -> None:
        if not base_urls:
            raise ValueError("the openai engine needs at least one engine URL")
        self._urls = itertools.cycle([u.rstrip("/") + "/chat/completions" for u in base_urls])
        self._model_map = model_map or {}
        self._reasoning_field = reasoning_field
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        # Token streams are small and constant: compressing them only costs both sides CPU.
        self._headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._session: aiohttp.ClientSession | None = None
        # vLLM and SGLang serve /tokenize beside /v1; an engine without it is asked again
        # only after a while.
        self._tokenize_urls = [_tokenize_url(u) for u in base_urls]
        self._tokenize_missing_until = 0.0

    def _model(self, name: str) -> str:
        return self._model_map.get(name) or self._model_map.get("*") or name

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0),
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=self._connect_timeout, sock_read=self._read_timeout
                ),
                headers=self._headers,
            )
        return self._session

    async def stream(self, request: EngineRequest) -> AsyncIterator[Chunk]:
        url = next(self._urls)
        content = orjson.dumps(
            _body(request, self._model(request.model), self._reasoning_field)
        )
        try:
            async with self._client().post(url, data=content) as response:
                if response.status != 200:
                    raise EngineError(_error_message(response.status, await response.read()))
                async for chunk in _parse_stream(response.content.iter_any()):
                    yield chunk
        # Clients see what went wrong, not where the engine lives: the URL goes to the log.
        except aiohttp.ClientConnectorError as error:
            log.warning("could not connect to the engine at %s: %s", url, error)
            raise EngineError("Could not connect to the engine.") from None
        except aiohttp.ServerTimeoutError as error:
            log.warning("the engine at %s timed out: %r", url, error)
            if isinstance(error, aiohttp.ConnectionTimeoutError):
                raise EngineError("The engine timed out while connecting.") from None
            raise EngineError(
                f"The engine sent nothing for {self._read_timeout:g} s."
            ) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("the engine stream from %s broke off: %r", url, error)
            raise EngineError("The engine stream broke off.") from None

    async def count_tokens(self, request: EngineRequest) -> int | None:
        """The prompt's tokens by the engine's own tokenizer and chat template (vLLM's and
        SGLang's `POST /tokenize` with chat messages); None when it has no such endpoint or
        does not answer."""
        if time.monotonic() < self._tokenize_missing_until:
            return None
        body: dict[str, Any] = {
            "messages": _messages(request.messages, self._reasoning_field),
            "add_generation_prompt": True,
        }
        model = self._model(request.model) if request.model else self._model_map.get("*")
        if model:
            body["model"] = model
        if request.tools:
            body["tools"] = request.tools
        url = self._tokenize_urls[0]
        try:
            async with self._client().post(
                url,
                data=orjson.dumps(body),
                timeout=aiohttp.ClientTimeout(total=self._connect_timeout + 20),
            ) as response:
                payload = await response.read()
                if response.status in (404, 405, 501):
                    self._tokenize_missing_until = time.monotonic() + _TOKENIZE_RETRY_S
                    return None
                if response.status != 200:
                    return None
                count = orjson.loads(payload).get("count")
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError, AttributeError):
            return None
        return count if isinstance(count, int) and not isinstance(count, bool) else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_DRAIN_S = 0.1
_TOKENIZE_RETRY_S = 300.0


def _tokenize_url(base_url: str) -> str:
    """http://host:8000/v1 -> http://host:8000/tokenize (vLLM and SGLang serve it at the root)."""
    root = base_url.rstrip("/")
    root = root.removesuffix("/v1")
    return root + "/tokenize"

_FINISH_ALIASES = {"eos": "stop", "stop_sequence": "stop", "max_tokens": "length"}


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read what follows [DONE] (normally only the chunked encoding's last chunk): a response
    left unread closes its connection, and every stream would pay for a new one. An engine
    that keeps the body open after [DONE] delays the response's end by 0.1 s at most."""
    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
        async with asyncio.timeout(_DRAIN_S):
            async for _ in chunks:
                pass


async def _parse_stream(chunks: AsyncIterator[bytes]) -> AsyncIterator[Chunk]:
    """Parse `data:` lines of the SSE stream by hand: cheaper than a generic SSE parser.

    Long because it runs once per engine chunk, the hot path: the line handling stays inline
    rather than a function call per line.
    """
    buffer = b""
    finish: str | None = None
    usage: dict[str, Any] | None = None
    done = False
    async for raw in chunks:
        buffer += raw
        lines = buffer.split(b"\n")
        buffer = lines.pop()
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                done = True
                break
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise EngineError("The engine sent a chunk that is not JSON.") from None
            if data.get("error"):
                error = data["error"]
                message = error.get("message") if isinstance(error, dict) else str(error)
                raise EngineError(f"The engine reported an error: {message}")
            if data.get("usage"):
                usage = data["usage"]
            for choice in data.get("choices") or ():
                if choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if reasoning:
                    yield ReasoningDelta(reasoning)
                if delta.get("content"):
                    yield TextDelta(delta["content"])
                if delta.get("refusal"):
                    yield RefusalDelta(delta["refusal"])
                for call in delta.get("tool_calls") or ():
                    function = call.get("function") or {}
                    yield ToolCallDelta(
                        call.get("index", 0),
                        call.get("id"),
                        function.get("name"),
                        function.get("arguments") or "",
                    )
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
        if done:
            break
    if done:
        await _drain(chunks)
    if finish is None:
        raise EngineError("The engine stream ended before the reply was finished.")
    usage = usage or {}
    details = usage.get("completion_tokens_details") or {}
    prompt_details = usage.get("prompt_tokens_details") or {}
    yield Finish(
        _FINISH_ALIASES.get(finish, finish),
        input_tokens=usage.get("prompt_tokens") or 0,
        output_tokens=usage.get("completion_tokens") or 0,
        reasoning_tokens=details.get("reasoning_tokens") or 0,
        cached_tokens=prompt_details.get("cached_tokens") or 0,
    )

"""A fast fake OpenAI Chat Completions server that streams exactly like vLLM.

Run it as `python -m bench.fake_engine --port 0 --rate 0 --tokens 256`, or in-process:

    async with FakeEngine(rate=0, tokens=256) as engine:
        ...  # engine.base_url, engine.requests

Endpoints: `POST /v1/chat/completions` (streamed or not), `GET /v1/models`, `GET /health`,
and vLLM's `POST /tokenize` with chat messages (`tokenize=False` leaves it out): its count is
the whitespace-separated words of all messages plus 3 a message (the "chat template").

Reply rules (deterministic):
- Text: the words of the last user message, cycled until `tokens` tokens; the first token
  has no leading space, the others one (" word"). With no words: "tok0", " tok1", ...
- `max_tokens` / `max_completion_tokens` below the natural length truncates the reply
  (reasoning tokens count) and the finish reason becomes "length", else it is "stop".
- `stream_options.include_usage` adds a final `"choices":[]` chunk with usage. Prompt
  tokens are the whitespace-separated words of all messages.

Scenarios, chosen by the request's `model`:
- `fake-reasoning`: 8 reasoning deltas ("think0", " think1", ...) carried both in
  `reasoning_content` and `reasoning`, then the text.
- `fake-tools`: one streamed call per tool in `tools` (or one `get_weather` call) with
  arguments `{"city": "Paris"}` in four fragments; finish reason "tool_calls".
- `fake-error`: HTTP 500 `{"error": {...}}`; `fake-400`: HTTP 400 in vLLM's flat error shape.
- `fake-hang`: headers and the role chunk, then silence.
- `fake-midstream-error`: the role chunk and 3 text chunks, then the connection is cut.
- `fake-linger`: the whole reply and [DONE], but the body is not ended (no last chunk).
- `fake-refusal`: "I can't help with that." then finish reason "content_filter".
- anything else: the text.

`rate` is tokens per second per stream (token k is due at start + (k+1)/rate, on an
absolute schedule); 0 sends as fast as possible, several chunks per write.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from types import TracebackType
from typing import Any, cast

import orjson

from bench.fake_chunks import (
    EngineFailure,
    Plan,
    RequestError,
    encode_completion,
    encode_stream,
    plan_reply,
)

MAX_HEAD = 64 * 1024
TIMER_SLACK = 0.001
BATCH = 32  # chunks per write at rate 0: cheap, yet streams still interleave
SCENARIOS = (
    "fake",
    "fake-reasoning",
    "fake-tools",
    "fake-error",
    "fake-400",
    "fake-hang",
    "fake-midstream-error",
    "fake-refusal",
    "fake-linger",
)
_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    413: b"Content Too Large",
    500: b"Internal Server Error",
}
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nserver: fake-engine\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n"
)


class FakeEngine:
    """The fake engine's HTTP server; `start()` binds and returns once listening."""

    def __init__(
        self,
        *,
        rate: float = 0,
        tokens: int = 256,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        tokenize: bool = True,
    ) -> None:
        self.rate = rate
        self.tokens = tokens
        self.host = host
        self.port = port
        self.record = record
        # Parsed JSON bodies of chat completion requests, so tests can assert what was sent.
        self.requests: list[Any] = []
        self.tokenize = tokenize
        self.tokenize_requests: list[Any] = []  # bodies of POST /tokenize
        self.connections_opened = 0
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        tasks = [c.task for c in self._connections if c.task is not None]
        for connection in list(self._connections):
            connection.abort()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> FakeEngine:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class _Request:
    __slots__ = ("body", "keep_alive", "method", "path")

    def __init__(self, method: str, path: str, body: bytes, keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.keep_alive = keep_alive


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection; requests are answered one at a time."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.writable: asyncio.Future[None] | None = None
        self.closed = False

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence the cast.
        self.transport = cast(asyncio.Transport, transport)
        self.engine._connections.add(self)
        self.engine.connections_opened += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.task is None:
            self._next_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.engine._connections.discard(self)
        self._wake_writer()
        if self.task is not None:
            self.task.cancel()

    def pause_writing(self) -> None:
        if self.writable is None:
            self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    # -- plumbing -----------------------------------------------------------------------

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _wake_writer(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    async def _drain(self) -> None:
        if self.writable is not None:
            await self.writable
        if self.closed:
            raise ConnectionResetError

    def _write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def _next_request(self) -> None:
        request = self._parse()
        if request is None:
            return
        self.task = asyncio.get_running_loop().create_task(self._serve(request))
        self.task.add_done_callback(lambda _: self._finished(request))

    def _finished(self, request: _Request) -> None:
        self.task = None
        if self.closed or self.transport is None:
            return
        if request.keep_alive:
            self._next_request()
        else:
            self.transport.close()

    def _parse(self) -> _Request | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._reject(413)
            return None
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        try:
            method, path, version = lines[0].split(" ", 2)
        except ValueError:
            self._reject(400)
            return None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._reject(400)  # clients send JSON bodies with a length
            return None
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            self._reject(400)
            return None
        if len(self.buffer) < end + 4 + length:
            return None
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
        return _Request(method, path.split("?", 1)[0], body, keep_alive)

    def _reject(self, status: int) -> None:
        self._respond(status, _error_body(status, _REASONS[status].decode(), flat=True))
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _respond(self, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
        self._write(
            b"HTTP/1.1 %d %s\r\nserver: fake-engine\r\ncontent-type: %s\r\n"
            b"content-length: %d\r\n\r\n%s"
            % (status, _REASONS[status], content_type, len(body), body)
        )

    # -- endpoints ----------------------------------------------------------------------

    async def _serve(self, request: _Request) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await self._route(request)

    async def _route(self, request: _Request) -> None:
        routes = {"/v1/chat/completions": "POST", "/v1/models": "GET", "/health": "GET"}
        if self.engine.tokenize:
            routes["/tokenize"] = "POST"
        if request.path not in routes:
            self._respond(404, _error_body(404, f"no route {request.path}", flat=True))
        elif request.method != routes[request.path]:
            self._respond(405, _error_body(405, "method not allowed", flat=True))
        elif request.path == "/health":
            self._respond(200, b"")
        elif request.path == "/v1/models":
            self._respond(200, _models_body())
        elif request.path == "/tokenize":
            self._tokenize(request.body)
        else:
            await self._chat(request.body)

    def _tokenize(self, raw: bytes) -> None:
        try:
            body = orjson.loads(raw)
            messages = body["messages"]
            count = sum(3 + len(_message_text(m).split()) for m in messages)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            self._respond(400, _error_body(400, "expected a JSON body with messages", flat=True))
            return
        self.engine.tokenize_requests.append(body)
        tokens = list(range(count))
        self._respond(200, orjson.dumps({"count": count, "max_model_len": 32768, "tokens": tokens}))

    async def _chat(self, raw: bytes) -> None:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._respond(400, _error_body(400, "request body is not valid JSON", flat=True))
            return
        if self.engine.record:
            self.engine.requests.append(body)
        try:
            plan = plan_reply(body, self.engine.tokens)
        except RequestError as exc:
            self._respond(400, _error_body(400, str(exc), flat=True))
            return
        except EngineFailure as exc:
            self._respond(500, _error_body(500, str(exc), flat=False))
            return
        if body.get("stream"):
            await self._stream(plan)
        elif plan.behaviour == "normal":
            self._respond(200, encode_completion(plan))
        elif plan.behaviour == "hang":
            await asyncio.Event().wait()
        else:
            self.abort()

    async def _stream(self, plan: Plan) -> None:
        encoded = encode_stream(plan)
        self._write(_SSE_HEAD + _http_chunk(encoded.first))
        if plan.behaviour == "hang":
            await asyncio.Event().wait()
        if plan.behaviour == "midstream-error":
            self._write(_http_chunk(b"".join(encoded.chunks[:3])))
            await self._drain()
            self.abort()
            return
        await self._send_chunks(encoded.chunks)
        if plan.behaviour == "linger":
            self._write(_http_chunk(encoded.last))
            await asyncio.Event().wait()
        self._write(_http_chunk(encoded.last) + b"0\r\n\r\n")

    async def _send_chunks(self, chunks: list[bytes]) -> None:
        rate = self.engine.rate
        if rate <= 0:
            for start in range(0, len(chunks), BATCH):
                self._write(_http_chunk(b"".join(chunks[start : start + BATCH])))
                await self._drain()
                await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        sent = 0
        while sent < len(chunks):
            # Timers may fire up to a millisecond early; count that as on time, not spin.
            due = min(len(chunks), int((loop.time() - t0 + TIMER_SLACK) * rate))
            if due > sent:
                self._write(_http_chunk(b"".join(chunks[sent:due])))
                sent = due
                await self._drain()
            else:
                await asyncio.sleep(t0 + (sent + 1) / rate - loop.time())


def _http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _error_body(status: int, message: str, *, flat: bool) -> bytes:
    kind = "BadRequestError" if status < 500 else "InternalServerError"
    error = {"message": message, "type": kind, "param": None, "code": status}
    return orjson.dumps({"object": "error", **error} if flat else {"error": error})


def _models_body() -> bytes:
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {
                    "id": name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "fake-engine",
                    "root": name,
                    "parent": None,
                    "max_model_len": 32768,  # vLLM tells the context length this way
                }
                for name in SCENARIOS
            ],
        }
    )


async def _serve_forever(args: argparse.Namespace) -> None:
    engine = FakeEngine(
        rate=args.rate, tokens=args.tokens, host=args.host, port=args.port, record=False
    )
    await engine.start()
    print(f"listening on http://{engine.host}:{engine.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await engine.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--rate", type=float, default=0, help="tokens/s per stream, 0 = max")
    parser.add_argument("--tokens", type=int, default=256, help="natural reply length")
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve_forever(args))
    else:
        uvloop.run(_serve_forever(args))


if __name__ == "__main__":
    main()

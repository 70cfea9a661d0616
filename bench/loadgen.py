"""Load generator: C concurrent streaming requests, measuring deltas as a client sees them.

    python -m bench.loadgen --base http://127.0.0.1:8000/v1 --mode responses --levels 1,16,64

Modes:
- `engine`: POST {base}/chat/completions (stream, include_usage); a delta is a chunk whose
  delta has non-empty `content`; a stream is ok when it ends with `data: [DONE]`.
- `responses`: POST {base}/responses (stream); a delta is a `response.output_text.delta`
  event; a stream is ok when its terminal event is response.completed/incomplete.

Each level keeps C connections busy, each sending fresh requests one after another until
`requests` streams have been started and `min_seconds` have passed (no new stream starts
after `max_seconds`). Deltas/s is the level's
deltas over its wall time; TTFT counts from just before a request is written.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

from bench.stream_client import Gaps, Mode, StreamConnection, StreamResult, percentile

PROMPT_WORDS = 256
MAX_TOKENS = 256


def prompt(words: int = PROMPT_WORDS) -> str:
    """`words` distinct words: an echoing engine replies with exactly as many deltas."""
    return " ".join(f"word{i}" for i in range(words))


def default_requests(concurrency: int) -> int:
    return max(64, 4 * concurrency)


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    mode: Mode
    request: bytes  # the whole HTTP request, identical for every stream of a run

    @classmethod
    def build(
        cls,
        base: str,
        mode: Mode,
        model: str = "fake",
        max_tokens: int = MAX_TOKENS,
        words: int = PROMPT_WORDS,
    ) -> Target:
        url = urlsplit(base)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"expected an http:// base URL, got {base!r}")
        text = prompt(words)
        if mode == "engine":
            path = "/chat/completions"
            body: dict[str, object] = {
                "model": model,
                "messages": [{"role": "user", "content": text}],
                "stream": True,
                "max_tokens": max_tokens,
                "stream_options": {"include_usage": True},
            }
        else:
            path = "/responses"
            body = {"model": model, "input": text, "stream": True, "max_output_tokens": max_tokens}
        payload = orjson.dumps(body)
        port = url.port or 80
        head = (
            f"POST {url.path.rstrip('/')}{path} HTTP/1.1\r\nHost: {url.hostname}:{port}\r\n"
            "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        return cls(url.hostname, port, mode, head.encode() + payload)


@dataclass
class LevelResult:
    concurrency: int
    wall_s: float = 0.0
    deltas: int = 0
    ok: int = 0
    failed: int = 0
    ttfts: list[float] = field(default_factory=list)
    gaps: Gaps = field(default_factory=Gaps)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def deltas_per_s(self) -> float:
        return self.deltas / self.wall_s if self.wall_s > 0 else 0.0

    def ttft_ms(self, p: float) -> float:
        return percentile(self.ttfts, p) * 1000

    def gap_ms(self, p: float) -> float:
        return self.gaps.percentile(p) * 1000

    def add(self, result: StreamResult) -> None:
        self.deltas += result.deltas
        if result.ok:
            self.ok += 1
            if result.ttft is not None:
                self.ttfts.append(result.ttft)
        else:
            self.failed += 1
            self.errors[result.error or "unknown"] += 1

    def summary(self) -> str:
        line = (
            f"C={self.concurrency:<4} {self.deltas_per_s:>10,.0f} deltas/s  "
            f"TTFT p50 {self.ttft_ms(50):7.1f} ms  p99 {self.ttft_ms(99):7.1f} ms  "
            f"gap p99 {self.gap_ms(99):6.2f} ms  max {self.gaps.max() * 1000:7.2f} ms  "
            f"streams ok {self.ok} failed {self.failed}"
        )
        if self.errors:
            line += "  errors: " + ", ".join(f"{e} x{n}" for e, n in self.errors.most_common(3))
        return line


async def run_level(
    target: Target,
    concurrency: int,
    requests: int | None = None,
    *,
    stream_limit_s: float = 60.0,
    min_seconds: float = 0.0,
    max_seconds: float = 120.0,
) -> LevelResult:
    """Run `requests` streams, `concurrency` at a time, and more until `min_seconds` passed.

    No stream starts after `max_seconds`, so a level lasts at most that plus one stream.
    """
    total = requests if requests is not None else default_requests(concurrency)
    result = LevelResult(concurrency)
    # Connect first, so that TTFT and wall time measure streaming rather than handshakes.
    connections: list[StreamConnection | None] = []
    for _ in range(concurrency):
        try:
            connections.append(await _connect(target, result.gaps))
        except OSError:
            connections.append(None)
    started = time.perf_counter()
    deadline = started + max_seconds
    busy_until = started + min(min_seconds, max_seconds)
    issued = 0
    last_end = started

    async def worker(connection: StreamConnection | None) -> None:
        nonlocal issued, last_end
        while (issued < total or time.perf_counter() < busy_until) and (
            time.perf_counter() < deadline
        ):
            issued += 1
            try:
                if connection is None or connection.closed:
                    connection = await _connect(target, result.gaps)
                stream = await connection.request(target.request, stream_limit_s)
            except OSError as exc:
                stream = StreamResult(False, 0, None, time.perf_counter(), f"connect: {exc}")
                await asyncio.sleep(0.05)  # a refused connection fails fast; do not spin
            result.add(stream)
            last_end = max(last_end, stream.finished)
        if connection is not None:
            connection.close()

    await asyncio.gather(*(worker(c) for c in connections))
    result.wall_s = last_end - started
    return result


async def _connect(target: Target, gaps: Gaps) -> StreamConnection:
    return await StreamConnection.open(target.host, target.port, target.mode, gaps)


def parse_levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",") if part.strip()]
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("levels are positive integers, e.g. 1,16,64")
    return levels


async def _main(args: argparse.Namespace) -> None:
    target = Target.build(args.base, args.mode, args.model, args.max_tokens, args.words)
    for level in args.levels:
        result = await run_level(
            target,
            level,
            args.requests,
            stream_limit_s=args.stream_timeout,
            min_seconds=args.min_seconds,
            max_seconds=args.max_seconds,
        )
        print(result.summary(), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--mode", choices=["engine", "responses"], default="responses")
    parser.add_argument("--model", default="fake")
    parser.add_argument("--levels", type=parse_levels, default=[1, 16, 64])
    parser.add_argument("--requests", type=int, help="streams per level (default max(64, 4C))")
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument("--words", type=int, default=PROMPT_WORDS, help="prompt length")
    parser.add_argument("--stream-timeout", type=float, default=60.0, help="seconds per stream")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="per level")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="per level")
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_main(args))
    else:
        uvloop.run(_main(args))


if __name__ == "__main__":
    main()

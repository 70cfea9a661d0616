"""Raw SSE reading for the distributed tests: frames exactly as the server sent them."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

TERMINAL = ("response.completed", "response.failed", "response.incomplete")


@dataclass
class Frame:
    raw: bytes
    seq: int
    type: str
    data: dict


def parse_frames(body: bytes) -> list[Frame]:
    frames = []
    for block in body.split(b"\n\n"):
        if not block or block.startswith(b":") or block == b"data: [DONE]":
            continue
        lines = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
        if b"data" in lines and b"event" in lines:
            data = json.loads(lines[b"data"])
            frames.append(Frame(block + b"\n\n", data["sequence_number"], data["type"], data))
    return frames


class FrameReader:
    """Reads a streaming response frame by frame; stop whenever you like."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.iter_raw()
        self._buffer = b""

    def __iter__(self):  # type: ignore[no-untyped-def]
        for chunk in self._chunks:
            self._buffer += chunk
            while b"\n\n" in self._buffer:
                block, self._buffer = self._buffer.split(b"\n\n", 1)
                yield from parse_frames(block + b"\n\n")


def check_contiguous(frames: list[Frame], first: int = 0) -> None:
    assert [f.seq for f in frames] == list(range(first, first + len(frames))), [
        f.seq for f in frames
    ][:50]
    assert sum(f.type in TERMINAL for f in frames) == 1 and frames[-1].type in TERMINAL

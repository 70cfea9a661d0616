"""`responsed tail` and `responsed show`: a response's log in a terminal, over HTTP, so they work
against a remote server as well as the local one (`--url` / RESPONSED_URL, `--api-key` /
RESPONSED_API_KEY). Exit status: 0 when the response completed, 1 when it ended otherwise
(failed, cancelled, incomplete), 2 when it could not be read."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import IO, Any

import httpx
import orjson

from domain.events import TERMINAL_EVENTS
from service.settings import DEFAULT_PORT

TERMINAL = frozenset(event.value for event in TERMINAL_EVENTS)
_POLL_S = 1.0  # how often `tail --new` asks for new responses
COMMANDS = ("tail", "show")


class Unreadable(Exception):
    """The server refused or could not be reached: the message says why."""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tail = commands.add_parser(
        "tail", help="follow a response live (text, tool calls, final status), or every new one")
    target = tail.add_mutually_exclusive_group(required=True)
    target.add_argument("response_id", nargs="?", help="the response to follow")
    target.add_argument("--new", action="store_true",
                        help="follow every new response of the key's tenant")
    tail.add_argument("--after", type=int, default=-1,
                      help="start after this sequence number (default: from the start)")
    show = commands.add_parser("show", help="print a response and its event log")
    show.add_argument("response_id")
    show.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    for parser in (tail, show):
        parser.add_argument(
            "--url", default=os.environ.get("RESPONSED_URL", f"http://127.0.0.1:{DEFAULT_PORT}"),
            help=f"the server (env RESPONSED_URL, default http://127.0.0.1:{DEFAULT_PORT})")
        parser.add_argument(
            "--api-key", default=os.environ.get("RESPONSED_API_KEY"),
            help="API key (env RESPONSED_API_KEY; needed when the server requires keys)")


def _client(args: argparse.Namespace, timeout: float | None = 30.0) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    return httpx.AsyncClient(base_url=args.url.rstrip("/"), headers=headers,
                             timeout=httpx.Timeout(timeout, connect=10.0))


def _why(reply: httpx.Response) -> str:
    try:
        return str(reply.json()["error"]["message"])
    except Exception:
        return f"HTTP {reply.status_code}"


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    try:
        reply = await client.get(path, params=params)
    except httpx.HTTPError as error:
        raise Unreadable(f"cannot reach {client.base_url}: {error}") from None
    if reply.status_code != 200:
        raise Unreadable(_why(reply))
    return reply.json()


async def events(client: httpx.AsyncClient, response_id: str, after: int) -> AsyncIterator[
    dict[str, Any]
]:
    """The response's events after `after`, stored then live, to the terminal one."""
    path = f"/v1/responses/{response_id}/events"
    try:
        async with client.stream("GET", path, params={"stream": "true", "after": after}) as reply:
            if reply.status_code != 200:
                await reply.aread()
                raise Unreadable(_why(reply))
            async for line in reply.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    yield orjson.loads(line[6:])
    except httpx.HTTPError as error:
        raise Unreadable(f"the stream from {client.base_url} broke: {error}") from None


def _usage(response: dict[str, Any]) -> str:
    usage = response.get("usage") or {}
    if not usage:
        return "no usage"
    return (f"{usage.get('input_tokens', 0)} in, {usage.get('output_tokens', 0)} out, "
            f"{usage.get('total_tokens', 0)} total tokens")


def _ending(response: dict[str, Any]) -> str:
    status = response.get("status", "?")
    line = f"[{status}] {response.get('id', '')} · {_usage(response)}"
    if status == "failed" and response.get("error"):
        line += f" · {response['error'].get('code')}: {response['error'].get('message')}"
    if status == "incomplete" and response.get("incomplete_details"):
        line += f" · {response['incomplete_details'].get('reason')}"
    return line


def _call(item: dict[str, Any]) -> str:
    arguments = item.get("arguments", item.get("input", ""))
    return f"-> tool call {item.get('name')}({arguments}) call_id={item.get('call_id')}"


class Printer:
    """One response's events as a person reads them; `prefix` marks lines in `tail --new`."""

    def __init__(self, out: IO[str], prefix: str = "", stream_text: bool = True) -> None:
        self.out, self.prefix, self.stream_text = out, prefix, stream_text
        self.text: list[str] = []
        self.mid_line = False
        self.final: dict[str, Any] | None = None

    def line(self, text: str) -> None:
        if self.mid_line:
            self.out.write("\n")
            self.mid_line = False
        self.out.write(f"{self.prefix}{text}\n")
        self.out.flush()

    def event(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        if kind == "response.created":
            r = event["response"]
            self.line(f"{r['id']} · {r.get('model')} · {r.get('status')}")
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            if self.stream_text:
                self.out.write(event["delta"])
                self.out.flush()
                self.mid_line = True
            else:
                self.text.append(event["delta"])
        elif kind == "response.output_item.done" and event["item"].get("type") in (
            "function_call", "custom_tool_call",
        ):
            self.line(_call(event["item"]))
        elif kind in TERMINAL:
            if self.text:
                self.line("".join(self.text))
            self.final = event["response"]
            self.line(_ending(self.final))


async def _tail_one(args: argparse.Namespace, out: IO[str]) -> int:
    printer = Printer(out)
    async with _client(args, timeout=None) as client:
        async for event in events(client, args.response_id, args.after):
            printer.event(event)
    if printer.final is None:
        return 2
    return 0 if printer.final.get("status") == "completed" else 1


async def _tail_new(args: argparse.Namespace, out: IO[str]) -> int:
    """Poll the list for responses not seen before; follow each as it comes."""
    async with _client(args) as lister, _client(args, timeout=None) as streamer:
        first = await _get(lister, "/v1/responses", limit=100)
        seen = {r["id"] for r in first["data"]}
        out.write(f"following new responses on {args.url} (Ctrl-C to stop)\n")
        out.flush()
        running: set[asyncio.Task[None]] = set()

        async def follow(response_id: str) -> None:
            printer = Printer(out, prefix=f"{response_id[:17]}… ", stream_text=False)
            try:
                async for event in events(streamer, response_id, -1):
                    printer.event(event)
            except Unreadable as error:
                printer.line(f"not followed: {error}")

        try:
            while True:
                page = await _get(lister, "/v1/responses", limit=100)
                for response in reversed(page["data"]):
                    if response["id"] not in seen:
                        seen.add(response["id"])
                        task = asyncio.create_task(follow(response["id"]))
                        running.add(task)
                        task.add_done_callback(running.discard)
                await asyncio.sleep(_POLL_S)
        finally:
            for task in running:
                task.cancel()


async def _pages(client: httpx.AsyncClient, response_id: str) -> tuple[list[dict[str, Any]], str]:
    found: list[dict[str, Any]] = []
    after, tenant = -1, ""
    while True:
        page = await _get(client, f"/v1/responses/{response_id}/events", after=after, limit=1000)
        tenant = page["tenant"]
        found += page["data"]
        if not page["has_more"]:
            return found, tenant
        after = page["last_sequence_number"]


async def _show(args: argparse.Namespace, out: IO[str]) -> int:
    async with _client(args) as client:
        log, tenant = await _pages(client, args.response_id)
        response: dict[str, Any] = next((e["event"]["response"] for e in reversed(log)
                         if "response" in e["event"]), {})
        try:
            inputs = (await _get(client, f"/v1/responses/{args.response_id}/input_items",
                                 order="asc", limit=100))["data"]
        except Unreadable:
            inputs = None  # an admin reading another tenant's response: its log only
    if args.json:
        out.write(orjson.dumps({"response": response, "tenant": tenant, "input_items": inputs,
                                "events": log}).decode() + "\n")
    else:
        start = log[0]["created_at"] if log else 0.0
        out.write(f"{response.get('id')}  tenant {tenant}  model {response.get('model')}\n")
        out.write(f"status {response.get('status')} · {_usage(response)}\n")
        if response.get("previous_response_id"):
            out.write(f"continues {response['previous_response_id']}\n")
        for item in inputs or []:
            out.write(f"input  {orjson.dumps(item).decode()[:200]}\n")
        for item in response.get("output", []):
            if item.get("type") == "message":
                text = "".join(c.get("text", c.get("refusal", "")) for c in item["content"])
                out.write(f"output {text}\n")
            elif item.get("type") in ("function_call", "custom_tool_call"):
                out.write(f"output {_call(item)}\n")
            else:
                out.write(f"output {orjson.dumps(item).decode()[:200]}\n")
        out.write(f"events ({len(log)}):\n")
        for e in log:
            out.write(f"  {e['sequence_number']:>5}  +{(e['created_at'] - start) * 1000:8.1f} ms"
                      f"  {e['type']}\n")
    return 0 if response.get("status") == "completed" else 1


def run(args: argparse.Namespace, out: IO[str] = sys.stdout) -> int:
    try:
        if args.command == "show":
            return asyncio.run(_show(args, out))
        if args.new:
            return asyncio.run(_tail_new(args, out))
        return asyncio.run(_tail_one(args, out))
    except Unreadable as error:
        sys.stderr.write(f"responsed: {error}\n")
        return 2
    except KeyboardInterrupt:
        return 130

"""Compaction: a long context replaced by a summary the engine writes.

The summary is asked of the engine with SUMMARY_PROMPT (the project's own wording, documented in
docs/compaction.md), sealed into a `compaction` item's `encrypted_content`, and given back to the
engine as SUMMARY_PREFIX + summary wherever that item comes back in an input. Everything here is
pure: sealing and the engine call live in the service and the worker.
"""

from __future__ import annotations

from typing import Any

from domain import ids
from domain.engine import EngineRequest
from domain.errors import InvalidRequest
from domain.inputs import Item, to_chat_messages

TRIGGER = "compaction_trigger"
# Marks the stored request of a POST /v1/responses/compact call: a worker that rebuilds the run
# from the store (takeover, an unportable job) runs it as that compaction again.
COMPACT_CALL = "compact_call"
ITEM = "compaction"

SUMMARY_PROMPT = """\
You are compacting a conversation so that it can continue in a fresh, shorter context.
Write a summary that another assistant can pick the work up from, with nothing else around it:
- the user's goals and every request they made, in order, and which are done or still open;
- decisions taken, facts learned, and constraints the user set;
- the files, commands, tools and identifiers that matter, with their exact names;
- the results of tool calls that later steps depend on (errors included);
- what was about to happen next.
Be concise and factual; do not invent anything that is not in the conversation."""

SUMMARY_PREFIX = (
    "Summary of the earlier part of this conversation (it replaces the messages it covers):\n"
)

# The summarising run answers in text only, and at most this much of it.
SUMMARY_MAX_TOKENS = 4096


def trigger_index(items: list[Item]) -> int | None:
    """Where the compaction_trigger item is; it must be the last input item."""
    positions = [i for i, item in enumerate(items) if item.get("type") == TRIGGER]
    if not positions:
        return None
    if positions != [len(items) - 1]:
        raise InvalidRequest(
            "A 'compaction_trigger' item must be the last item of 'input'.",
            param=f"input[{positions[0]}]",
            code="invalid_value",
        )
    return positions[0]


def summary_request(
    model: str, instructions: str | None, items: list[Item]
) -> EngineRequest:
    """The engine request that writes the summary of `items` (opened for the engine)."""
    messages = to_chat_messages(instructions, [i for i in items if i.get("type") != TRIGGER])
    messages.append({"role": "user", "content": SUMMARY_PROMPT})
    return EngineRequest(
        model=model, messages=messages, max_tokens=SUMMARY_MAX_TOKENS, purpose="summarise"
    )


def compaction_item(encrypted_content: str) -> dict[str, Any]:
    return {"id": ids.new_id(ids.COMPACTION), "type": ITEM, "encrypted_content": encrypted_content}


def kept_user_messages(items: list[Item]) -> list[Item]:
    """The user messages a compacted window keeps before its compaction item."""
    return [i for i in items if i.get("type") == "message" and i.get("role") == "user"]


def summary_message(summary: str) -> dict[str, Any]:
    """How an opened compaction item reaches a Chat Completions engine."""
    return {"role": "user", "content": SUMMARY_PREFIX + summary}


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A tokenizer-free estimate (about four characters a token) of a chat request's input,
    for `context_management` thresholds. It errs high on code and low on CJK text."""
    chars = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(p.get("text") or "") for p in content if isinstance(p, dict))
        for call in message.get("tool_calls") or ():
            chars += len(call["function"].get("arguments") or "")
        chars += 4  # role and framing
    return (chars + 3) // 4


def compaction_threshold(context_management: list[Any] | None) -> int | None:
    """The `compact_threshold` of the request's compaction entry, if it has one."""
    for index, entry in enumerate(context_management or ()):
        if not isinstance(entry, dict) or entry.get("type") != "compaction":
            kind = entry.get("type") if isinstance(entry, dict) else None
            raise InvalidRequest(
                f"Invalid value for 'context_management[{index}].type': expected 'compaction', "
                f"but got {kind!r}.",
                param=f"context_management[{index}].type",
                code="invalid_value",
            )
        threshold = entry.get("compact_threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise InvalidRequest(
                f"Invalid 'context_management[{index}].compact_threshold': expected a positive "
                "integer number of tokens (this server has no default threshold).",
                param=f"context_management[{index}].compact_threshold",
                code="invalid_value" if threshold is not None else "missing_required_parameter",
            )
        return threshold
    return None

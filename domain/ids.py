"""Identifiers: a type prefix plus random URL-safe text, as OpenAI's ids look."""

import secrets

RESPONSE = "resp"
MESSAGE = "msg"
FUNCTION_CALL = "fc"
FUNCTION_CALL_OUTPUT = "fco"
CUSTOM_TOOL_CALL = "ctc"
CUSTOM_TOOL_CALL_OUTPUT = "ctco"
CALL = "call"
REASONING = "rs"
CONVERSATION = "conv"
COMPACTION = "cmp"


def new_id(prefix: str) -> str:
    # 24 random bytes in hex: unguessable, URL-safe, and the same alphabet OpenAI uses.
    return f"{prefix}_{secrets.token_hex(24)}"

"""The schema, as SQLAlchemy Core tables. Migrations in migrations/ create exactly this."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

responses = Table(
    "responses",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("owner", String, nullable=False),
    Column("status", String(20), nullable=False),
    Column("model", String, nullable=False),
    Column("background", Boolean, nullable=False, default=False),
    Column("request", LargeBinary, nullable=False),
    # Fencing: one writer owns the log; it appends only while epoch and last_seq match.
    Column("last_seq", Integer, nullable=False, default=-1),
    Column("epoch", Integer, nullable=False, default=0),
    Column("worker", String, nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("snapshot", LargeBinary, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("completed_at", BigInteger, nullable=True),
    # The conversation the response continues, and how many leading input items came from it:
    # the rest (new input) and the output are appended to it when the response completes.
    Column("conversation_id", String(80), nullable=True),
    Column("history_count", Integer, nullable=False, default=0, server_default="0"),
)
Index("ix_responses_status", responses.c.status)
Index("ix_responses_owner_created", responses.c.owner, responses.c.created_at)
# Retention: the purge walks responses oldest first.
Index("ix_responses_created", responses.c.created_at)

response_events = Table(
    "response_events",
    metadata,
    Column("response_id", String(80), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("type", String(80), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    # sha256(previous hash + data): the response's events form a chain (storage.chain).
    Column("hash", LargeBinary, nullable=True),
    # Clustered on (response_id, seq): one B-tree to write, not a table plus an index.
    sqlite_with_rowid=False,
)

response_input_items = Table(
    "response_input_items",
    metadata,
    Column("response_id", String(80), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("item_id", String, nullable=False),
    Column("data", LargeBinary, nullable=False),
)
Index(
    "ix_response_input_items_item",
    response_input_items.c.response_id,
    response_input_items.c.item_id,
)
Index("ix_response_input_items_item_id", response_input_items.c.item_id)

# The output items of finished responses, so item_reference can find them by id.
response_output_items = Table(
    "response_output_items",
    metadata,
    Column("response_id", String(80), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("item_id", String, nullable=False),
    Column("data", LargeBinary, nullable=False),
)
Index("ix_response_output_items_item_id", response_output_items.c.item_id)

# Tables whose rows belong to one response (by `response_id`) and go with it, on delete and on
# purge. A table that stores more per response joins this list. (The tool-call audit is not
# one: it records what happened, whatever is deleted later.)
RESPONSE_CHILDREN: tuple[Table, ...] = (
    response_events, response_input_items, response_output_items
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("owner", String, nullable=False),
    Column("metadata", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("next_position", Integer, nullable=False, default=0),
    # The response running on it: one at a time, so its history never interleaves.
    Column("active_response_id", String(80), nullable=True),
    Column("locked_at", Float, nullable=True),
)
Index("ix_conversations_owner_created", conversations.c.owner, conversations.c.created_at)
# Retention: the conversation purge walks them oldest first.
Index("ix_conversations_created", conversations.c.created_at)

conversation_items = Table(
    "conversation_items",
    metadata,
    Column("conversation_id", String(80), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("item_id", String, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_conversation_items_item_id", conversation_items.c.item_id)

# The tool-call audit: one row per call, written in the same transaction as its events.
tool_calls = Table(
    "tool_calls",
    metadata,
    Column("id", String(80), primary_key=True),  # the call item's id
    Column("owner", String, nullable=False),
    Column("response_id", String(80), nullable=False),
    Column("conversation_id", String(80), nullable=True),
    Column("model", String, nullable=False),
    Column("type", String(40), nullable=False),  # function_call | custom_tool_call
    Column("name", String, nullable=False),
    Column("call_id", String, nullable=False),
    Column("arguments", Text, nullable=False),  # a custom call's input
    Column("status", String(20), nullable=False),  # the call item's: completed | incomplete
    Column("stored", Boolean, nullable=False),  # false: a store:false response (no event log)
    Column("created_at", Float, nullable=False),
    Column("output", Text, nullable=True),
    Column("output_at", Float, nullable=True),
    Column("output_response_id", String(80), nullable=True),
)
Index("ix_tool_calls_owner_created", tool_calls.c.owner, tool_calls.c.created_at, tool_calls.c.id)
Index("ix_tool_calls_owner_call_id", tool_calls.c.owner, tool_calls.c.call_id)
Index("ix_tool_calls_response", tool_calls.c.response_id)
Index("ix_tool_calls_conversation", tool_calls.c.conversation_id)

# API keys: only a digest of each key is kept (domain.keys). Revoked keys stay, marked.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),  # the public key id inside the key
    Column("tenant", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("admin", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)
Index("ix_api_keys_tenant", api_keys.c.tenant)

# The audit ledger (storage.ledger): every response that ended, with its final chain head, and
# every deletion and purge, each entry an HMAC chained to the one before it.
audit_ledger = Table(
    "audit_ledger",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("response_id", String(80), nullable=False),
    Column("kind", String(16), nullable=False),  # ended | deleted | purged
    Column("status", String(20), nullable=True),
    Column("last_seq", Integer, nullable=True),
    Column("head", LargeBinary, nullable=True),
    Column("at", Float, nullable=False),
    Column("mac", LargeBinary, nullable=False),
)
Index("ix_audit_ledger_response", audit_ledger.c.response_id)

# Idempotency keys of creates: a repeat with the same key (same tenant, same body) answers the
# response the first request made. Rows expire (service.idempotency).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("owner", String, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("digest", String(64), nullable=False),  # sha256 of the canonical request body
    Column("response_id", String(80), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)
Index("ix_idempotency_keys_expires", idempotency_keys.c.expires_at)

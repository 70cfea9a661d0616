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

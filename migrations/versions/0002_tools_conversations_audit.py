"""Tools, conversations and the tool-call audit: event hash chains, output items,
conversations and their items, the tool_calls projection.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from storage.chain import genesis, link

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _backfill_hashes() -> None:
    """Chain the events stored before this revision, one response at a time."""
    conn = op.get_bind()
    events = sa.table(
        "response_events",
        sa.column("response_id", sa.String),
        sa.column("seq", sa.Integer),
        sa.column("data", sa.LargeBinary),
        sa.column("hash", sa.LargeBinary),
    )
    ids = [row[0] for row in conn.execute(sa.select(events.c.response_id).distinct())]
    for response_id in ids:
        rows = conn.execute(
            sa.select(events.c.seq, events.c.data)
            .where(events.c.response_id == response_id)
            .order_by(events.c.seq)
        ).all()
        previous = genesis(response_id)
        updates = []
        for seq, data in rows:
            previous = link(previous, bytes(data))
            updates.append({"r": response_id, "s": seq, "h": previous})
        conn.execute(
            events.update()
            .where(events.c.response_id == sa.bindparam("r"), events.c.seq == sa.bindparam("s"))
            .values(hash=sa.bindparam("h")),
            updates,
        )


def upgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("conversation_id", sa.String(80), nullable=True))
        batch.add_column(
            sa.Column("history_count", sa.Integer, nullable=False, server_default="0")
        )
    with op.batch_alter_table("response_events") as batch:
        batch.add_column(sa.Column("hash", sa.LargeBinary, nullable=True))
    _backfill_hashes()
    op.create_index("ix_response_input_items_item_id", "response_input_items", ["item_id"])
    op.create_table(
        "response_output_items",
        sa.Column("response_id", sa.String(80), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.String, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_response_output_items_item_id", "response_output_items", ["item_id"])
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("owner", sa.String, nullable=False),
        sa.Column("metadata", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("next_position", sa.Integer, nullable=False),
        sa.Column("active_response_id", sa.String(80), nullable=True),
        sa.Column("locked_at", sa.Float, nullable=True),
    )
    op.create_index("ix_conversations_owner_created", "conversations", ["owner", "created_at"])
    op.create_table(
        "conversation_items",
        sa.Column("conversation_id", sa.String(80), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.String, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_conversation_items_item_id", "conversation_items", ["item_id"])
    op.create_table(
        "tool_calls",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("owner", sa.String, nullable=False),
        sa.Column("response_id", sa.String(80), nullable=False),
        sa.Column("conversation_id", sa.String(80), nullable=True),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("call_id", sa.String, nullable=False),
        sa.Column("arguments", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stored", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("output", sa.Text, nullable=True),
        sa.Column("output_at", sa.Float, nullable=True),
        sa.Column("output_response_id", sa.String(80), nullable=True),
    )
    op.create_index("ix_tool_calls_owner_created", "tool_calls", ["owner", "created_at", "id"])
    op.create_index("ix_tool_calls_owner_call_id", "tool_calls", ["owner", "call_id"])
    op.create_index("ix_tool_calls_response", "tool_calls", ["response_id"])
    op.create_index("ix_tool_calls_conversation", "tool_calls", ["conversation_id"])


def downgrade() -> None:
    op.drop_table("tool_calls")
    op.drop_table("conversation_items")
    op.drop_table("conversations")
    op.drop_index("ix_response_output_items_item_id", "response_output_items")
    op.drop_table("response_output_items")
    op.drop_index("ix_response_input_items_item_id", "response_input_items")
    with op.batch_alter_table("response_events") as batch:
        batch.drop_column("hash")
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("history_count")
        batch.drop_column("conversation_id")

"""The event store: responses, their event logs and their input items.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("owner", sa.String, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("background", sa.Boolean, nullable=False),
        sa.Column("request", sa.LargeBinary, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("worker", sa.String, nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("snapshot", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("completed_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_responses_status", "responses", ["status"])
    op.create_index("ix_responses_owner_created", "responses", ["owner", "created_at"])
    op.create_table(
        "response_events",
        sa.Column("response_id", sa.String(80), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("type", sa.String(80), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "response_input_items",
        sa.Column("response_id", sa.String(80), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.String, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index(
        "ix_response_input_items_item", "response_input_items", ["response_id", "item_id"]
    )


def downgrade() -> None:
    op.drop_table("response_input_items")
    op.drop_table("response_events")
    op.drop_table("responses")

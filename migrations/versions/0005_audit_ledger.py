"""The audit ledger (ended responses with their final chain heads, deletions and purges), and
the index the conversation purge walks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_ledger",
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("response_id", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(20), nullable=True),
        sa.Column("last_seq", sa.Integer, nullable=True),
        sa.Column("head", sa.LargeBinary, nullable=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("mac", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_audit_ledger_response", "audit_ledger", ["response_id"])
    op.create_index("ix_conversations_created", "conversations", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_conversations_created", table_name="conversations")
    op.drop_index("ix_audit_ledger_response", table_name="audit_ledger")
    op.drop_table("audit_ledger")

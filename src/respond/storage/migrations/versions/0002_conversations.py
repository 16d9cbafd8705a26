"""Conversations and their items; owners on every row; chains stored once per response.

- `conversations` and `conversation_items` (one row per item, a position per conversation).
- `responses.owner` (existing rows get "default"), `responses.conversation_position`.
- `responses.context_items` becomes nullable: rows written from now on store only their own input (and
  output, in `response`); the context of a chain is assembled from them. Older rows keep their full
  context, which the assembly uses as it finds them (nothing is rewritten).
- `schema_version` (the pre-Alembic marker) is dropped: `alembic_version` replaces it.

Revision ID: 0002_conversations
Revises: 0001_baseline
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_conversations"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("responses") as batch:  # SQLite: copies the table; PostgreSQL: ALTERs
        batch.add_column(sa.Column("owner", sa.String(), nullable=False, server_default="default"))
        batch.add_column(sa.Column("conversation_position", sa.BigInteger, nullable=True))
        batch.alter_column("context_items", existing_type=sa.JSON, nullable=True)
    op.create_index("ix_responses_owner_created_seq", "responses", ["owner", "created_at", "seq"])
    op.drop_table("schema_version")

    op.create_table(
        "conversations",
        sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(), nullable=False, unique=True),
        sa.Column("owner", sa.String(), nullable=False, server_default="default"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("next_position", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "conversation_items",
        sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False, server_default="default"),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("response_id", sa.String(), nullable=True),
        sa.Column("item", sa.JSON, nullable=False),
        sa.UniqueConstraint("conversation_id", "position", name="uq_conversation_items_position"),
    )
    op.create_index("ix_conversation_items_item_id", "conversation_items", ["conversation_id", "id"])

"""Baseline: the schema Respond created before it had migrations (`schema_version` 1).

A database created by that code (a `schema_version` table holding 1, no `alembic_version`) is stamped at
this revision without running it (`respond.storage.migrate`), so its data stays as it is.

Revision ID: 0001_baseline
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    schema_version = op.create_table(
        "schema_version",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    )
    op.bulk_insert(schema_version, [{"version": 1}])
    op.create_table(
        "responses",
        sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=True),
        sa.Column("previous_response_id", sa.String(), nullable=True),
        sa.Column("conversation_id", sa.String(), nullable=True),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("input_items", sa.JSON, nullable=False),
        sa.Column("context_items", sa.JSON, nullable=False),
    )
    op.create_index("ix_responses_created_seq", "responses", ["created_at", "seq"])
    op.create_index("ix_responses_model_created_seq", "responses", ["model", "created_at", "seq"])
    op.create_index("ix_responses_previous", "responses", ["previous_response_id"])
    op.create_index("ix_responses_conversation", "responses", ["conversation_id"])

"""The schema: one set of tables for SQLite and PostgreSQL.

JSON documents live in `JSON` columns. On PostgreSQL that is the text `json` type, not `jsonb`, on purpose:
`json` keeps the document exactly as written (key order, `\\u0000` in strings), and we never query inside
it; the columns we filter and sort on are plain index columns next to it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

SCHEMA_VERSION = 1

metadata = MetaData()

# SQLite only auto-increments an `INTEGER PRIMARY KEY` (the rowid alias); PostgreSQL gets a BIGSERIAL.
_Seq = BigInteger().with_variant(Integer(), "sqlite")

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
)

responses = Table(
    "responses",
    metadata,
    # Insertion order: ids are random and created_at has 1 s resolution, so listing sorts by (created_at, seq).
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("id", String(), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("model", String(), nullable=True),
    Column("status", String(), nullable=True),
    Column("previous_response_id", String(), nullable=True),
    Column("conversation_id", String(), nullable=True),
    Column("response", JSON, nullable=False),
    Column("input_items", JSON, nullable=False),
    Column("context_items", JSON, nullable=False),
)

Index("ix_responses_created_seq", responses.c.created_at, responses.c.seq)
Index("ix_responses_model_created_seq", responses.c.model, responses.c.created_at, responses.c.seq)
Index("ix_responses_previous", responses.c.previous_response_id)
Index("ix_responses_conversation", responses.c.conversation_id)

"""The schema at the head migration: one set of tables for SQLite and PostgreSQL.

Repositories build their statements from these `Table`s. The database itself is created and upgraded only by
the Alembic migrations in `respond/storage/migrations/` (see `migrate.py`); a schema change is a new migration
plus the matching edit here (tests/storage/test_migrations.py checks that the two agree).

JSON documents live in `JSON` columns. On PostgreSQL that is the text `json` type, not `jsonb`, on purpose:
`json` keeps the document exactly as written (key order, `\\u0000` in strings), and we never query inside
it; the columns we filter and sort on are plain index columns next to it.

Every row records its `owner` (one implicit owner, "default", until authentication exists) and every
repository query filters by it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    false,
)

DEFAULT_OWNER = "default"

metadata = MetaData()

# SQLite only auto-increments an `INTEGER PRIMARY KEY` (the rowid alias); PostgreSQL gets a BIGSERIAL.
_Seq = BigInteger().with_variant(Integer(), "sqlite")

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
    # This response's own input items (what the client sent, canonical form), stored once.
    Column("input_items", JSON, nullable=False),
    # Only rows written before migration 0002: the whole context the response was created with (the chain
    # before it copied in). Newer rows leave it NULL and their context is assembled by `history.py`.
    Column("context_items", JSON(none_as_null=True), nullable=True),
    Column("owner", String(), nullable=False, server_default=DEFAULT_OWNER),
    # A response in a conversation: the conversation position of the last item it appended (its context,
    # when a later response continues it with previous_response_id, is the conversation up to there).
    Column("conversation_position", BigInteger, nullable=True),
    # The server process running this (stored, foreground) response; NULL once it is stored finished.
    Column("instance", String(), nullable=True),
)

Index("ix_responses_created_seq", responses.c.created_at, responses.c.seq)
Index("ix_responses_model_created_seq", responses.c.model, responses.c.created_at, responses.c.seq)
Index("ix_responses_previous", responses.c.previous_response_id)
Index("ix_responses_conversation", responses.c.conversation_id)
Index("ix_responses_owner_created_seq", responses.c.owner, responses.c.created_at, responses.c.seq)
Index("ix_responses_instance", responses.c.instance)

conversations = Table(
    "conversations",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("id", String(), nullable=False, unique=True),
    Column("owner", String(), nullable=False, server_default=DEFAULT_OWNER),
    Column("created_at", BigInteger, nullable=False),
    Column("metadata", JSON, nullable=False),
    # Positions handed out so far: appending n items is `next_position += n` on this row, which also
    # serializes concurrent appends to one conversation (row lock on PostgreSQL, the one writer on SQLite).
    Column("next_position", BigInteger, nullable=False, server_default="0"),
)

conversation_items = Table(
    "conversation_items",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("conversation_id", String(), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("id", String(), nullable=False),
    Column("owner", String(), nullable=False, server_default=DEFAULT_OWNER),
    Column("type", String(), nullable=False),
    # The response whose turn appended the item (NULL for items added through the items endpoints).
    Column("response_id", String(), nullable=True),
    Column("item", JSON, nullable=False),
    UniqueConstraint("conversation_id", "position", name="uq_conversation_items_position"),
)

Index("ix_conversation_items_item_id", conversation_items.c.conversation_id, conversation_items.c.id)

# Server processes, each renewing its lease while it lives (a process that stopped renewing is gone).
instances = Table(
    "instances",
    metadata,
    Column("id", String(), primary_key=True),
    Column("started_at", Float, nullable=False),
    Column("lease_until", Float, nullable=False),
)

# Background responses being run or waiting to run (migration 0005; see responses/runs.py): deleted when the run ends.
response_runs = Table(
    "response_runs",
    metadata,
    Column("response_id", String(), primary_key=True),
    Column("owner", String(), nullable=False, server_default=DEFAULT_OWNER),
    Column("background", Boolean(), nullable=False),
    Column("state", String(), nullable=False),  # queued | running
    Column("request", JSON(none_as_null=True), nullable=True),  # background: the create request, to run it
    Column("instance", String(), nullable=True),  # the process running it
    Column("lease_until", Float, nullable=True),  # renewed by that process; expired: the process is gone
    Column("cancel_requested", Boolean(), nullable=False, server_default=false()),
    Column("created_at", Float, nullable=False),
)

Index("ix_response_runs_state_created", response_runs.c.state, response_runs.c.created_at)
Index("ix_response_runs_instance", response_runs.c.instance)

# The stream events of background responses, one row per batch, kept for `background.event_retention`.
response_events = Table(
    "response_events",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("response_id", String(), nullable=False),
    Column("owner", String(), nullable=False, server_default=DEFAULT_OWNER),
    Column("first_sequence", Integer, nullable=False),
    Column("last_sequence", Integer, nullable=False),
    Column("events", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
)

Index("ix_response_events_response", response_events.c.response_id, response_events.c.last_sequence)
Index("ix_response_events_created", response_events.c.created_at)

# Files and vector stores (migration 0003_files) live in their own module, in this same metadata.
# API keys (migration 0004_api_keys) likewise.
from respond.storage import auth_tables, files_tables  # noqa: E402,F401

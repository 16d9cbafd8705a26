"""Tables of the Files and Vector Stores aggregates, at the head migration (`0003_files` creates them; these
definitions live in the one `tables.metadata`, which `tables.py` imports this module into).

Every row has an `owner` (one implicit owner, `DEFAULT_OWNER`, until auth is on) and every query filters by
it. Lists page by `seq` (insertion order), which ids (random) and `created_at` (1 s) cannot give.

- `files`: one uploaded file; its bytes live in the `BlobStore` under `blob_key`.
- `vector_stores`: a store, with the embedding model and dimension it was built with (set by the first
  embedded chunk; a store refuses vectors of another model or dimension).
- `vector_store_files`: a file attached to a store. This is also the ingestion queue: a row `in_progress`
  is work to do; a worker claims it by writing `lease_owner` / `lease_until` (PostgreSQL: `FOR UPDATE SKIP
  LOCKED`, so any server process can take work), and a lease that runs out (a killed process) is taken again.
- `vector_store_file_batches`: a batch of attachments; its files point at it with `batch_id`.
- `vector_store_chunks`: the index. `embedding` is float32 little-endian bytes on SQLite (searched with
  sqlite-vec's `vec_distance_cosine`) and a pgvector `vector` on PostgreSQL; keyword search uses the FTS5
  table `vector_store_chunks_fts` (rowid = chunk `seq`) on SQLite and the generated `tsv` column (GIN) on
  PostgreSQL. `attributes` is a copy of the file's attributes so filters run inside the search query; it is
  JSONB on PostgreSQL (queried with `->`), JSON text on SQLite (queried with `json_extract`).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names as pg_ischema_names
from sqlalchemy.types import UserDefinedType

from respond.storage.tables import DEFAULT_OWNER, metadata

__all__ = ["DEFAULT_OWNER", "files", "vector_store_chunks", "vector_store_file_batches", "vector_store_files",
           "vector_stores"]

_Seq = BigInteger().with_variant(Integer(), "sqlite")
_Attributes = JSON().with_variant(JSONB(), "postgresql")


class _PgVector(UserDefinedType):
    """pgvector's `vector` (no fixed dimension: stores of different models share the table)."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "vector"


Embedding = LargeBinary().with_variant(_PgVector(), "postgresql")
pg_ischema_names["vector"] = _PgVector  # so reflection (schema comparisons) knows the type

files = Table(
    "files",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("id", String(), nullable=False, unique=True),
    Column("owner", String(), nullable=False, server_default=DEFAULT_OWNER),
    Column("created_at", Integer, nullable=False),
    Column("expires_at", Integer, nullable=True),
    Column("filename", String(), nullable=False),
    Column("purpose", String(), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("blob_key", String(), nullable=False),
    Column("content_type", String(), nullable=True),
)
Index("ix_files_owner_purpose_seq", files.c.owner, files.c.purpose, files.c.seq)
Index("ix_files_owner_seq", files.c.owner, files.c.seq)

vector_stores = Table(
    "vector_stores",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("id", String(), nullable=False, unique=True),
    Column("owner", String(), nullable=False, server_default=DEFAULT_OWNER),
    Column("created_at", Integer, nullable=False),
    Column("last_active_at", Integer, nullable=True),
    Column("name", String(), nullable=True),
    Column("metadata", JSON, nullable=True),
    Column("expires_after", JSON, nullable=True),
    Column("expires_at", Integer, nullable=True),
    Column("embedding_model", String(), nullable=False),
    Column("embedding_dimension", Integer, nullable=True),
)
Index("ix_vector_stores_owner_seq", vector_stores.c.owner, vector_stores.c.seq)

vector_store_files = Table(
    "vector_store_files",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("vector_store_id", String(), nullable=False),
    Column("file_id", String(), nullable=False),
    Column("owner", String(), nullable=False, server_default=DEFAULT_OWNER),
    Column("created_at", Integer, nullable=False),
    Column("status", String(), nullable=False),  # in_progress | completed | failed | cancelled
    Column("last_error", JSON, nullable=True),
    Column("attributes", JSON, nullable=True),
    Column("chunking_strategy", JSON, nullable=False),
    Column("usage_bytes", BigInteger, nullable=False, default=0),
    Column("batch_id", String(), nullable=True),
    Column("lease_owner", String(), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("test_id", String(), nullable=True),  # the request's recording test id, for background embeddings
)
Index("ux_vector_store_files_store_file", vector_store_files.c.vector_store_id, vector_store_files.c.file_id,
      unique=True)
Index("ix_vector_store_files_status", vector_store_files.c.status, vector_store_files.c.lease_until)
Index("ix_vector_store_files_batch", vector_store_files.c.batch_id)
Index("ix_vector_store_files_file", vector_store_files.c.file_id)

vector_store_file_batches = Table(
    "vector_store_file_batches",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("id", String(), nullable=False, unique=True),
    Column("vector_store_id", String(), nullable=False),
    Column("owner", String(), nullable=False, server_default=DEFAULT_OWNER),
    Column("created_at", Integer, nullable=False),
    Column("cancelled", Integer, nullable=False, default=0),
)

vector_store_chunks = Table(
    "vector_store_chunks",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("owner", String(), nullable=False, server_default=DEFAULT_OWNER),
    Column("vector_store_id", String(), nullable=False),
    Column("file_id", String(), nullable=False),
    Column("chunk_index", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("token_count", Integer, nullable=False),
    Column("attributes", _Attributes, nullable=True),
    Column("embedding", Embedding, nullable=False),
)
Index("ix_vector_store_chunks_store_file", vector_store_chunks.c.vector_store_id, vector_store_chunks.c.file_id)

# Made by migration 0003_files beside these tables, not described here (schema comparisons skip them):
# SQLite: the FTS5 table `vector_store_chunks_fts` (+ its shadow tables); PostgreSQL: the `vector` extension,
# the generated column `vector_store_chunks.tsv` and its GIN index `ix_vector_store_chunks_tsv`.
NOT_IN_METADATA = ("vector_store_chunks_fts", "tsv", "ix_vector_store_chunks_tsv")

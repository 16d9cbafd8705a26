"""The `api_keys` table (migration 0004_api_keys): keys created through the admin API.

A row keeps the key's sha256 digest (never the key), a short display prefix, and the `owner` the key
authenticates as. Revoking sets `revoked_at` (the row stays, for the listing and the audit trail).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table

from respond.storage.tables import DEFAULT_OWNER, metadata

_Seq = BigInteger().with_variant(Integer(), "sqlite")

api_keys = Table(
    "api_keys",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("id", String(), nullable=False, unique=True),
    Column("owner", String(), nullable=False, server_default=DEFAULT_OWNER),
    Column("name", String(), nullable=True),
    Column("key_hash", String(), nullable=False, unique=True),
    Column("prefix", String(), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    # optional quotas of the key (auth/quotas.py); NULL: unlimited
    Column("requests_per_minute", BigInteger, nullable=True),
    Column("tokens_per_minute", BigInteger, nullable=True),
)

Index("ix_api_keys_owner_seq", api_keys.c.owner, api_keys.c.seq)

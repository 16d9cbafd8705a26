"""Runs (background queue, leases, cancel flags) and the stored stream events of background responses.

- `response_runs`: one row per response being run (or waiting to run): background responses from the moment
  they are queued, stored foreground responses while they stream. Which process runs it (`instance`), until
  when its lease holds (`lease_until`, renewed by that process), whether a cancel was asked. The row is
  deleted when the run ends; a row whose lease expired belongs to a dead process (see responses/runs.py).
- `responses.instance`: the process running a stored foreground response (set while it runs, NULL once it
  is stored finished), and `instances`: one row per server process with its lease, renewed while it lives.
  An in_progress response whose process's lease expired is ended `failed` (one write at start, none more at
  the end: the final save clears `instance`).
- `response_events`: the stream events of background responses, one row per batch the loop produced
  (`first_sequence`..`last_sequence`), for `GET /v1/responses/{id}?stream=true&starting_after=N`.

Revision ID: 0005_background
Revises: 0004_api_keys
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_background"
down_revision = "0004_api_keys"
branch_labels = None
depends_on = None

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("instance", sa.String(), nullable=True))
    op.create_index("ix_responses_instance", "responses", ["instance"])
    op.create_table(
        "instances",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
    )
    op.create_table(
        "response_runs",
        sa.Column("response_id", sa.String(), primary_key=True),
        sa.Column("owner", sa.String(), nullable=False, server_default="default"),
        sa.Column("background", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("request", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("instance", sa.String(), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_response_runs_state_created", "response_runs", ["state", "created_at"])
    op.create_index("ix_response_runs_instance", "response_runs", ["instance"])
    op.create_table(
        "response_events",
        sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
        sa.Column("response_id", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False, server_default="default"),
        sa.Column("first_sequence", sa.Integer(), nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_response_events_response", "response_events", ["response_id", "last_sequence"])
    op.create_index("ix_response_events_created", "response_events", ["created_at"])

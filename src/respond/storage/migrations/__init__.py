"""Alembic migrations of Respond's database (run by `respond.storage.migrate`)."""

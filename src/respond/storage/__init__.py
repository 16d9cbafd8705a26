"""Storage: the async database (SQLite or PostgreSQL) and the repositories on top of it."""

from respond.storage.engine import Database
from respond.storage.responses_repo import Page, ResponseStore, StoredResponse

__all__ = ["Database", "Page", "ResponseStore", "StoredResponse"]

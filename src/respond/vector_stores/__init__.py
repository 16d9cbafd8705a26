"""Vector stores: the service (stores, attached files, batches, search) and background ingestion."""

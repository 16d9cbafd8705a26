"""Alembic environment: always run by `respond.storage.migrate` on a connection it opened and locked.

Offline (SQL script) mode is not supported: Respond upgrades its database itself, on start or with
`respond db upgrade`.
"""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run Respond's migrations with `respond db upgrade` (respond.storage.migrate), "
                       "not the alembic command")

context.configure(connection=connection, target_metadata=None,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()

"""Alembic's entry: always run with the connection `migrations.upgrade` hands it."""

from __future__ import annotations

from alembic import context

conn = context.config.attributes["connection"]
# batch mode: SQLite cannot alter a column in place, batch ops copy the table instead
context.configure(connection=conn, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

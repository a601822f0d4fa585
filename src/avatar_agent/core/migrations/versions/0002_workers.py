"""Several workers on one database: each registers itself with its load and a
heartbeat (`workers`), and each call records the worker that holds it (`calls.worker`;
NULL for calls from before, and for a single server without `cluster.worker_id`).

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("address", sa.String(256), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("max_calls", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("worker", sa.String(64), nullable=True))
        batch.create_index("ix_calls_worker", ["worker"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_worker")
        batch.drop_column("worker")
    op.drop_table("workers")

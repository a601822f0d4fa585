"""The schema as it was when migrations began: calls, their curves, events and
escalations, heartbeats, operators with roles, their login sessions, persona versions.

A database made before migrations already has some of these tables: only the missing
ones are created, and an `operators` table from before roles gets its `role` column
(every existing row reads as `operator`).

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _call_part(name: str, *columns: sa.Column[object]) -> None:
    """A table of rows that belong to one moment of a call (store._CallPart)."""
    op.create_table(
        name,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("t", sa.Float, nullable=False),
        *columns,
    )
    op.create_index(f"ix_{name}_call_id", name, ["call_id"])
    op.create_index(f"ix_{name}_created_at", name, ["created_at"])


def upgrade() -> None:
    have = set(sa.inspect(op.get_bind()).get_table_names())
    if "calls" not in have:
        op.create_table(
            "calls",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("end_reason", sa.String(64), nullable=True),
            sa.Column("consent_analysis", sa.Boolean, nullable=False),
        )
    if "affect_points" not in have:
        _call_part("affect_points",
                   sa.Column("arousal", sa.Float, nullable=False),
                   sa.Column("valence", sa.Float, nullable=False),
                   sa.Column("anger_index", sa.Float, nullable=False),
                   sa.Column("level", sa.String(16), nullable=False),
                   sa.Column("emotion", sa.String(16), nullable=False))
    if "call_events" not in have:
        _call_part("call_events",
                   sa.Column("kind", sa.String(32), nullable=False),
                   sa.Column("data", sa.JSON, nullable=False))
    if "escalations" not in have:
        _call_part("escalations",
                   sa.Column("reason", sa.String(32), nullable=False),
                   sa.Column("detail", sa.String(256), nullable=False),
                   sa.Column("acknowledged_by", sa.String(64), nullable=True),
                   sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
    if "operators" not in have:
        op.create_table(
            "operators",
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("password_hash", sa.String(256), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("role", sa.String(16), nullable=False, server_default="operator"),
        )
    else:
        columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("operators")}
        if "role" not in columns:
            with op.batch_alter_table("operators") as batch:
                batch.add_column(sa.Column("role", sa.String(16), nullable=False,
                                           server_default="operator"))
    if "call_heartbeats" not in have:
        op.create_table(
            "call_heartbeats",
            sa.Column("call_id", sa.String(64), primary_key=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        )
    if "operator_sessions" not in have:
        op.create_table(
            "operator_sessions",
            sa.Column("sid_hash", sa.String(64), primary_key=True),
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("expires_at", sa.Float, nullable=False),
        )
        op.create_index("ix_operator_sessions_name", "operator_sessions", ["name"])
    if "persona_versions" not in have:
        op.create_table(
            "persona_versions",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("persona", sa.String(64), nullable=False),
            sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("operator", sa.String(64), nullable=False),
            sa.Column("action", sa.String(16), nullable=False),
            sa.Column("changes", sa.JSON, nullable=False),
            sa.Column("before", sa.Text, nullable=False),
            sa.Column("after", sa.Text, nullable=False),
            sa.Column("undone", sa.Boolean, nullable=False),
        )
        op.create_index("ix_persona_versions_persona", "persona_versions", ["persona"])


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: restore a backup instead")

"""The tables calls are stored in (SQLAlchemy ORM); `core.store` reads and writes them.

The schema itself is `core.migrations`' (Alembic): a change here needs a migration.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class CallRow(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    end_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    consent_analysis: Mapped[bool] = mapped_column(Boolean)
    # the worker that holds the call (cluster.worker_id); None on a single server
    worker: Mapped[str | None] = mapped_column(String(64), default=None, index=True)


class WorkerRow(Base):
    """A worker of a cluster: where it is, its load, and when it was last alive. A row
    whose heartbeat is too old is a lost worker: another ends its calls."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(256))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    calls: Mapped[int] = mapped_column(Integer)
    max_calls: Mapped[int] = mapped_column(Integer)


class _CallPart:
    """Columns of every row that belongs to one moment of a call (t: seconds on its
    media clock); created_at is what retention purges by."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    t: Mapped[float] = mapped_column(Float)


class AffectPointRow(_CallPart, Base):
    """One point of a call's emotion curve."""

    __tablename__ = "affect_points"

    arousal: Mapped[float] = mapped_column(Float)
    valence: Mapped[float] = mapped_column(Float)
    anger_index: Mapped[float] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(16))
    emotion: Mapped[str] = mapped_column(String(16))


class CallEventRow(_CallPart, Base):
    """Something that happened in a call: a micro-expression, a level change, ..."""

    __tablename__ = "call_events"

    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class OperatorRow(Base):
    """A person who may use the dashboard; only an argon2 hash of the password is kept."""

    __tablename__ = "operators"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # operator (dashboard), tuner (also the persona tuning page) or admin (everything);
    # rows made before roles existed read as operator (see _add_role_column).
    role: Mapped[str] = mapped_column(String(16), default="operator",
                                      server_default="operator")


class CallHeartbeatRow(Base):
    """When a live call was last known alive (the server writes it every few seconds):
    after a crash, that is when the call ended, not when the server came back."""

    __tablename__ = "call_heartbeats"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class EscalationRow(_CallPart, Base):
    """A call the escalation policy handed to a human, and who took it when."""

    __tablename__ = "escalations"

    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(256))
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), default=None)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )


class PersonaVersionRow(Base):
    """One save (or undo) of a persona file from the tuning page: who, when, what moved,
    and the file's bytes before and after, so an undo restores it exactly."""

    __tablename__ = "persona_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    persona: Mapped[str] = mapped_column(String(64), index=True)
    saved_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    operator: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # save | undo
    changes: Mapped[list[Any]] = mapped_column(JSON)
    before: Mapped[str] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)
    undone: Mapped[bool] = mapped_column(Boolean, default=False)

"""Operator login sessions, kept server-side so that they can be ended.

A login token is signed (a forged one costs no database read), and it names a session
id; the session must still exist here. Logout ends the session, `avatar-agent
operators revoke NAME` ends all of an operator's sessions (from another process:
hence the table, not memory), and expired sessions are purged. Only a SHA-256 of the
session id is stored, so a copy of the database does not hold working logins.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Column, Engine, Float, MetaData, String, Table, delete, insert, select

_metadata = MetaData()
_sessions = Table(
    "operator_sessions",
    _metadata,
    Column("sid_hash", String(64), primary_key=True),
    Column("name", String(64), index=True, nullable=False),
    Column("created_at", Float, nullable=False),  # seconds since the epoch
    Column("expires_at", Float, nullable=False),
)


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


class SessionStore:
    """Blocking (SQLAlchemy): call it through `AsyncStore.run` from the event loop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _metadata.create_all(engine)

    def open(self, name: str, now: float, ttl_s: float) -> str:
        """A new session for `name`; returns its id (goes into the signed token only)."""
        sid = secrets.token_urlsafe(24)
        with self.engine.begin() as con:
            con.execute(insert(_sessions).values(
                sid_hash=_hash(sid), name=name, created_at=now, expires_at=now + ttl_s))
        return sid

    def is_live(self, sid: str, name: str, now: float) -> bool:
        with self.engine.connect() as con:
            row = con.execute(select(_sessions.c.name, _sessions.c.expires_at)
                              .where(_sessions.c.sid_hash == _hash(sid))).first()
        return row is not None and row.name == name and now < row.expires_at

    def end(self, sid: str) -> None:
        with self.engine.begin() as con:
            con.execute(delete(_sessions).where(_sessions.c.sid_hash == _hash(sid)))

    def revoke(self, name: str) -> int:
        """End every session of `name`; how many there were."""
        with self.engine.begin() as con:
            return con.execute(delete(_sessions).where(_sessions.c.name == name)).rowcount

    def purge(self, now: float) -> int:
        with self.engine.begin() as con:
            return con.execute(delete(_sessions).where(_sessions.c.expires_at <= now)).rowcount

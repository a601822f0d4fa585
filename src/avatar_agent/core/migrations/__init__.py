"""Schema migrations (Alembic), run at every start-up, for SQLite and PostgreSQL alike.

`upgrade(engine)` brings any database to the newest schema: an empty one, one made by
an older release, or one made before migrations existed (its tables were made by
`create_all`: the first revision creates only what is missing and adds the columns
later releases added, so no row is lost). Several workers starting at once against
one PostgreSQL take turns through an advisory lock, so no two run the same DDL.

A new revision is a file in `versions/` written by hand (down_revision: the newest
one); `tests/unit/test_migrations.py` checks that the revisions end at exactly the
schema the models declare.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

HERE = Path(__file__).resolve().parent
# Any fixed 64-bit number that no other user of the database takes as its lock.
_LOCK_KEY = 0x61766174617221


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    return cfg


def head() -> str:
    """The newest revision."""
    rev = ScriptDirectory.from_config(_config()).get_current_head()
    assert rev is not None
    return rev


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    # Alembic tells every start which dialect it found at INFO: only its warnings matter
    logging.getLogger("alembic").setLevel(logging.WARNING)
    cfg = _config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # held until this transaction ends; DDL on PostgreSQL is transactional, so
            # the next worker sees the finished schema and finds nothing left to do
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

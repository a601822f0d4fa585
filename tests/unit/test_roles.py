"""Operator roles in the store: a database made before roles keeps working, every old
row reading as `operator`; roles are set on creation and kept on a password change."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from avatar_agent.core.store import Store
from avatar_agent.operators.roles import ROLES, require_role, valid_role


def test_a_database_from_before_roles_gets_the_column_and_operator_rows(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE operators (name VARCHAR(64) PRIMARY KEY, "
                "password_hash VARCHAR(256), created_at DATETIME)")
    con.execute("INSERT INTO operators VALUES ('carol', 'h', '2026-01-01 00:00:00')")
    con.commit()
    con.close()
    store = Store(f"sqlite:///{db}")
    try:
        assert store.operator_role("carol") == "operator"
        assert store.operator_hash("carol") == "h"
        assert store.add_operator("dave", "h2", role="tuner")
        assert store.operator_role("dave") == "tuner"
    finally:
        store.close()
    # opening it again does not try to add the column twice
    Store(f"sqlite:///{db}").close()


def test_roles_on_create_and_replace(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        assert store.add_operator("ann", "h")
        assert store.operator_role("ann") == "operator"
        assert store.add_operator("ann", "h2", replace=True, role="admin")
        assert store.operator_role("ann") == "admin"
        assert store.add_operator("ann", "h3", replace=True)  # no role given: kept
        assert store.operator_role("ann") == "admin"
        assert store.operator_hash("ann") == "h3"
        assert store.operator_role("nobody") is None
    finally:
        store.close()


def test_role_names() -> None:
    assert ROLES == ("operator", "tuner", "admin")
    assert valid_role("tuner") and not valid_role("root")
    with pytest.raises(ValueError):
        require_role("root")

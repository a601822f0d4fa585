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


def test_persona_versions_history_and_undo(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    try:
        v1 = store.add_persona_version("support", "tina", "save",
                                       [{"path": "states.idle.lean", "value": 0.5}], "A\n", "B\n")
        store.add_persona_version("support", "ann", "save", [], "B\n", "C\n")
        assert store.undo_persona_save("support", "B\n") is None  # the file is C now
        undone = store.undo_persona_save("support", "C\n")
        assert undone is not None and undone["before"] == "B\n" and undone["operator"] == "ann"
        again = store.undo_persona_save("support", "B\n")  # walks back one save further
        assert again is not None and again["id"] == v1["id"] and again["before"] == "A\n"
        assert store.undo_persona_save("support", "A\n") is None
        history = store.persona_history("support")
        assert [h["operator"] for h in history] == ["ann", "tina"]
        assert all(h["undone"] for h in history) and "before" not in history[0]
        assert history[1]["changes"] == [{"path": "states.idle.lean", "value": 0.5}]
        assert store.persona_history("receptionist") == []
    finally:
        store.close()

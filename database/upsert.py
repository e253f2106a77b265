"""`INSERT … ON CONFLICT` for the session's backend: SQLite and PostgreSQL each have their own insert construct."""
from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def conflict_insert(session: Session, table: Any):
    """An insert of `table` (model or Table) that supports on_conflict_do_nothing / on_conflict_do_update."""
    backend = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return backend.insert(table)

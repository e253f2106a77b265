"""Faults a PostgreSQL server deals out: ending one backend, as a fast shutdown or an administrator does."""
from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

SERVER_DB = os.environ.get("DATABASE_URL", "")
postgres_only = pytest.mark.skipif(not SERVER_DB, reason="the server ends the connection: PostgreSQL only")


def terminate(backend_pid: int) -> None:
    """End one backend from another connection."""
    engine = sa.create_engine(SERVER_DB)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid}).scalar() is True
    finally:
        engine.dispose()

"""The driver's own cursor (bulk writes, COPY) and the rollback after a failure, both safe when the server goes away.

Errors raised by a raw driver cursor come out as SQLAlchemy's (an `OperationalError` when the server is gone or
restarting), so the handlers that answer 503 see them; a connection the server dropped is invalidated, so the pool
never hands it out again. A rollback on such a connection fails too: `rollback_quietly` is for error handlers,
which must answer whatever state the connection is in.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


@contextmanager
def driver_cursor(session: Session, statement: str) -> Iterator[Any]:
    """A cursor of the driver on the session's connection; driver errors come out as SQLAlchemy's, named
    `statement` (parameters hidden)."""
    connection = session.connection()
    dialect = connection.dialect
    driver_connection = connection.connection.driver_connection
    cursor = driver_connection.cursor()
    try:
        yield cursor
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, driver_connection, cursor)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
                                  connection_invalidated=lost, dialect=dialect) from exc
    finally:
        _close(cursor, dialect.loaded_dbapi.Error)


def _close(cursor: Any, driver_error: type[Exception]) -> None:
    try:
        cursor.close()
    except driver_error:
        log.debug("cursor of a lost connection not closed", exc_info=True)


def rollback_quietly(session: Session) -> None:
    """Roll back; a connection lost meanwhile (server restarting) is only logged: its transaction is gone anyway."""
    try:
        session.rollback()
    except SQLAlchemyError as exc:
        log.info("rollback on a lost connection: %s", exc.__class__.__name__)

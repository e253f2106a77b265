"""Request deadlines: every web request gets a time budget (`REQUEST_TIMEOUT`), enforced where the time is spent.

- Before every SQL statement: past the deadline, `DeadlineExceeded` is raised instead of running it.
- PostgreSQL: each transaction's `statement_timeout` is the time left (re-armed while it runs), so a slow
  statement is cancelled by the server at the deadline.
- SQLite: a progress handler interrupts a running statement once the deadline has passed, and the busy timeout
  (waiting for the writer's lock) never runs past it.
- Python loops that take time call `check()`.

Work outside a request (commands, RQ jobs) has no deadline. No Flask in here; `init_deadlines` wires it to an app.
"""
from __future__ import annotations

import math
import time
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

SLACK = 1.0  # seconds a statement armed earlier may run past the deadline before it is re-armed
SQLITE_BUSY_MS = 30_000  # the busy timeout of SQLite connections outside requests (app.py sets it on connect)
PROGRESS_STEPS = 20_000  # SQLite virtual-machine steps between two deadline checks
_ARMED = "meterdesk_deadline_armed"  # connection info: (deadline, armed at) of the timeout last set

_deadline: ContextVar[tuple[float, float] | None] = ContextVar("meterdesk_deadline", default=None)


class DeadlineExceeded(Exception):
    """The request ran out of its time budget; nothing it did is committed unless it committed before."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"request took longer than {seconds:g} s")
        self.seconds = seconds


def start(seconds: float) -> None:
    """Give the work of this context (a request) `seconds` from now."""
    _deadline.set((time.monotonic() + seconds, seconds))


def clear() -> None:
    _deadline.set(None)


def budget() -> float | None:
    """The seconds this context was given, or None when it has no deadline."""
    current = _deadline.get()
    return None if current is None else current[1]


def remaining() -> float | None:
    """Seconds left before the deadline (negative once passed), or None when there is none."""
    current = _deadline.get()
    return None if current is None else current[0] - time.monotonic()


def passed() -> bool:
    left = remaining()
    return left is not None and left <= 0


def check() -> None:
    """Raise DeadlineExceeded when this context's deadline has passed."""
    current = _deadline.get()
    if current is not None and time.monotonic() >= current[0]:
        raise DeadlineExceeded(current[1])


def _sqlite_progress() -> int:
    return 1 if passed() else 0  # non-zero interrupts the statement ("interrupted")


@event.listens_for(Engine, "connect")
def _watch_sqlite(dbapi_connection: Any, connection_record: Any) -> None:
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.set_progress_handler(_sqlite_progress, PROGRESS_STEPS)


@event.listens_for(Engine, "begin")
def _new_transaction(conn: Any) -> None:
    if conn.dialect.name == "postgresql":
        conn.info.pop(_ARMED, None)  # SET LOCAL ends with the transaction


@event.listens_for(Engine, "before_cursor_execute")
def _before_statement(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                      executemany: bool) -> None:
    check()
    arm(conn.dialect.name, conn.connection.dbapi_connection, conn.info)


def arm(backend: str, dbapi_connection: Any, info: dict) -> None:
    """Make the database stop this connection's statements at the deadline: PostgreSQL's `statement_timeout` for
    the transaction, SQLite's busy timeout. Also for statements run on the driver's cursor directly."""
    current = _deadline.get()
    armed = info.get(_ARMED)
    if current is None:
        if armed is not None and backend == "sqlite":
            dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        info.pop(_ARMED, None)
        return
    now = time.monotonic()
    if armed is not None and armed[0] == current[0] and now - armed[1] < SLACK:
        return
    left_ms = max(1, math.ceil((current[0] - now) * 1000))
    if backend == "postgresql":
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", (str(left_ms),))
    elif backend == "sqlite":
        dbapi_connection.execute(f"PRAGMA busy_timeout = {min(left_ms, SQLITE_BUSY_MS)}")
    info[_ARMED] = (current[0], now)

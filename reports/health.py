"""Health of the moving parts: database, queue, workers and the last billing and projection runs.

Never raises: a database or Redis that cannot be reached is reported as such.
"""
from __future__ import annotations

from typing import Any

from flask import current_app, has_app_context
from rq import Queue, Worker
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from models import JobRun

DEFAULT_QUEUE = "meterdesk"


def _queue_name() -> str:
    return current_app.config.get("RQ_QUEUE", DEFAULT_QUEUE) if has_app_context() else DEFAULT_QUEUE


def last_run(session: Session, kind: str) -> dict[str, Any] | None:
    """The latest run of `kind` (any status): when it finished, its status and message."""
    run = session.execute(select(JobRun.id, JobRun.finished_at, JobRun.status, JobRun.message)
                          .where(JobRun.kind == kind).order_by(JobRun.id.desc()).limit(1)).first()
    if run is None:
        return None
    return {"id": run.id, "finished_at": run.finished_at, "status": run.status, "message": run.message}


def _database(session: Session) -> dict[str, Any]:
    try:
        session.execute(text("SELECT 1"))
        found = {"db_ok": True, "last_billing": last_run(session, "billing"),
                 "last_projection": last_run(session, "projection")}
        session.rollback()
        return found
    except Exception:
        session.rollback()
        return {"db_ok": False, "last_billing": None, "last_projection": None}


def _queue(redis_conn: Any, queue_name: str) -> dict[str, Any]:
    if redis_conn is None:
        return {"redis_ok": False, "queue_depth": None, "workers": None}
    try:
        redis_conn.ping()
        queue = Queue(queue_name, connection=redis_conn)
        return {"redis_ok": True, "queue_depth": queue.count, "workers": len(Worker.all(queue=queue))}
    except Exception:
        return {"redis_ok": False, "queue_depth": None, "workers": None}


def health(session: Session, redis_conn: Any, queue_name: str | None = None) -> dict[str, Any]:
    """db_ok, last_billing, last_projection (dict|None: id, finished_at, status, message), queue_depth,
    workers (alive workers serving the queue) and redis_ok; None where a part cannot be reached."""
    result = _database(session)
    result.update(_queue(redis_conn, queue_name or _queue_name()))
    result["ok"] = bool(result["db_ok"] and result["redis_ok"] and result["workers"])
    return result


def public_health(report: dict[str, Any]) -> dict[str, Any]:
    """The report as plain JSON for /healthz: run times and statuses, no run messages."""
    def run(found: dict[str, Any] | None) -> dict[str, Any] | None:
        if found is None:
            return None
        finished = found["finished_at"]
        return {"finished_at": finished.isoformat() if finished else None, "status": found["status"]}

    return {**report, "last_billing": run(report["last_billing"]), "last_projection": run(report["last_projection"])}

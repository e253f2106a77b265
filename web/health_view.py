"""`GET /healthz`: the health report as JSON, without login and without secrets (503 when a part is down)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from extensions import db
from reports.health import health, public_health

bp = Blueprint("health", __name__)


def _redis():
    from jobs.redis import get_redis

    try:
        return get_redis()
    except Exception:
        return None


@bp.get("/healthz")
def healthz():
    report = public_health(health(db.session, _redis()))
    return jsonify(report), (200 if report["db_ok"] and report["redis_ok"] else 503)

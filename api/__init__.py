"""The JSON API under /api/v1: ingest, records, reports and its OpenAPI document."""
from __future__ import annotations

from flask import Blueprint, Flask

from extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def init_api(app: Flask) -> None:
    """Register the API blueprint (CSRF-exempt: it authenticates by key), its error bodies and rate limiter."""
    from api.auth import init_limiter
    from api.errors import register_error_handlers

    register_error_handlers(app)
    init_limiter(app)
    csrf.exempt(bp)
    app.register_blueprint(bp)


from api import errors, openapi, readings, records, reports, terms  # noqa: E402,F401  (handlers and routes)

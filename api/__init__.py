"""The JSON API under /api/v1: HTTP only (routes, keys, errors, the OpenAPI document) over ingest/, jobs/, reports/."""
from __future__ import annotations

from flask import Flask

from api import alerts, errors, openapi, readings, records, reports, webhooks  # noqa: F401  (their handlers and routes join the blueprint)
from api.auth import init_limiter
from api.blueprint import bp
from api.errors import register_error_handlers
from extensions import csrf


def init_api(app: Flask) -> None:
    """Register the API blueprint (CSRF-exempt: it authenticates by key), its error bodies and rate limiter."""
    register_error_handlers(app)
    init_limiter(app)
    csrf.exempt(bp)
    app.register_blueprint(bp)

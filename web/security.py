"""Response hardening (CSP with a per-request nonce, security headers, redirects kept on the site), request
deadlines and login throttling."""
from __future__ import annotations

import base64
import hashlib
import secrets

from flask import Flask, abort, current_app, g, request
from sqlalchemy.exc import DataError, OperationalError

from database import deadline
from database.driver import rollback_quietly
from extensions import db
from web.redirects import keep_redirects_on_site

LOGIN_FAILURES_ALLOWED = 5
LOGIN_WINDOW_SECONDS = 15 * 60


def csp_nonce() -> str:
    """The nonce of this response's Content-Security-Policy, for inline <script> tags."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


# Flask-Admin's templates carry these inline handlers (delete confirmation, filter links): allowed by hash only.
INLINE_HANDLERS = (
    "return faHelpers.safeConfirm('Are you sure you want to delete this record?');",
    "return false;",
)


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


HANDLER_HASHES = " ".join(_sha256(h) for h in INLINE_HANDLERS)


def content_security_policy(nonce: str) -> str:
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}' 'unsafe-hashes' {HANDLER_HASHES}",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def add_security_headers(response):
    response.headers.setdefault("Content-Security-Policy", content_security_policy(csp_nonce()))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def refuse_nul_bytes() -> None:
    """400 for a NUL character in the path, query string or form fields: PostgreSQL refuses it in text (a 500 in
    the making) and SQLite would store it; no legitimate name, filter or id contains one."""
    fields = list(request.args.items(multi=True))
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        fields += list(request.form.items(multi=True))
    if "\x00" in request.path or any("\x00" in name or "\x00" in value for name, value in fields):
        abort(400, "Text must not contain NUL characters.")


def value_refused(exc: Exception):
    """A hostile value the database refuses (an id beyond its integer range, a negative page): 400, not 500."""
    rollback_quietly(db.session)
    return "Bad request: a value is out of range or has invalid characters.", 400, {"Content-Type": "text/plain"}


def trust_proxies(app: Flask) -> None:
    """Behind `TRUSTED_PROXIES` (a count, e.g. 1 for one nginx) reverse proxies, take the scheme, host and client
    address from their X-Forwarded-* headers, so cookies are Secure behind HTTPS and login throttling sees the
    real client. Off by default: without a proxy that overwrites them, those headers are the client's to forge."""
    hops = int(app.config.get("TRUSTED_PROXIES") or 0)
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def start_deadline() -> None:
    deadline.start(current_app.config["REQUEST_TIMEOUT"])


def end_deadline(exc: BaseException | None = None) -> None:
    deadline.clear()


def deadline_exceeded(exc: Exception):
    """A page that ran out of its time budget (REQUEST_TIMEOUT): a plain 503 page, never an HTML 500."""
    rollback_quietly(db.session)
    seconds = deadline.budget() or current_app.config["REQUEST_TIMEOUT"]
    current_app.logger.warning("deadline of %g s passed during %s %s", seconds, request.method, request.path)
    return (f"This page took longer than {seconds:g} s and was stopped. Retry shortly, or ask for less (a shorter "
            "period, a smaller page).", 503, {"Content-Type": "text/plain", "Retry-After": "5"})


def database_unavailable(exc: Exception):
    """The database is down, restarting or locked past the busy timeout: 503 with Retry-After, not a 500."""
    if deadline.passed():
        return deadline_exceeded(exc)
    rollback_quietly(db.session)
    current_app.logger.warning("database unavailable during %s %s: %s", request.method, request.path, exc)
    return ("The database is unavailable just now; retry shortly.", 503,
            {"Content-Type": "text/plain", "Retry-After": "5"})


def init_security(app: Flask) -> None:
    trust_proxies(app)
    app.after_request(keep_redirects_on_site)
    app.before_request(start_deadline)
    app.teardown_request(end_deadline)
    app.register_error_handler(deadline.DeadlineExceeded, deadline_exceeded)
    app.after_request(add_security_headers)
    app.before_request(refuse_nul_bytes)
    app.register_error_handler(DataError, value_refused)
    app.register_error_handler(OverflowError, value_refused)
    app.register_error_handler(OperationalError, database_unavailable)
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.before_request
    def secure_cookies_behind_https() -> None:
        if request.is_secure:
            app.config["SESSION_COOKIE_SECURE"] = True
            app.config["REMEMBER_COOKIE_SECURE"] = True


def _throttle_key(email: str) -> str:
    return f"meterdesk:login-attempts:{email.lower()}:{request.remote_addr or '-'}"


def count_login_attempt(email: str) -> int:
    """Count this login attempt before any password is checked; the seconds to wait when it is over the limit
    (0 = check the password). One MULTI/EXEC counts it, so parallel guesses each get their own number and at most
    `LOGIN_FAILURES_ALLOWED` passwords are checked per window; a successful login clears the count."""
    try:
        from jobs.redis import get_redis

        with get_redis().pipeline() as pipe:
            key = _throttle_key(email)
            pipe.set(key, 0, ex=LOGIN_WINDOW_SECONDS, nx=True)
            pipe.incr(key)
            pipe.ttl(key)
            _, attempts, ttl = pipe.execute()
        return max(1, int(ttl)) if int(attempts) > LOGIN_FAILURES_ALLOWED else 0
    except Exception:
        return 0


def clear_login_attempts(email: str) -> None:
    try:
        from jobs.redis import get_redis

        get_redis().delete(_throttle_key(email))
    except Exception:
        pass

"""Redirect targets taken from a request (`next`, `url`, the Referer): only paths of this site get through."""
from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from flask import request, url_for

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
DECODING_ROUNDS = 4


def _decoded(text: str) -> str | None:
    """`text` percent-decoded until it no longer changes (None when it still changes after a few rounds)."""
    for _ in range(DECODING_ROUNDS):
        decoded = unquote(text)
        if decoded == text:
            return text
        text = decoded
    return None


def is_site_path(target: str) -> bool:
    """True when `target` is a path of this site however a browser reads it: no scheme or host, no `//` or `\\`
    start, no backslash or control character anywhere (browsers drop tabs and newlines and read `\\` as `/`), and
    none of these hidden behind percent-encoding in its path."""
    if not target or CONTROL_CHARACTERS.search(target) or "\\" in target:
        return False
    path = _decoded(re.split(r"[?#]", target, maxsplit=1)[0])
    if path is None or CONTROL_CHARACTERS.search(path) or "\\" in path:
        return False
    if not path.startswith("/") or path.startswith("//"):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def _own_origin_path(target: str) -> str:
    """An absolute URL of this very site (a Referer) as its path and query; anything else unchanged."""
    if CONTROL_CHARACTERS.search(target):
        return target
    parts = urlsplit(target)
    if parts.scheme == request.scheme and parts.netloc == request.host:
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return target


def safe_next(target: str | None, default: str | None = None) -> str:
    """Where to send the browser: `target` when it stays on this site, else `default` (the dashboard)."""
    if target:
        target = _own_origin_path(target)
        if is_site_path(target):
            return target
    return default or url_for("admin.index")


def keep_redirects_on_site(response):
    """After every request: a redirect whose Location would leave the site (a target a route or Flask-Admin took
    from the request) goes to the dashboard instead."""
    location = response.headers.get("Location")
    if location is not None and 300 <= response.status_code < 400:
        response.headers["Location"] = safe_next(location)
    return response

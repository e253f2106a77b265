"""Which webhook URLs are accepted: absolute http or https URLs with a host, no credentials, no odd characters."""
from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000


def check_webhook_url(url: str) -> str:
    """Return the URL stripped, or raise ValueError saying what is wrong with it."""
    url = (url or "").strip()
    if not url:
        raise ValueError("a URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise ValueError("the URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("the URL must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the URL must not carry a user name or password (use the signature to authenticate)")
    if port == 0:
        raise ValueError("the URL's port must be 1-65535")
    if parts.fragment:
        raise ValueError("the URL must not have a #fragment")
    return url

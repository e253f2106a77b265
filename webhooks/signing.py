"""Webhook secrets: made here, shown once, kept encrypted with a key derived from SECRET_KEY; bodies signed with them."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SIGNATURE_HEADER = "X-Meterdesk-Signature"
SECRET_PREFIX = "whsec_"


class SecretUnreadable(Exception):
    """The stored secret cannot be decrypted: SECRET_KEY changed since it was made."""


def new_secret() -> str:
    """A fresh signing secret (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _fernet(secret_key: str) -> Fernet:
    """Fernet keyed by HKDF-SHA256 of the app's SECRET_KEY (so the webhook key is not the session key itself)."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"meterdesk", info=b"webhook secrets").derive(
        secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal_secret(secret: str, secret_key: str) -> str:
    """The secret encrypted for storage."""
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def open_secret(sealed: str, secret_key: str) -> str:
    """The stored secret in clear, to sign with; raises SecretUnreadable when SECRET_KEY changed."""
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        raise SecretUnreadable("the webhook secret cannot be decrypted (was SECRET_KEY changed?): "
                               "make a new secret for this webhook") from None


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256(secret, body)>`, the value of the X-Meterdesk-Signature header."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver checks: the header equals the signature of the raw body (constant-time)."""
    return header is not None and hmac.compare_digest(signature(secret, body), header)

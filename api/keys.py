"""API keys: generated once, stored as a SHA-256 hash, looked up by their display prefix."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select

from extensions import db
from models import API_KEY_ROLES, ApiKey, Client

KEY_MARK = "mdk"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def split_key(raw: str) -> str | None:
    """The display prefix (`mdk_xxxxxxxx`) of a presented key, or None when it is not of our form."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_MARK or len(parts[1]) != 8 or not parts[2]:
        return None
    return f"{parts[0]}_{parts[1]}"


def new_key() -> tuple[str, str, str]:
    """A fresh key as (raw key, display prefix, hash)."""
    prefix = f"{KEY_MARK}_{secrets.token_hex(4)}"
    raw = f"{prefix}_{secrets.token_urlsafe(32)}"
    return raw, prefix, hash_key(raw)


def create_api_key(name: str, role: str, client_id: int | None = None) -> tuple[ApiKey, str]:
    """Create a key; return the row and the raw key (shown once, never stored)."""
    name = (name or "").strip()
    if not name:
        raise ValueError("name must not be empty")
    if role not in API_KEY_ROLES:
        raise ValueError(f"role must be one of {', '.join(API_KEY_ROLES)}")
    if client_id is not None and db.session.get(Client, client_id) is None:
        raise ValueError(f"no client with id {client_id}")
    raw, prefix, digest = new_key()
    key = ApiKey(name=name, role=role, client_id=client_id, prefix=prefix, key_hash=digest, enabled=True)
    db.session.add(key)
    db.session.commit()
    return key, raw


def find_key(raw: str) -> ApiKey | None:
    """The enabled key matching a presented raw key, compared in constant time."""
    prefix = split_key(raw)
    if prefix is None:
        return None
    key = db.session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not key.enabled or not hmac.compare_digest(key.key_hash, hash_key(raw)):
        return None
    return key

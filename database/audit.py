"""The audit trail: every ORM insert, update and delete writes an AuditLog row in the same transaction."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import g, has_app_context
from sqlalchemy import Column, event, inspect
from sqlalchemy.orm import Session

from models import AlertEpisode, AssetUnit, AuditLog, JobRun, Projection, Reading, WebhookDelivery, WebhookEvent

SECRET_FIELDS = {"password_hash", "key_hash", "secret"}
UNAUDITED = (AuditLog, Reading, AssetUnit, JobRun, Projection, WebhookEvent, WebhookDelivery, AlertEpisode)
REDACTED = "[redacted]"


def set_actor(user_id: int | None = None, api_key_id: int | None = None) -> None:
    """Name who is acting for the audit rows written in this app context."""
    g.audit_user_id = user_id
    g.audit_api_key_id = api_key_id


def _actor() -> tuple[int | None, int | None]:
    if not has_app_context():
        return None, None
    return g.get("audit_user_id"), g.get("audit_api_key_id")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "id") and hasattr(value, "__table__"):
        return value.id
    return value


def _field(key: str, value: Any) -> Any:
    return REDACTED if key in SECRET_FIELDS and value is not None else _plain(value)


def _table_columns(mapper: Any) -> list[str]:
    """Keys of the attributes stored in the object's own table (not column_property expressions)."""
    return [prop.key for prop in mapper.column_attrs
            if isinstance(prop.columns[0], Column) and prop.columns[0].table is mapper.local_table]


def _column_values(obj: Any) -> dict[str, Any]:
    state = inspect(obj)
    return {key: _field(key, state.attrs[key].value) for key in _table_columns(state.mapper)}


def _collection_ids(values: Any) -> list[Any]:
    return sorted(getattr(v, "id", None) or 0 for v in values)


def _changes(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Old and new values of the fields changed on a dirty object, relationships as id lists."""
    state = inspect(obj)
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    columns = set(_table_columns(state.mapper))
    for attr in state.attrs:
        hist = attr.load_history()
        if not hist.has_changes():
            continue
        prop = state.mapper.attrs[attr.key]
        if attr.key in columns:
            old[attr.key] = _field(attr.key, hist.deleted[0] if hist.deleted else None)
            new[attr.key] = _field(attr.key, hist.added[0] if hist.added else None)
        elif getattr(prop, "uselist", False):
            current = list(hist.unchanged) + list(hist.added)
            previous = list(hist.unchanged) + list(hist.deleted)
            old[f"{attr.key[:-1]}_ids"] = _collection_ids(previous)
            new[f"{attr.key[:-1]}_ids"] = _collection_ids(current)
    return old, new


def _record_id(obj: Any) -> str | None:
    state = inspect(obj)
    identity = state.mapper.primary_key_from_instance(obj)
    return ",".join(str(part) for part in identity) if all(p is not None for p in identity) else None


def _rows(session: Session) -> list[dict[str, Any]]:
    user_id, api_key_id = _actor()
    rows: list[dict[str, Any]] = []

    def add(action: str, obj: Any, old: dict | None, new: dict | None) -> None:
        rows.append({
            "action": action, "table": obj.__tablename__, "record_id": _record_id(obj),
            "user_id": user_id, "api_key_id": api_key_id, "old_values": old, "new_values": new,
        })

    for obj in session.new:
        if not isinstance(obj, UNAUDITED):
            add("create", obj, None, _column_values(obj))
    for obj in session.dirty:
        if isinstance(obj, UNAUDITED) or not session.is_modified(obj, include_collections=True):
            continue
        old, new = _changes(obj)
        if old or new:
            add("update", obj, old, new)
    deleted_values = session.info.pop("audit_deleted", {})
    for obj in session.deleted:
        if not isinstance(obj, UNAUDITED):
            add("delete", obj, deleted_values.get(id(obj)) or {}, None)
    return rows


@event.listens_for(Session, "before_flush")
def remember_deleted_values(session: Session, flush_context: Any, instances: Any) -> None:
    """Read a deleted row's values while it still exists."""
    session.info["audit_deleted"] = {
        id(obj): _column_values(obj) for obj in session.deleted if not isinstance(obj, UNAUDITED)
    }


@event.listens_for(Session, "after_flush")
def write_audit_rows(session: Session, flush_context: Any) -> None:
    rows = _rows(session)
    if rows:
        session.connection().execute(AuditLog.__table__.insert(), rows)


def audit_bulk(session: Session, action: str, table: str, record_ids: list[Any],
               old: dict | None = None, new: dict | None = None) -> None:
    """Audit a set-based change made without ORM objects (one row per record)."""
    audit_rows(session, action, table, [(rid, old, new) for rid in record_ids])


def audit_rows(session: Session, action: str, table: str,
               rows: list[tuple[Any, dict | None, dict | None]]) -> None:
    """Audit a set-based change row by row, each (record id or None, old values, new values), in one statement.

    Values are written as audit_bulk's callers and the ORM hook write them: plain JSON, secrets redacted."""
    user_id, api_key_id = _actor()

    def values(fields: dict | None) -> dict | None:
        return None if fields is None else {key: _field(key, value) for key, value in fields.items()}

    if rows:
        session.execute(AuditLog.__table__.insert(), [
            {"action": action, "table": table, "record_id": None if rid is None else str(rid), "user_id": user_id,
             "api_key_id": api_key_id, "old_values": values(old), "new_values": values(new)}
            for rid, old, new in rows
        ])

"""Record endpoints for admin keys: clients, unit types, buckets, assets and suppressions (list/create/read/patch/delete).

Validation is the grids' (validation.py through api/schemas.py); every change goes through the ORM, so the
audit hook writes a row naming the key. A client-scoped key sees and touches only its client's records. Deletes
pass integrity.py's guard: a record a finalized line depends on, or a unit type in use, answers 409 (api/errors.py).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask import jsonify, request
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from api.auth import api_auth, current_key, require_unscoped
from api.blueprint import bp
from api.body import json_body, parse_model, query_int
from api.errors import ApiError
from api.schemas import (
    AssetIn, AssetOut, AssetPatch, BucketIn, BucketOut, BucketPatch, ClientIn, ClientOut, ClientPatch,
    SuppressionIn, SuppressionOut, SuppressionPatch, UnitTypeIn, UnitTypeOut, UnitTypePatch,
)
from extensions import db
from ingest.suppressions import check_suppression
from models import Asset, Bucket, Client, Suppression, UnitType, utcnow
from reports.assets import unbound_asset_ids

MAX_PER_PAGE = 1000
MAX_ID = 2**31 - 1


def decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


@dataclass
class Resource:
    """How one kind of record is listed, scoped, validated, written and shown."""

    path: str
    model: type
    create: type[BaseModel]
    patch: type[BaseModel]
    out: type[BaseModel]
    show: Callable[[Any], dict[str, Any]]
    scope: Callable[[Select, int], Select] | None = None
    filters: Callable[[Select], Select] = lambda query: query
    conflict: Callable[[Any], str | None] = lambda obj: None
    check: Callable[[Any, dict[str, Any]], None] = lambda obj, values: None
    delete_check: Callable[[Any], None] = lambda obj: None
    nullable: frozenset[str] = field(default_factory=frozenset)
    global_records: bool = False
    scoped_access: bool = True
    scoped_create: bool = True
    brief_roles: tuple[str, ...] = ()  # key roles besides admin that may list these records, shown by `brief`
    brief: Callable[[Any], dict[str, Any]] | None = None

    def json(self, obj: Any) -> dict[str, Any]:
        return self.out(**self.show(obj)).model_dump(mode="json")


def _unique(model: type, column: str, message: str, *same: str) -> Callable[[Any], str | None]:
    def conflict(obj: Any) -> str | None:
        query = select(model.id).where(getattr(model, column) == getattr(obj, column))
        for other in same:
            query = query.where(getattr(model, other) == getattr(obj, other))
        if obj.id is not None:
            query = query.where(model.id != obj.id)
        return message.format(obj=obj) if db.session.scalar(query.limit(1)) is not None else None

    return conflict


def _scoped_client(values: dict[str, Any], field_name: str = "client_id") -> None:
    """A scoped key may only point records at its own client."""
    scope = current_key().client_id
    if scope is not None and field_name in values and values[field_name] != scope:
        raise ApiError(403, "forbidden: a client-scoped key may only use its own client_id")


def _client_must_exist(values: dict[str, Any], errors: dict[str, str]) -> None:
    client_id = values.get("client_id")
    if client_id is not None and db.session.get(Client, client_id) is None:
        errors["client_id"] = f"no client with id {client_id}"


# ---- per-resource rules ----------------------------------------------------------------------

def _check_bucket(bucket: Bucket, values: dict[str, Any]) -> None:
    _scoped_client(values)
    errors: dict[str, str] = {}
    _client_must_exist(values, errors)
    if "unit_type_id" in values and db.session.get(UnitType, values["unit_type_id"]) is None:
        errors["unit_type_id"] = f"no unit type with id {values['unit_type_id']}"
    if values.get("asset_ids") is not None:
        wanted = sorted(set(values["asset_ids"]))
        query = select(Asset).where(Asset.id.in_(wanted))
        scope = current_key().client_id
        if scope is not None:
            query = query.where(Asset.client_id == scope)
        assets = list(db.session.scalars(query))
        unknown = sorted(set(wanted) - {a.id for a in assets})
        if unknown:
            errors["asset_ids"] = f"no assets with ids {unknown}"
        values["assets"] = assets
    if errors:
        raise ApiError(422, "invalid fields", errors)
    values.pop("asset_ids", None)


def _check_asset(asset: Asset, values: dict[str, Any]) -> None:
    scope = current_key().client_id
    if scope is not None:
        if asset.id is None:
            values.setdefault("client_id", scope)
        _scoped_client(values)
    errors: dict[str, str] = {}
    _client_must_exist(values, errors)
    if errors:
        raise ApiError(422, "invalid fields", errors)
    if "disregarded" in values:
        disregard = values.pop("disregarded")
        if disregard and asset.disregarded_at is None:
            values["disregarded_at"] = utcnow()
        elif not disregard:
            values["disregarded_at"] = None


def _check_suppression(suppression: Suppression, values: dict[str, Any]) -> None:
    kind = values.get("type", suppression.type or "exact")
    pattern = values.get("pattern", suppression.pattern or "")
    try:
        check_suppression(kind, pattern)
    except ValueError as exc:
        raise ApiError(422, "invalid fields", {"pattern": str(exc)}) from None


def _client_delete(client: Client) -> None:
    require_unscoped("delete clients")


def _asset_filters(query: Select) -> Select:
    if request.args.get("external_id"):
        if "\x00" in request.args["external_id"]:
            raise ApiError(400, "external_id must not contain NUL characters")
        query = query.where(Asset.external_id == request.args["external_id"])
    client_id = query_int("client_id")
    if client_id is not None:
        query = query.where(Asset.client_id == client_id)
    if request.args.get("unbound") in ("1", "true", "yes"):
        query = query.where(Asset.id.in_(unbound_asset_ids()))
    return query


def _bucket_filters(query: Select) -> Select:
    client_id = query_int("client_id")
    return query if client_id is None else query.where(Bucket.client_id == client_id)


def _columns(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


RESOURCES = [
    Resource(
        "clients", Client, ClientIn, ClientPatch, ClientOut,
        show=lambda c: _columns(c, ("id", "name", "enabled", "created_at")),
        scope=lambda q, cid: q.where(Client.id == cid),
        conflict=_unique(Client, "name", "a client named {obj.name!r} already exists"),
        delete_check=_client_delete,
        scoped_create=False,
    ),
    Resource(
        "unit-types", UnitType, UnitTypeIn, UnitTypePatch, UnitTypeOut,
        show=lambda u: {**_columns(u, ("id", "name", "description", "aggregation", "auto_provision",
                                       "filter_pattern", "max_gap_minutes", "silent_after_hours")),
                        "base_price": decimal_text(u.base_price), "overage_price": decimal_text(u.overage_price)},
        conflict=_unique(UnitType, "name", "a unit type named {obj.name!r} already exists"),
        global_records=True,
        brief_roles=("ingest", "readonly"),
        brief=lambda u: {"name": u.name},
    ),
    Resource(
        "buckets", Bucket, BucketIn, BucketPatch, BucketOut,
        show=lambda b: {**_columns(b, ("id", "client_id", "name", "unit_type_id", "source_type", "aggregation",
                                       "reviewed", "enabled", "created_at")),
                        "commit": decimal_text(b.commit), "base_price": decimal_text(b.base_price),
                        "overage_price": decimal_text(b.overage_price),
                        "asset_ids": sorted(a.id for a in b.assets)},
        scope=lambda q, cid: q.where(Bucket.client_id == cid),
        filters=_bucket_filters,
        conflict=_unique(Bucket, "name", "client {obj.client_id} already has a bucket named {obj.name!r}",
                         "client_id"),
        check=_check_bucket,
    ),
    Resource(
        "assets", Asset, AssetIn, AssetPatch, AssetOut,
        show=lambda a: {**_columns(a, ("id", "external_id", "source_type", "name", "description", "client_id",
                                       "acknowledged", "enabled", "disregarded_at", "created_at",
                                       "last_seen_at")),
                        "disregarded": a.disregarded_at is not None},
        scope=lambda q, cid: q.where(Asset.client_id == cid),
        filters=_asset_filters,
        conflict=_unique(Asset, "external_id", "an asset {obj.external_id!r} of source {obj.source_type!r} "
                         "already exists", "source_type"),
        check=_check_asset,
        nullable=frozenset({"client_id"}),
    ),
    Resource(
        "suppressions", Suppression, SuppressionIn, SuppressionPatch, SuppressionOut,
        show=lambda s: _columns(s, ("id", "pattern", "type", "reason", "created_at")),
        check=_check_suppression,
        global_records=True,
        scoped_access=False,
    ),
]


# ---- generic handlers ------------------------------------------------------------------------

def _scoped(resource: Resource, query: Select) -> Select:
    scope = current_key().client_id
    if scope is None:
        return query
    if not resource.scoped_access:
        raise ApiError(403, f"forbidden: a client-scoped key may not use /{resource.path}")
    return resource.scope(query, scope) if resource.scope else query


def _get(resource: Resource, record_id: int) -> Any:
    if record_id > MAX_ID:
        raise ApiError(404, f"no {resource.path.rstrip('s').replace('-', ' ')} with id {record_id}")
    query = _scoped(resource, select(resource.model).where(resource.model.id == record_id))
    obj = db.session.scalar(query)
    if obj is None:
        raise ApiError(404, f"no {resource.path.rstrip('s').replace('-', ' ')} with id {record_id}")
    return obj


def _save(resource: Resource, obj: Any, values: dict[str, Any]) -> None:
    with db.session.no_autoflush:
        resource.check(obj, values)
        for name, value in values.items():
            setattr(obj, name, value)
        message = resource.conflict(obj)
    if message:
        db.session.rollback()
        raise ApiError(409, message)
    db.session.add(obj)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ApiError(409, f"the {resource.path.rstrip('s')} conflicts with an existing record") from None


def _values(resource: Resource, payload: BaseModel) -> dict[str, Any]:
    values = {name: getattr(payload, name) for name in payload.model_fields_set}
    nulls = {name: "must not be null" for name, value in values.items()
             if value is None and name not in resource.nullable}
    if nulls:
        raise ApiError(422, "invalid fields", nulls)
    return values


def _register(resource: Resource) -> None:
    endpoint = resource.path.replace("-", "_")

    def list_records():
        query = resource.filters(_scoped(resource, select(resource.model)))
        page = query_int("page", 1)
        per_page = query_int("per_page", 50, maximum=MAX_PER_PAGE)
        total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
        rows = db.session.scalars(query.order_by(resource.model.id).offset((page - 1) * per_page).limit(per_page))
        show = resource.json if current_key().role == "admin" else resource.brief
        return jsonify({"items": [show(obj) for obj in rows], "total": total})

    def create_record():
        if resource.global_records or not resource.scoped_create:
            require_unscoped(f"create {resource.path}")
        _scoped(resource, select(resource.model))
        payload = parse_model(resource.create, json_body())
        values = {name: getattr(payload, name) for name in type(payload).model_fields}
        obj = resource.model()
        _save(resource, obj, values)
        return jsonify(resource.json(obj)), 201

    def read_record(record_id: int):
        return jsonify(resource.json(_get(resource, record_id)))

    def patch_record(record_id: int):
        if resource.global_records:
            require_unscoped(f"change {resource.path}")
        obj = _get(resource, record_id)
        payload = parse_model(resource.patch, json_body())
        _save(resource, obj, _values(resource, payload))
        return jsonify(resource.json(obj))

    def delete_record(record_id: int):
        if resource.global_records:
            require_unscoped(f"delete {resource.path}")
        obj = _get(resource, record_id)
        resource.delete_check(obj)
        db.session.delete(obj)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise ApiError(409, f"the {resource.path.rstrip('s')} is still referenced by other records; "
                                "nothing was deleted") from None
        return "", 204

    admin = api_auth("admin")
    for view, suffix in ((list_records, "list"), (create_record, "create"), (read_record, "read"),
                         (patch_record, "patch"), (delete_record, "delete")):
        view.__name__ = f"{endpoint}_{suffix}"
    one = f"/{resource.path}/<int:record_id>"
    listers = api_auth("admin", *resource.brief_roles)
    bp.add_url_rule(f"/{resource.path}", f"{endpoint}_list", listers(list_records), methods=["GET"])
    bp.add_url_rule(f"/{resource.path}", f"{endpoint}_create", admin(create_record), methods=["POST"])
    bp.add_url_rule(one, f"{endpoint}_read", admin(read_record), methods=["GET"])
    bp.add_url_rule(one, f"{endpoint}_patch", admin(patch_record), methods=["PATCH"])
    bp.add_url_rule(one, f"{endpoint}_delete", admin(delete_record), methods=["DELETE"])

for _resource in RESOURCES:
    _register(_resource)

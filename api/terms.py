"""Contract terms of a bucket (`GET/POST /buckets/<id>/terms`, admin keys) and true-up suggestions
(`GET /true-ups`, readonly and admin keys). A client-scoped key reaches only its client's buckets."""
from __future__ import annotations

from typing import Any

from flask import jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.blueprint import bp
from api.auth import api_auth, current_key
from api.body import json_body, parse_model, query_int
from api.errors import ApiError
from api.records import MAX_ID, MAX_PER_PAGE, decimal_text
from api.schemas import BucketTermIn, BucketTermOut, TrueUpOut
from billing.periods import parse_period, period_label
from billing.terms import TermLocked, bucket_terms, set_term, term_author
from billing.trueups import DIRECTIONS, TrueUp, true_ups
from extensions import db
from models import Bucket, BucketTerm


def term_json(term: BucketTerm) -> dict[str, Any]:
    return BucketTermOut(
        id=term.id, bucket_id=term.bucket_id, effective_from=period_label(term.effective_from),
        commit=decimal_text(term.commit), base_price=decimal_text(term.base_price),
        overage_price=decimal_text(term.overage_price), note=term.note, created_by=term.created_by,
        created_at=term.created_at).model_dump(mode="json")


def true_up_json(item: TrueUp) -> dict[str, Any]:
    return TrueUpOut(
        bucket_id=item.bucket_id, client_id=item.client_id, unit_type_id=item.unit_type_id,
        current_commit=decimal_text(item.current_commit), suggested_commit=decimal_text(item.suggested_commit),
        direction=item.direction, usage_by_period={k: decimal_text(v) for k, v in item.usage_by_period.items()},
        monthly_effect=decimal_text(item.monthly_effect), applied_from=item.applied_from).model_dump(mode="json")


def _bucket(bucket_id: int) -> Bucket:
    query = select(Bucket).where(Bucket.id == bucket_id)
    scope = current_key().client_id
    if scope is not None:
        query = query.where(Bucket.client_id == scope)
    found = db.session.scalar(query) if bucket_id <= MAX_ID else None
    if found is None:
        raise ApiError(404, f"no bucket with id {bucket_id}")
    return found


@bp.get("/buckets/<int:record_id>/terms")
@api_auth("admin")
def list_bucket_terms(record_id: int):
    terms = bucket_terms(db.session, _bucket(record_id).id)
    return jsonify({"items": [term_json(term) for term in terms], "total": len(terms)})


@bp.post("/buckets/<int:record_id>/terms")
@api_auth("admin")
def post_bucket_term(record_id: int):
    bucket = _bucket(record_id)
    body = parse_model(BucketTermIn, json_body())
    try:
        start = parse_period(body.effective_from)
    except ValueError as exc:
        raise ApiError(422, "invalid fields", {"effective_from": str(exc)}) from None
    existed = db.session.scalar(select(BucketTerm.id).where(BucketTerm.bucket_id == bucket.id,
                                                           BucketTerm.effective_from == start)) is not None
    try:
        term = set_term(db.session, bucket.id, start, body.commit, body.base_price, body.overage_price,
                        note=body.note, created_by=term_author(db.session))
        db.session.commit()
    except TermLocked as exc:
        db.session.rollback()
        raise ApiError(409, str(exc)) from None
    except IntegrityError:
        db.session.rollback()
        raise ApiError(409, f"the term from {body.effective_from} conflicts with a finalized billing line") from None
    return jsonify(term_json(term)), 200 if existed else 201


@bp.get("/true-ups")
@api_auth("admin", "readonly")
def list_true_ups():
    client_id = query_int("client_id")
    scope = current_key().client_id
    if scope is not None:
        if client_id is not None and client_id != scope:
            raise ApiError(403, "forbidden: a client-scoped key may only read its own client")
        client_id = scope
    direction = request.args.get("direction") or "all"
    if direction not in DIRECTIONS:
        raise ApiError(400, f"direction must be one of {', '.join(DIRECTIONS)}")
    items = true_ups(db.session, client_id=client_id, unit_type_id=query_int("unit_type_id"), direction=direction)
    page = query_int("page", 1)
    per_page = query_int("per_page", 100, maximum=MAX_PER_PAGE)
    shown = items[(page - 1) * per_page: page * per_page]
    return jsonify({"items": [true_up_json(item) for item in shown], "total": len(items)})

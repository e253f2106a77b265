"""Read endpoints (billing lines, projections, job runs) and the admin's billing/projection run requests."""
from __future__ import annotations

from typing import Any

from flask import jsonify, request
from sqlalchemy import func, select

from api.auth import api_auth, current_key, require_unscoped
from api.blueprint import bp
from api.body import json_body, parse_model, query_int
from api.errors import ApiError
from api.records import MAX_ID, MAX_PER_PAGE, decimal_text
from api.schemas import BillingReadingOut, BillingRun, JobRunOut, ProjectionOut
from billing.periods import current_period_start, parse_period, period_label
from extensions import db
from jobs.rights import JobNotAllowed, Requester
from jobs.runs import JobRefused, run_visible_to
from jobs.runs import start_job
from models import BillingReading, JobRun, Projection

BILLING_DECIMALS = ("total_usage", "commit", "base_price", "overage_price", "base_cost", "overage_units",
                    "overage_cost", "buffer_units", "buffer_cost", "final_cost")
PROJECTION_DECIMALS = ("current_usage", "projected_usage", "projected_cost", "pct_of_commit")


def billing_json(line: BillingReading) -> dict[str, Any]:
    values = {name: getattr(line, name) for name in ("id", "client_id", "bucket_id", "period_start", "period_end",
                                                     "finalized", "finalized_at", "calculated_at", "details")}
    values.update({name: decimal_text(getattr(line, name)) for name in BILLING_DECIMALS})
    return BillingReadingOut(**values).model_dump(mode="json")


def projection_json(row: Projection) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in ("id", "client_id", "bucket_id", "period_start", "calculated_at")}
    values.update({name: decimal_text(getattr(row, name)) for name in PROJECTION_DECIMALS})
    return ProjectionOut(**values).model_dump(mode="json")


def job_json(run: JobRun) -> dict[str, Any]:
    return JobRunOut(**{name: getattr(run, name) for name in JobRunOut.model_fields}).model_dump(mode="json")


def _period(default_current: bool):
    raw = request.args.get("period")
    if not raw:
        if default_current:
            return current_period_start()
        raise ApiError(400, "period is required (YYYY-MM)")
    try:
        return parse_period(raw)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def _client_filter(query, column):
    """`?client_id=`, limited to the key's own client for a scoped key."""
    client_id = query_int("client_id")
    scope = current_key().client_id
    if scope is not None:
        if client_id is not None and client_id != scope:
            raise ApiError(403, "forbidden: a client-scoped key may only read its own client")
        client_id = scope
    return query if client_id is None else query.where(column == client_id)


def _page(query, model, show):
    page = query_int("page", 1)
    per_page = query_int("per_page", 100, maximum=MAX_PER_PAGE)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = db.session.scalars(query.order_by(model.client_id, model.bucket_id, model.id)
                              .offset((page - 1) * per_page).limit(per_page))
    return jsonify({"items": [show(row) for row in rows], "total": total})


@bp.get("/billing")
@api_auth("admin", "readonly")
def billing_lines():
    start = _period(default_current=False)
    query = _client_filter(select(BillingReading).where(BillingReading.period_start == start),
                           BillingReading.client_id)
    return _page(query, BillingReading, billing_json)


@bp.get("/projections")
@api_auth("admin", "readonly")
def projections():
    start = _period(default_current=True)
    query = _client_filter(select(Projection).where(Projection.period_start == start), Projection.client_id)
    return _page(query, Projection, projection_json)


@bp.get("/jobs/<int:run_id>")
@api_auth("admin", "readonly")
def job_status(run_id: int):
    run = db.session.get(JobRun, run_id) if run_id <= MAX_ID else None
    if run is None or not run_visible_to(run, current_key().client_id):
        raise ApiError(404, f"no job run with id {run_id}")
    return jsonify(job_json(run))


def _start(kind: str, parameters: dict[str, Any], period: str):
    try:
        run = start_job(kind, parameters, Requester.api_key(current_key()), period)
    except JobNotAllowed as exc:
        raise ApiError(403, f"forbidden: {exc}") from None
    except JobRefused as exc:
        raise ApiError(409, str(exc)) from None
    return jsonify({"job_id": run.id}), 202


@bp.post("/billing/run")
@api_auth("admin")
def run_billing():
    require_unscoped("run billing for every client")
    body = parse_model(BillingRun, json_body())
    try:
        parse_period(body.period)
    except ValueError as exc:
        raise ApiError(422, "invalid fields", {"period": str(exc)}) from None
    return _start("billing", {"period": body.period, "finalize": body.finalize}, body.period)


@bp.post("/projections/run")
@api_auth("admin")
def run_projections():
    require_unscoped("run projections for every client")
    period = period_label(current_period_start())
    return _start("projection", {"period": period}, period)

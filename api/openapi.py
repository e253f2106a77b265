"""GET /api/v1/openapi.json: the OpenAPI 3.1 document, generated from the pydantic models that validate requests."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.blueprint import bp
from api.openapi_alerts import add_alert_paths, alert_models
from api.openapi_parts import (
    CLIENT_ID, MAX_ID, PAGING, PERIOD, RECORD_ID, REF, _operation, _query, _ref,
)
from api.records import RESOURCES
from api.schemas import (
    MAX_ITEMS, AdjustmentsRun, BillingReadingOut, BillingRun, BucketTermIn, BucketTermOut, ErrorOut, IngestOut,
    JobRunOut, JobStarted, ProjectionOut, ReadingIn, ReadingOut, ReadingsEnvelope, TrueUpOut, UnitTypeName, page_of,
)

def _record_paths(paths: dict[str, Any]) -> None:
    for resource in RESOURCES:
        page = page_of(resource.out)
        name = resource.path
        filters = []
        if name in ("assets", "buckets"):
            filters.append(_query("client_id", CLIENT_ID, "Only this client's records."))
        if name == "assets":
            filters.append(_query("external_id", {"type": "string"}, "Only assets with this external id."))
            filters.append(_query("unbound", {"type": "string", "enum": ["0", "1"]},
                                  "1: only unbound assets (usage of the last 60 days billed nowhere)."))
        admin = ("admin",)
        listed = _ref(page)
        summary = f"List {name}"
        if resource.brief_roles:
            listed = {"anyOf": [listed, _ref(page_of(UnitTypeName))]}
            summary += f" ({', '.join(resource.brief_roles)} keys: names only)"
        paths[f"/api/v1/{name}"] = {
            "get": _operation(summary, 200, listed, (), parameters=PAGING + filters,
                              roles=admin + resource.brief_roles),
            "post": _operation(f"Create a record in {name}", 201, _ref(resource.out), (409, 422),
                               body=_ref(resource.create), roles=admin),
        }
        paths[f"/api/v1/{name}/{{record_id}}"] = {
            "parameters": [RECORD_ID],
            "get": _operation(f"Read a record of {name}", 200, _ref(resource.out), (404,), roles=admin),
            "patch": _operation(f"Change a record of {name}", 200, _ref(resource.out), (404, 409, 422),
                                body=_ref(resource.patch), roles=admin),
            "delete": _operation(f"Delete a record of {name}", 204, None, (404, 409), roles=admin),
        }


def _term_paths(paths: dict[str, Any]) -> None:
    """Contract terms, true-ups and late-usage adjustments (DESIGN "Contract terms over time", "Late usage")."""
    paths["/api/v1/buckets/{record_id}/terms"] = {
        "parameters": [RECORD_ID],
        "get": _operation("A bucket's contract terms, oldest first", 200, _ref(page_of(BucketTermOut)), (404,),
                          roles=("admin",)),
        "post": _operation(
            "Add, or replace, the bucket's term effective from a period (201 added, 200 replaced; 409 when the term "
            "would govern a period in which the bucket has a finalized line)", 201, _ref(BucketTermOut),
            (404, 409, 422), body=_ref(BucketTermIn), roles=("admin",)),
    }
    paths["/api/v1/true-ups"] = {"get": _operation(
        "Enabled buckets whose suggested commit (ceil of the max usage of their last 3 billed periods) differs from "
        "the current one", 200, _ref(page_of(TrueUpOut)), (),
        parameters=[_query("client_id", CLIENT_ID, "Only this client's buckets."),
                    _query("unit_type_id", CLIENT_ID, "Only buckets of this unit type."),
                    _query("direction", {"type": "string", "enum": ["all", "up", "down"]},
                           "up: suggested above the current commit (upsell); down: below (retention risk).")]
        + PAGING, roles=("admin", "readonly"))}
    paths["/api/v1/billing/adjustments"] = {"post": _operation(
        "Post a finalized period's late usage as adjustment lines into an open period (the current month by "
        "default); 409 when the period has no finalized lines, the target is not a later open started period, or "
        "a run for the period is active", 202, _ref(JobStarted), (409, 422), body=_ref(AdjustmentsRun),
        roles=("admin",))}


def _models() -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = [ReadingsEnvelope, IngestOut, ErrorOut, JobStarted, BillingRun,
                                     JobRunOut, page_of(BillingReadingOut), page_of(ProjectionOut),
                                     page_of(ReadingOut), page_of(UnitTypeName),
                                     BucketTermIn, BucketTermOut, page_of(BucketTermOut), AdjustmentsRun,
                                     page_of(TrueUpOut)]
    for resource in RESOURCES:
        models += [resource.create, resource.patch, resource.out, page_of(resource.out)]
    return models + alert_models()


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    models = _models()
    modes = [(m, "validation" if m.__name__.endswith(("In", "Patch", "Envelope", "Run")) else "serialization")
             for m in models]
    _, defs = models_json_schema(modes, ref_template=REF)
    readings_body = {"oneOf": [
        {"type": "array", "maxItems": MAX_ITEMS, "items": _ref(ReadingIn)}, _ref(ReadingsEnvelope)]}
    paths: dict[str, Any] = {
        "/api/v1/readings": {"post": _operation(
            "Post a batch of usage readings", 200, _ref(IngestOut), (413,), body=readings_body,
            roles=("admin", "ingest")),
            "get": _operation(
                "Stored readings in asset, unit type and ts order (a client-scoped key: its client's assets only)",
                200, _ref(page_of(ReadingOut)), (404,),
                parameters=[_query("asset_id", CLIENT_ID, "Only this asset's readings (its record id)."),
                            _query("unit_type", {"type": "string"}, "Only readings of this unit type (its name)."),
                            _query("from", {"type": "string"}, "ts at or after: 2026-11-01 (midnight UTC) or "
                                   "an ISO 8601 date and time with a zone."),
                            _query("to", {"type": "string"}, "ts before, written as `from`.")] + PAGING,
                roles=("admin", "ingest", "readonly"))},
        "/api/v1/billing": {"get": _operation(
            "Billing lines of a period", 200, _ref(page_of(BillingReadingOut)), (),
            parameters=[_query("period", PERIOD, "The period, YYYY-MM.", required=True),
                        _query("client_id", CLIENT_ID, "Only this client's lines.")] + PAGING,
            roles=("admin", "readonly"))},
        "/api/v1/projections": {"get": _operation(
            "Projections of a period (the current one by default)", 200, _ref(page_of(ProjectionOut)), (),
            parameters=[_query("period", PERIOD, "The period, YYYY-MM."),
                        _query("client_id", CLIENT_ID, "Only this client's projections.")] + PAGING,
            roles=("admin", "readonly"))},
        "/api/v1/jobs/{run_id}": {"get": _operation(
            "A job run's status and progress (404 for a client-scoped key: runs cover every client)", 200,
            _ref(JobRunOut), (404,),
            parameters=[{"name": "run_id", "in": "path", "required": True,
                         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}],
            roles=("admin", "readonly"))},
        "/api/v1/billing/run": {"post": _operation(
            "Start a billing run for a period (409 for a period that has not started, finalizing one that has not "
            "ended, or a run of it already active; nothing is recorded)", 202, _ref(JobStarted), (409, 422),
            body=_ref(BillingRun), roles=("admin",))},
        "/api/v1/projections/run": {"post": _operation(
            "Start a projection run for the current period", 202, _ref(JobStarted), (409,), roles=("admin",))},
        "/api/v1/openapi.json": {"get": {
            "summary": "This document", "security": [],
            "responses": {"200": {"description": "The OpenAPI document.",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    }
    _record_paths(paths)
    _term_paths(paths)
    add_alert_paths(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Meterdesk API", "version": "1.0.0",
                 "description": "Usage readings in, billing records and reports out. "
                                "Send `Authorization: Bearer <key>`."},
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document())

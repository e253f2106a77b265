"""GET /api/v1/openapi.json: the OpenAPI 3.1 document, generated from the pydantic models that validate requests."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.blueprint import bp
from api.records import MAX_PER_PAGE, RESOURCES
from api.schemas import (
    MAX_ITEMS, BillingReadingOut, BillingRun, ErrorOut, IngestOut, JobRunOut, JobStarted, ProjectionOut,
    ReadingIn, ReadingsEnvelope, page_of,
)

REF = "#/components/schemas/{model}"
MAX_ID = 2**31 - 1
ERRORS = {
    400: "The body is not JSON of the expected shape, or a query parameter is invalid.",
    401: "No API key, or an invalid or disabled one.",
    403: "The key's role (or client scope) may not do this.",
    404: "No such record.",
    409: "Conflicts with an existing record or the state of things (duplicate name, record in use, job already "
         "running, a period that cannot be billed yet).",
    413: "More than 10,000 readings.",
    422: "Invalid fields; `fields` names each one.",
    429: "Over the per-key rate limit; see Retry-After.",
    503: "The database is busy, or the request ran past its deadline (REQUEST_TIMEOUT); see Retry-After.",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


PAGING = [
    _query("page", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "Page number, from 1."),
    _query("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}, "Rows per page."),
]
PERIOD = {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"}
CLIENT_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
RECORD_ID = {"name": "record_id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}


def _operation(summary: str, ok: int, ok_schema: dict[str, Any] | None, errors: tuple[int, ...],
               body: dict[str, Any] | None = None, parameters: list[dict[str, Any]] | None = None,
               public: bool = False, roles: tuple[str, ...] = ()) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    responses[str(ok)] = _json(ok_schema, "Success.") if ok_schema is not None else {"description": "Done."}
    codes = errors if public else (400, 401, 403, 429, 503) + errors
    for code in sorted(set(codes)):
        responses[str(code)] = _json(_ref(ErrorOut), ERRORS[code])
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if roles:
        operation["description"] = f"Key roles: {', '.join(roles)}."
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if public:
        operation["security"] = []
    return operation


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
        paths[f"/api/v1/{name}"] = {
            "get": _operation(f"List {name}", 200, _ref(page), (), parameters=PAGING + filters, roles=admin),
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


def _models() -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = [ReadingsEnvelope, IngestOut, ErrorOut, JobStarted, BillingRun,
                                     JobRunOut, page_of(BillingReadingOut), page_of(ProjectionOut)]
    for resource in RESOURCES:
        models += [resource.create, resource.patch, resource.out, page_of(resource.out)]
    return models


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
            roles=("admin", "ingest"))},
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

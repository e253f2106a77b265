"""The building blocks of the OpenAPI document: error descriptions, paging and id parameters, operations."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.records import MAX_PER_PAGE
from api.schemas import ErrorOut

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

"""/api/v1/readings: collectors post batches of usage readings (POST) and read back their assets' readings (GET)."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import jsonify, request

from api.auth import api_auth, current_key
from api.blueprint import bp
from api.body import query_int
from api.errors import ApiError
from api.records import MAX_ID, MAX_PER_PAGE, decimal_text
from extensions import db
from ingest.batch import ISO_WITH_ZONE, MAX_TIMESTAMP_LENGTH, BadBatch, ingest_body
from reports.readings import ReadingRow, readings_page, unit_type_id_named, visible_asset

READ_ROLES = ("admin", "ingest", "readonly")


@bp.post("/readings")
@api_auth("admin", "ingest")
def post_readings():
    try:
        result = ingest_body(db.session, request.get_data(cache=False), client_id=current_key().client_id)
    except BadBatch as exc:
        raise ApiError(exc.status, str(exc)) from None
    return jsonify(result.as_json())


def query_time(name: str) -> datetime | None:
    """`?from=` / `?to=`: a date (`YYYY-MM-DD`, midnight UTC) or an ISO 8601 date and time with a zone."""
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        if len(raw) == 10:
            return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        if len(raw) <= MAX_TIMESTAMP_LENGTH and ISO_WITH_ZONE.fullmatch(raw):
            return datetime.fromisoformat(raw.replace("z", "Z")).astimezone(timezone.utc)
    except ValueError:
        pass
    raise ApiError(400, f"{name} must be a date (2026-11-01) or an ISO 8601 date and time with a zone "
                        "(2026-11-01T10:00:00Z)")


def reading_json(row: ReadingRow) -> dict:
    return {"asset_id": row.asset_id, "external_id": row.external_id, "source": row.source,
            "unit_type_id": row.unit_type_id, "unit_type": row.unit_type, "ts": row.ts.isoformat(),
            "value": decimal_text(row.value), "received_at": row.received_at.isoformat()}


@bp.get("/readings")
@api_auth(*READ_ROLES)
def get_readings():
    """Stored readings, `?asset_id=&unit_type=&from=&to=&page=&per_page=`; a client-scoped key sees only its
    client's assets (another asset is a 404, as if it did not exist)."""
    scope = current_key().client_id
    asset_id = query_int("asset_id", maximum=MAX_ID)
    if asset_id is not None and not visible_asset(db.session, asset_id, scope):
        raise ApiError(404, f"no asset with id {asset_id}")
    unit_type_id = None
    name = (request.args.get("unit_type") or "").strip()
    if name:
        unit_type_id = unit_type_id_named(db.session, name)
        if unit_type_id is None:
            raise ApiError(404, f"no unit type named {name!r}")
    start, end = query_time("from"), query_time("to")
    if start is not None and end is not None and end <= start:
        raise ApiError(400, "to must be after from")
    rows, total = readings_page(db.session, client_id=scope, asset_id=asset_id, unit_type_id=unit_type_id,
                                start=start, end=end, page=query_int("page", 1),
                                per_page=query_int("per_page", 100, maximum=MAX_PER_PAGE))
    return jsonify({"items": [reading_json(row) for row in rows], "total": total})

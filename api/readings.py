"""POST /api/v1/readings: collectors post batches of usage readings."""
from __future__ import annotations

from flask import current_app, jsonify

from api import bp
from api.auth import api_auth, current_key
from api.body import json_body
from api.errors import ApiError
from api.ingest import ingest_readings
from api.schemas import MAX_ITEMS
from extensions import db


@bp.post("/readings")
@api_auth("admin", "ingest")
def post_readings():
    data = json_body()
    if isinstance(data, dict) and set(data) == {"readings"}:
        data = data["readings"]
    if not isinstance(data, list):
        raise ApiError(400, 'the body must be a JSON list of readings or {"readings": [...]}')
    if len(data) > MAX_ITEMS:
        raise ApiError(413, f"at most {MAX_ITEMS:,} readings per request; got {len(data):,}")
    result = ingest_readings(db.session, data, client_id=current_key().client_id,
                             cache=current_app.extensions.get("meterdesk_asset_cache"))
    return jsonify(result.as_json())

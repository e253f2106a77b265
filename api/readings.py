"""POST /api/v1/readings: collectors post batches of usage readings."""
from __future__ import annotations

from flask import jsonify, request

from api.auth import api_auth, current_key
from api.blueprint import bp
from api.errors import ApiError
from extensions import db
from ingest.batch import BadBatch, ingest_body


@bp.post("/readings")
@api_auth("admin", "ingest")
def post_readings():
    try:
        result = ingest_body(db.session, request.get_data(cache=False), client_id=current_key().client_id)
    except BadBatch as exc:
        raise ApiError(exc.status, str(exc)) from None
    return jsonify(result.as_json())

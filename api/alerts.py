"""Silent assets and usage anomalies for `readonly` and `admin` keys (a client-scoped key sees its client's only)."""
from __future__ import annotations

from flask import current_app, jsonify

from api.blueprint import bp
from api.alert_schemas import AnomalyOut, SilentAssetOut
from api.auth import api_auth, current_key
from api.body import query_int
from api.errors import ApiError
from api.records import MAX_PER_PAGE, decimal_text
from extensions import db
from models import utcnow
from reports.anomalies import anomalies as find_anomalies
from reports.silent import silent_assets as find_silent, silent_count


def _client_id() -> int | None:
    """`?client_id=`, and a scoped key's own client whatever it asks."""
    client_id = query_int("client_id")
    scope = current_key().client_id
    if scope is not None:
        if client_id is not None and client_id != scope:
            raise ApiError(403, "forbidden: a client-scoped key may only read its own client")
        return scope
    return client_id


def _paging() -> tuple[int, int]:
    return query_int("page", 1), query_int("per_page", 100, maximum=MAX_PER_PAGE)


@bp.get("/silent-assets")
@api_auth("admin", "readonly")
def silent_assets():
    client_id = _client_id()
    page, per_page = _paging()
    now = utcnow()
    rows = find_silent(db.session, now, client_id=client_id, limit=per_page, offset=(page - 1) * per_page)
    items = [SilentAssetOut(asset_id=r.asset_id, client_id=r.client_id, unit_type_id=r.unit_type_id,
                            last_ts=r.last_ts, hours_silent=decimal_text(r.hours_silent)).model_dump(mode="json")
             for r in rows]
    return jsonify({"items": items, "total": silent_count(db.session, now, client_id=client_id)})


@bp.get("/anomalies")
@api_auth("admin", "readonly")
def anomalies():
    client_id = _client_id()
    page, per_page = _paging()
    found = find_anomalies(db.session, current_app.config["ANOMALY_PCT"], client_id=client_id)
    items = [AnomalyOut(bucket_id=a.bucket_id, client_id=a.client_id, projected_usage=decimal_text(a.projected_usage),
                        baseline_usage=decimal_text(a.baseline_usage), baseline_periods=a.baseline_periods,
                        pct_change=decimal_text(a.pct_change)).model_dump(mode="json")
             for a in found[(page - 1) * per_page: page * per_page]]
    return jsonify({"items": items, "total": len(found)})

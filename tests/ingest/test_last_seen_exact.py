"""Ingest writes `last_seen_at` and `asset_units.last_ts` only when they move by more than an hour, yet the
Unbound, New and asset pages show exact figures (sought in the readings)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa

from extensions import db
from models import Asset, AssetUnit, utcnow
from ingest.store import SEEN_STEP
from reports.assets import unbound_asset_ids
from ingest.last_seen import last_seen
from tests.api_helpers import bearer, make_key, make_unit_type


def post(client, key: str, moment: datetime, assets=("vm-1", "vm-2")) -> dict:
    body = [{"asset_id": a, "source": "vm", "unit_type": "gb", "value": 1,
             "timestamp": moment.isoformat().replace("+00:00", "Z")} for a in assets]
    response = client.post("/api/v1/readings", data=json.dumps(body), headers=bearer(key),
                           content_type="application/json")
    assert response.status_code == 200, response.json
    return response.json


def stored(external_id: str) -> tuple[datetime, datetime]:
    db.session.expire_all()
    asset = db.session.scalar(sa.select(Asset).where(Asset.external_id == external_id))
    unit = db.session.scalar(sa.select(AssetUnit).where(AssetUnit.asset_id == asset.id))
    return asset.last_seen_at, unit.last_ts


def test_polls_within_the_step_write_no_summaries_but_pages_show_the_latest_reading(app, client, admin_client):
    make_unit_type(app, "gb")
    key = make_key(app, "ingest")
    start = (utcnow() - timedelta(hours=3)).replace(second=0, microsecond=0)
    post(client, key, start)
    for minutes in range(5, 60, 5):  # eleven more polls inside the hour: no summary moves
        post(client, key, start + timedelta(minutes=minutes))
    latest = start + timedelta(minutes=55)
    with app.app_context():
        assert stored("vm-1") == (start, start)
        asset_id = db.session.scalar(sa.select(Asset.id).where(Asset.external_id == "vm-1"))
        assert last_seen(db.session, [asset_id]) == {asset_id: latest}
    shown = latest.strftime("%Y-%m-%d %H:%M UTC")
    assert shown in admin_client.get(f"/admin/assets/page/{asset_id}").get_data(as_text=True)
    for page in ("/admin/asset/", "/admin/assets/new/", "/admin/assets/unbound/"):
        html = admin_client.get(page).get_data(as_text=True)
        assert shown in html, page
        assert start.strftime("%Y-%m-%d %H:%M UTC") not in html, page

    past_step = start + SEEN_STEP + timedelta(minutes=5)  # more than an hour on: both summaries move
    post(client, key, past_step)
    with app.app_context():
        assert stored("vm-1") == (past_step, past_step)


def test_an_earlier_reading_moves_first_ts_at_once(app, client):
    make_unit_type(app, "gb")
    key = make_key(app, "ingest")
    now = utcnow().replace(second=0, microsecond=0)
    post(client, key, now - timedelta(hours=2))
    post(client, key, now - timedelta(days=3), assets=("vm-1",))
    with app.app_context():
        db.session.expire_all()
        unit = db.session.scalar(sa.select(AssetUnit).join(Asset, Asset.id == AssetUnit.asset_id)
                                 .where(Asset.external_id == "vm-1"))
        assert (unit.first_ts, unit.last_ts) == (now - timedelta(days=3), now - timedelta(hours=2))


def test_unbound_counts_a_reading_inside_the_window_that_the_stored_summary_has_not_caught_up_with(app, client):
    make_unit_type(app, "gb")
    key = make_key(app, "ingest")
    now = utcnow()
    since = now - timedelta(days=60)
    # vm-1: last reading 30 minutes inside the window, its summary still 30 minutes outside (within the step)
    post(client, key, since - timedelta(minutes=30), assets=("vm-1", "vm-2"))
    post(client, key, since + timedelta(minutes=30), assets=("vm-1",))
    with app.app_context():
        ids = dict(db.session.execute(sa.select(Asset.external_id, Asset.id)).all())
        assert stored("vm-1")[1] == since - timedelta(minutes=30)
        unbound = set(db.session.scalars(unbound_asset_ids(now)))
        # vm-1 has a reading 30 minutes inside the 60 days; vm-2's last is 30 minutes outside
        assert unbound == {ids["vm-1"]}


def test_silent_assets_are_judged_on_the_latest_reading_not_the_lagging_summary(app, client):
    from models import Bucket, Client
    from reports.silent import silent_assets

    unit_id = make_unit_type(app, "gb")
    key = make_key(app, "ingest")
    now = utcnow().replace(microsecond=0)
    post(client, key, now - timedelta(hours=25), assets=("quiet",))
    post(client, key, now - timedelta(hours=24, minutes=30), assets=("quiet",))  # 30 min on: summary stays at 25 h
    post(client, key, now - timedelta(hours=24, minutes=36), assets=("alive",))
    post(client, key, now - timedelta(hours=23, minutes=48), assets=("alive",))  # 48 min on: summary at 24.6 h
    with app.app_context():
        acme = Client(name="Acme")
        db.session.add(acme)
        db.session.flush()
        assets = list(db.session.scalars(sa.select(Asset)))
        bucket = Bucket(client_id=acme.id, name="gb", unit_type_id=unit_id, source_type="vm", aggregation="sum",
                        commit=0, base_price=0, overage_price=0, reviewed=True, enabled=True)
        bucket.assets = assets
        db.session.add(bucket)
        db.session.commit()
        assert stored("alive")[1] == now - timedelta(hours=24, minutes=36)  # older than the 24 h threshold
        found = silent_assets(db.session, now)
        # alive's latest reading is 23.8 h old: not silent; quiet's is 24.5 h old, shown exactly
        assert [(s.external_id, s.last_ts, s.hours_silent) for s in found] == [
            ("quiet", now - timedelta(hours=24, minutes=30), Decimal("24.50"))]


def test_a_batch_that_creates_an_asset_still_leaves_the_known_assets_summaries_within_the_step(app, client):
    """The summaries of assets the batch found are written only past the step, also when the same batch creates
    another asset (whose summaries are written at once)."""
    make_unit_type(app, "gb")
    key = make_key(app, "ingest")
    start = (utcnow() - timedelta(hours=3)).replace(second=0, microsecond=0)
    post(client, key, start, assets=("vm-1",))
    post(client, key, start + timedelta(minutes=5), assets=("vm-1", "vm-new"))
    with app.app_context():
        assert stored("vm-1") == (start, start)
        assert stored("vm-new") == (start + timedelta(minutes=5),) * 2


def test_an_asset_a_batch_creates_takes_its_name_and_description_from_its_first_item(app, client):
    make_unit_type(app, "gb")
    key = make_key(app, "ingest")
    moment = (utcnow() - timedelta(hours=1)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    body = [{"asset_id": "vm-1", "source": "vm", "unit_type": "gb", "value": 1, "timestamp": moment,
             "name": name, "description": f"{name} host"} for name in ("first", "second")]
    response = client.post("/api/v1/readings", data=json.dumps(body), headers=bearer(key),
                           content_type="application/json")
    assert response.json["duplicates"] == 1
    with app.app_context():
        asset = db.session.scalar(sa.select(Asset).where(Asset.external_id == "vm-1"))
        assert (asset.name, asset.description) == ("first", "first host")


def test_a_reading_sent_with_a_utc_offset_moves_last_seen_by_its_instant(app, client):
    """10:00 UTC stored; 09:30-02:00 (11:30 UTC) is 90 minutes on, past the step: last seen moves to 11:30 UTC."""
    make_unit_type(app, "gb")
    key = make_key(app, "ingest")
    start = (utcnow() - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    post(client, key, start, assets=("vm-1",))
    later = start + timedelta(minutes=90)
    post(client, key, later.astimezone(timezone(timedelta(hours=-2))), assets=("vm-1",))
    with app.app_context():
        assert stored("vm-1") == (later, later)


def test_exactly_one_step_on_moves_no_summary_and_one_microsecond_more_moves_both(app, client):
    """The summaries move only by MORE than SEEN_STEP: a reading exactly an hour after the stored one writes neither
    last_seen_at nor last_ts; one an hour and a microsecond after writes both."""
    make_unit_type(app, "gb")
    key = make_key(app, "ingest")
    start = (utcnow() - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    post(client, key, start, assets=("vm-1",))
    post(client, key, start + SEEN_STEP, assets=("vm-1",))
    with app.app_context():
        assert stored("vm-1") == (start, start)
    past = start + SEEN_STEP + timedelta(microseconds=1)
    post(client, key, past, assets=("vm-1",))
    with app.app_context():
        assert stored("vm-1") == (past, past)

"""Ingest writes `last_seen_at` and `asset_units.last_ts` only when they move by more than an hour, yet the
Unbound, New and asset pages show exact figures (sought in the readings)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa

from extensions import db
from models import Asset, AssetUnit, Reading, utcnow
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


def silent_gb_bucket(app, unit_id: int) -> None:
    """An enabled gb bucket binding every asset there is."""
    from models import Bucket, Client

    with app.app_context():
        acme = Client(name="Acme")
        db.session.add(acme)
        db.session.flush()
        bucket = Bucket(client_id=acme.id, name="gb", unit_type_id=unit_id, source_type="vm", aggregation="sum",
                        commit=0, base_price=0, overage_price=0, reviewed=True, enabled=True)
        bucket.assets = list(db.session.scalars(sa.select(Asset)))
        db.session.add(bucket)
        db.session.commit()


def test_a_latest_reading_exactly_silent_after_hours_old_is_not_silent_although_the_summary_lags_a_full_step(
        app, client):
    from reports.silent import silent_assets

    unit_id = make_unit_type(app, "gb")
    make_unit_type(app, "cpu")
    key = make_key(app, "ingest")
    now = utcnow().replace(microsecond=0)
    # edge: readings 25 h and exactly 24 h ago (one step later: the summary stays at 25 h); 24 h old is not
    # older than silent_after_hours (24), so edge is not silent
    post(client, key, now - timedelta(hours=25), assets=("edge", "mixed"))
    post(client, key, now - timedelta(hours=24), assets=("edge",))
    # mixed: gb 25 h and 24.5 h ago (silent for gb); its cpu readings are recent, and no bucket counts cpu
    post(client, key, now - timedelta(hours=24, minutes=30), assets=("mixed",))
    cpu = [{"asset_id": "mixed", "source": "vm", "unit_type": "cpu", "value": 1,
            "timestamp": (now - timedelta(hours=hours)).isoformat()} for hours in (25, 1)]
    assert client.post("/api/v1/readings", json=cpu, headers=bearer(key)).status_code == 200
    silent_gb_bucket(app, unit_id)
    with app.app_context():
        assert stored("edge") == (now - timedelta(hours=25),) * 2  # both summaries stay at 25 h
        found = silent_assets(db.session, now)
        # mixed is silent for gb since its gb reading 24.5 h ago (its cpu reading 1 h ago does not count)
        assert [(s.external_id, s.unit_type, s.last_ts, s.hours_silent) for s in found] == [
            ("mixed", "gb", now - timedelta(hours=24, minutes=30), Decimal("24.50"))]


def test_a_reading_exactly_at_the_start_of_the_sixty_days_counts_for_unbound_although_the_summary_lags(app, client):
    from billing.binding import unbound_pairs

    gb = make_unit_type(app, "gb")
    cpu = make_unit_type(app, "cpu")
    key = make_key(app, "ingest")
    now = utcnow().replace(microsecond=0)
    since = now - timedelta(days=60)
    # edge: readings one step before the window and exactly at its start (the summary stays one step before);
    # outside: one step before and one second before the start, so its latest reading is outside the 60 days
    post(client, key, since - timedelta(hours=1), assets=("edge",))
    post(client, key, since, assets=("edge",))
    post(client, key, since - timedelta(hours=1), assets=("outside",))
    post(client, key, since - timedelta(seconds=1), assets=("outside",))
    # outside's cpu readings are recent: its cpu pair counts, its gb pair still does not
    cpu_body = [{"asset_id": "outside", "source": "vm", "unit_type": "cpu", "value": 1,
                 "timestamp": (now - timedelta(hours=hours)).isoformat()} for hours in (2, 1)]
    assert client.post("/api/v1/readings", json=cpu_body, headers=bearer(key)).status_code == 200
    with app.app_context():
        ids = dict(db.session.execute(sa.select(Asset.external_id, Asset.id)).all())
        assert stored("edge")[1] == since - timedelta(hours=1)
        assert set(db.session.execute(unbound_pairs(now)).all()) == {(ids["edge"], gb), (ids["outside"], cpu)}


def test_last_seen_is_exact_per_asset_for_more_than_one_chunk_of_ids(app, client):
    make_unit_type(app, "gb")
    key = make_key(app, "ingest")
    start = (utcnow() - timedelta(hours=3)).replace(second=0, microsecond=0)
    names = [f"vm-{i:04d}" for i in range(1001)]  # ids are looked up 500 at a time: three chunks, the last of one
    post(client, key, start, assets=names)
    # then asset i reports i seconds after the first poll: within the step, so no summary moves
    body = [{"asset_id": name, "source": "vm", "unit_type": "gb", "value": 1,
             "timestamp": (start + timedelta(seconds=i)).isoformat()} for i, name in enumerate(names)]
    assert client.post("/api/v1/readings", json=body, headers=bearer(key)).json["accepted"] == 1001 - 1
    with app.app_context():
        ids = dict(db.session.execute(sa.select(Asset.external_id, Asset.id)).all())
        expected = {ids[name]: start + timedelta(seconds=i) for i, name in enumerate(names)}
        assert last_seen(db.session, reversed(list(expected))) == expected
        assert last_seen(db.session, [ids["vm-0007"], ids["vm-0007"]]) == {ids["vm-0007"]: start + timedelta(seconds=7)}
        assert last_seen(db.session, []) == {}


def test_an_asset_whose_readings_were_archived_keeps_its_last_seen(app, runner, tmp_path):
    """Archiving drops a finalized month's readings but not the summaries: last seen falls back to the stored
    latest ts when no reading is left to seek, and an unbound asset stays unbound for its 60 days."""
    from billing.binding import unbound_pairs
    from billing.run import bill_period
    from reports.silent import silent_assets
    from database.partitions import create_partitions
    from tests.factories import asset, bucket, readings, unit_type

    jan, feb = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 2, 1, tzinfo=timezone.utc)
    with app.app_context():
        create_partitions(db.session, [jan, feb])
        vm, loose, gb = asset("vm-1"), asset("vm-2"), unit_type("gb")
        bucket("storage", "sum", [vm], unit=gb)
        readings(vm, [("2026-01-05T00:00:00+00:00", "1"), ("2026-01-31T23:59:59+00:00", "2")], gb)
        readings(loose, [("2026-01-20T00:00:00+00:00", "3")], gb)
        db.session.commit()
        bill_period(db.session, jan, finalize=True)
        vm_id, loose_id, gb_id = vm.id, loose.id, gb.id
    result = runner.invoke(args=["archive-readings", "--before", "2026-02", "--out", str(tmp_path)])
    assert "archived 2026-01: 3 readings" in result.output, result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Reading)) == 0
        assert last_seen(db.session, [vm_id]) == {vm_id: datetime(2026, 1, 31, 23, 59, 59, tzinfo=timezone.utc)}
        # on February 10th vm-2's January 20th reading is inside the 60 days: still unbound, archived or not
        assert db.session.execute(unbound_pairs(datetime(2026, 2, 10, tzinfo=timezone.utc))).all() == [
            (loose_id, gb_id)]
        # and on March 21st (60 days after January 20th, to the instant) too
        assert db.session.execute(unbound_pairs(datetime(2026, 3, 21, tzinfo=timezone.utc))).all() == [
            (loose_id, gb_id)]
        # vm-1's last reading (Jan 31 23:59:59) is at most 24 h old until Feb 1 23:59:59: not silent then, silent
        # a second later
        last = datetime(2026, 1, 31, 23, 59, 59, tzinfo=timezone.utc)
        for hours_later, silent in ((12, False), (24, False), (24 + 1 / 3600, True)):
            found = silent_assets(db.session, last + timedelta(hours=hours_later))
            assert [s.asset_id for s in found] == ([vm_id] if silent else []), hours_later

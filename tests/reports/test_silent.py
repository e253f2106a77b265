"""Silent assets: bound to an enabled bucket of a unit type, no reading of it for the unit type's silent_after_hours."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from extensions import db
from models import utcnow
from reports.issues import client_open_issues
from reports.silent import silent_assets, silent_count
from tests.api_helpers import bearer, make_key
from tests.webhooks.helpers import asset, bucket, owner, read, unit

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def ago(hours: float, now: datetime = NOW) -> datetime:
    return now - timedelta(hours=hours)


def silent_world(now: datetime, edge: bool = True) -> dict[str, int]:
    """gb: silent after 24 h (the default); cpu: after 6 h. Two silent pairs: a1/gb (30 h) and a7/cpu (7.5 h)."""
    acme, other = owner("Acme"), owner("Other")
    gb, cpu = unit("gb"), unit("cpu", silent_after_hours=6)
    a = {name: asset(name, acme) for name in ("a1", "a2", "a3", "a4", "a5", "a6", "a8", "a9")}
    a["a7"] = asset("a7", other)
    a["a4"].enabled = False
    a["a5"].disregarded_at = ago(1, now)
    db.session.flush()
    bucket("Storage", gb, [a["a1"], a["a2"], a["a4"], a["a5"], a["a8"], a["a9"]], client=acme)
    bucket("Old storage", gb, [a["a3"]], client=acme, enabled=False)
    bucket("Compute", cpu, [a["a7"]], client=other)
    read(a["a1"], gb, ago(50, now), ago(30, now))        # silent 30 h > 24 h
    read(a["a2"], gb, ago(23, now))                     # 23 h: not yet
    read(a["a3"], gb, ago(40, now))                     # only a disabled bucket binds it
    read(a["a4"], gb, ago(40, now))                     # asset disabled
    read(a["a5"], gb, ago(40, now))                     # asset disregarded
    read(a["a6"], gb, ago(100, now))                    # bound to nothing (that is "unbound", not silent)
    read(a["a7"], cpu, ago(7.5, now))                   # cpu: 7.5 h > 6 h
    read(a["a7"], gb, ago(0.5, now))                    # a recent reading of another unit type changes nothing
    if edge:  # at a fixed `now` only: against the clock it turns silent while the test runs
        read(a["a9"], gb, ago(24, now))                 # exactly 24 h: not older than 24 h
    # a8 never reported gb: no latest reading, not listed
    db.session.commit()
    return {name: row.id for name, row in a.items()} | {"acme": acme.id, "other": other.id, "gb": gb.id,
                                                         "cpu": cpu.id}


def test_only_bound_enabled_assets_past_their_unit_types_threshold_are_silent(app):
    with app.app_context():
        ids = silent_world(NOW)
        rows = silent_assets(db.session, NOW)
        assert [(r.external_id, r.unit_type, r.hours_silent) for r in rows] == [
            ("a1", "gb", Decimal("30.00")), ("a7", "cpu", Decimal("7.50"))]
        first = rows[0]
        assert (first.asset_id, first.client_id, first.client, first.unit_type_id, first.last_ts) == (
            ids["a1"], ids["acme"], "Acme", ids["gb"], ago(30))
        assert silent_count(db.session, NOW) == 2
        assert [r.external_id for r in silent_assets(db.session, NOW, client_id=ids["other"])] == ["a7"]
        assert silent_count(db.session, NOW, client_id=ids["acme"]) == 1
        assert [r.external_id for r in silent_assets(db.session, NOW, limit=1, offset=1)] == ["a7"]


def test_a_new_reading_ends_the_silence_and_a_higher_threshold_forgives_it(app):
    with app.app_context():
        ids = silent_world(NOW)
        from models import Asset, UnitType

        read(db.session.get(Asset, ids["a1"]), db.session.get(UnitType, ids["gb"]), ago(2))
        db.session.get(UnitType, ids["cpu"]).silent_after_hours = 8
        db.session.commit()
        assert silent_assets(db.session, NOW) == []
        later = silent_assets(db.session, NOW + timedelta(hours=1, minutes=3))
        assert [(r.external_id, r.hours_silent) for r in later] == [
            ("a9", Decimal("25.05")), ("a2", Decimal("24.05")), ("a7", Decimal("8.55"))]


def test_the_silent_page_lists_them_with_links_and_the_dashboard_counts_them(app, viewer_client):
    with app.app_context():
        ids = silent_world(utcnow(), edge=False)
    page = viewer_client.get("/admin/assets/silent/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.count('hours-silent">') == 2
    assert f'href="/admin/assets/page/{ids["a1"]}"' in html and f'href="/admin/clients/{ids["acme"]}"' in html
    assert ">30<" in html and ">7.5<" in html and "a2<" not in html
    assert "Silent Assets" in html and "Silent After (hours)" in html
    dashboard = viewer_client.get("/admin/").get_data(as_text=True)
    tile = dashboard[dashboard.index('data-tile="silent"') - 120:dashboard.index('data-tile="silent"') + 200]
    assert 'href="/admin/assets/silent/"' in tile and "tile-attention" in tile and ">2<" in tile
    menu = dashboard[dashboard.index('href="/admin/assets/unbound/"'):dashboard.index('href="/admin/assets/disregarded/"')]
    assert 'href="/admin/assets/silent/"' in menu, "Assets ▾ … Unbound, Silent, Disregarded"


def test_an_empty_silent_page_says_so(viewer_client):
    html = viewer_client.get("/admin/assets/silent/?page=abc").get_data(as_text=True)
    assert "No silent assets" in html


def test_the_client_page_lists_its_open_issues(app, viewer_client):
    with app.app_context():
        ids = silent_world(utcnow(), edge=False)
        issues = client_open_issues(db.session, ids["acme"], Decimal(50))
        assert [r.external_id for r in issues.silent] == ["a1"] and issues.anomalies == [] and issues.count == 1
    html = viewer_client.get(f"/admin/clients/{ids['acme']}").get_data(as_text=True)
    assert "Open Issues" in html and "no gb reading for 30 hours" in html
    assert "Open Issues" not in viewer_client.get(f"/admin/clients/{ids['other'] + 100}").get_data(as_text=True)


@pytest.mark.parametrize("role", ["readonly", "admin"])
def test_the_api_lists_silent_assets_and_a_scoped_key_its_clients_only(app, role):
    with app.app_context():
        ids = silent_world(utcnow(), edge=False)
    api = app.test_client()
    body = api.get("/api/v1/silent-assets", headers=bearer(make_key(app, role))).get_json()
    assert body["total"] == 2
    first = body["items"][0]
    assert (first["asset_id"], first["client_id"], first["unit_type_id"]) == (ids["a1"], ids["acme"], ids["gb"])
    assert first["hours_silent"].startswith("30.0") and first["last_ts"].endswith(("Z", "+00:00"))
    scoped = bearer(make_key(app, role, client_id=ids["other"], name="scoped"))
    mine = api.get("/api/v1/silent-assets", headers=scoped).get_json()
    assert [i["asset_id"] for i in mine["items"]] == [ids["a7"]] and mine["total"] == 1
    assert api.get(f"/api/v1/silent-assets?client_id={ids['acme']}", headers=scoped).status_code == 403
    assert api.get("/api/v1/silent-assets?page=0", headers=scoped).status_code == 400
    assert api.get("/api/v1/silent-assets", headers=bearer(make_key(app, "ingest", name="i"))).status_code == 403

"""A unit type's max_gap_minutes (time_weighted usage) through the API and the grid: 60 by default, 1..44,640."""
from __future__ import annotations

import pytest

from extensions import db
from models import UnitType
from tests.api_helpers import bearer, make_key
from tests.conftest import csrf_token


@pytest.fixture
def admin(app):
    return bearer(make_key(app, "admin"))


def test_api_takes_and_answers_max_gap_minutes(client, admin):
    created = client.post("/api/v1/unit-types", json={"name": "gb", "aggregation": "time_weighted"}, headers=admin)
    assert created.status_code == 201, created.json
    assert (created.json["aggregation"], created.json["max_gap_minutes"]) == ("time_weighted", 60)
    unit_id = created.json["id"]
    patched = client.patch(f"/api/v1/unit-types/{unit_id}", json={"max_gap_minutes": 15}, headers=admin)
    assert patched.status_code == 200 and patched.json["max_gap_minutes"] == 15
    for bad in (0, -5, 44641, "soon", 1.5, None):
        refused = client.patch(f"/api/v1/unit-types/{unit_id}", json={"max_gap_minutes": bad}, headers=admin)
        assert refused.status_code in (400, 422), (bad, refused.status_code)
    assert client.get(f"/api/v1/unit-types/{unit_id}", headers=admin).json["max_gap_minutes"] == 15


def test_time_weighted_buckets_through_the_api(client, admin):
    unit = client.post("/api/v1/unit-types", json={"name": "gb"}, headers=admin).json["id"]
    owner = client.post("/api/v1/clients", json={"name": "Acme"}, headers=admin).json["id"]
    made = client.post("/api/v1/buckets", json={"client_id": owner, "name": "Storage", "unit_type_id": unit,
                                                 "source_type": "vm", "aggregation": "time_weighted"}, headers=admin)
    assert made.status_code == 201 and made.json["aggregation"] == "time_weighted"


def test_grid_defaults_to_sixty_and_refuses_out_of_range(app, staff_client):
    url = "/admin/unittype/new/"
    base = {"name": "gb", "aggregation": "time_weighted", "base_price": "0", "overage_price": "0",
            "filter_pattern": "*"}
    refused = staff_client.post(url, data={**base, "max_gap_minutes": "0", "csrf_token": csrf_token(staff_client, url)})
    assert refused.status_code == 200 and "Number must be between 1 and 44640" in refused.get_data(as_text=True)
    saved = staff_client.post(url, data={**base, "csrf_token": csrf_token(staff_client, url)})
    assert saved.status_code == 302
    with app.app_context():
        unit = db.session.query(UnitType).one()
        assert (unit.aggregation, unit.max_gap_minutes) == ("time_weighted", 60)

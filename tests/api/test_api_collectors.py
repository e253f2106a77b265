"""The collector's read side (issue 12 item 16): an ingest key lists unit type names and reads back its readings,
paginated, a client-scoped key only its own client's assets; the README's curl example runs as written."""
from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from extensions import db
from models import Asset
from tests.api_helpers import bearer, make_client, make_key, make_unit_type, reading

ROOT = Path(__file__).resolve().parents[2]


def asset_id(app, external_id: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Asset.id).where(Asset.external_id == external_id))


def test_unit_types_are_names_only_for_ingest_keys_and_full_records_for_admins(app, client):
    make_unit_type(app, "storage_gb")
    make_unit_type(app, "cpu_hours")
    ingest = client.get("/api/v1/unit-types", headers=bearer(make_key(app, "ingest")))
    assert ingest.status_code == 200
    assert ingest.json == {"items": [{"name": "storage_gb"}, {"name": "cpu_hours"}], "total": 2}
    admin = client.get("/api/v1/unit-types?per_page=1", headers=bearer(make_key(app, "admin"))).json
    assert admin["total"] == 2 and admin["items"][0]["name"] == "storage_gb" and "base_price" in admin["items"][0]
    one = client.get("/api/v1/unit-types/1", headers=bearer(make_key(app, "ingest")))
    assert one.status_code == 403  # records themselves stay admin-only


def test_readings_read_back_in_order_paginated_and_filtered(app, client):
    make_unit_type(app, "cpu_hours")
    make_unit_type(app, "storage_gb")
    key = make_key(app, "ingest")
    body = [reading("vm-1", value="1.25", ts="2026-11-01T10:00:00Z"),
            reading("vm-1", value=2, ts="2026-11-01T12:00:00+01:00"),   # 11:00 UTC
            reading("vm-1", value="3.5", ts="2026-11-02T09:00:00Z"),
            reading("vm-1", unit="storage_gb", value=40, ts="2026-11-01T10:00:00Z"),
            reading("vm-2", value=7, ts="2026-11-01T10:00:00Z")]
    assert client.post("/api/v1/readings", json=body, headers=bearer(key)).json["accepted"] == 5
    vm1 = asset_id(app, "vm-1")

    page = client.get(f"/api/v1/readings?asset_id={vm1}&unit_type=cpu_hours&per_page=2", headers=bearer(key)).json
    assert page["total"] == 3
    assert [(r["ts"], r["value"]) for r in page["items"]] == [
        ("2026-11-01T10:00:00+00:00", "1.250000"), ("2026-11-01T11:00:00+00:00", "2.000000")]
    first = page["items"][0]
    assert (first["asset_id"], first["external_id"], first["source"], first["unit_type"]) == (
        vm1, "vm-1", "vmware", "cpu_hours")
    second = client.get(f"/api/v1/readings?asset_id={vm1}&unit_type=cpu_hours&per_page=2&page=2",
                        headers=bearer(key)).json
    assert second["total"] == 3 and [r["value"] for r in second["items"]] == ["3.500000"]

    day = client.get(f"/api/v1/readings?asset_id={vm1}&from=2026-11-01&to=2026-11-01T10:30:00Z",
                     headers=bearer(key)).json
    assert [(r["unit_type"], r["value"]) for r in day["items"]] == [("cpu_hours", "1.250000"),
                                                                   ("storage_gb", "40.000000")]
    everything = client.get("/api/v1/readings", headers=bearer(key)).json
    assert everything["total"] == 5


def test_a_client_scoped_key_reads_only_its_clients_assets(app, client):
    make_unit_type(app, "cpu_hours")
    acme, beta = make_client(app, "Acme"), make_client(app, "Beta")
    acme_key, beta_key = make_key(app, "ingest", acme), make_key(app, "ingest", beta)
    client.post("/api/v1/readings", json=[reading("acme-vm", value=1)], headers=bearer(acme_key))
    client.post("/api/v1/readings", json=[reading("beta-vm", value=2), reading("beta-vm", value=3,
                                                                              ts="2026-11-01T11:00:00Z")],
                headers=bearer(beta_key))
    own = client.get("/api/v1/readings", headers=bearer(acme_key)).json
    assert own["total"] == 1 and own["items"][0]["external_id"] == "acme-vm"
    other = client.get(f"/api/v1/readings?asset_id={asset_id(app, 'beta-vm')}", headers=bearer(acme_key))
    assert other.status_code == 404 and other.json == {"error": f"no asset with id {asset_id(app, 'beta-vm')}"}
    assert client.get("/api/v1/readings", headers=bearer(beta_key)).json["total"] == 2


def test_bad_read_parameters_are_clear_400s_and_404s(app, client):
    make_unit_type(app, "cpu_hours")
    key = make_key(app, "ingest")
    for query, status, words in (("from=yesterday", 400, "from must be a date"),
                                 ("to=1700000000", 400, "to must be a date"),
                                 ("from=2026-11-02&to=2026-11-01", 400, "to must be after from"),
                                 ("asset_id=abc", 400, "asset_id must be an integer"),
                                 ("asset_id=99", 404, "no asset with id 99"),
                                 ("unit_type=nope", 404, "no unit type named 'nope'"),
                                 ("per_page=5000", 400, "per_page must be between")):
        response = client.get(f"/api/v1/readings?{query}", headers=bearer(key))
        assert response.status_code == status and words in response.json["error"], (query, response.json)


def test_the_readme_curl_example_names_both_endpoints():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n([^`]*?curl[^`]*?/api/v1/readings\?[^`]*)```", readme)
    assert block, "README has no curl example reading readings back"
    assert "Authorization: Bearer" in block.group(1) and "/api/v1/unit-types" in readme

"""Forms refuse bad values with a message next to the field, and save nothing."""
import pytest

from extensions import db
from models import Bucket, Client, Suppression, UnitType
from tests.conftest import csrf_token


def post(client, url: str, data: dict):
    data = dict(data, csrf_token=csrf_token(client, url))
    return client.post(url, data=data)


def field_error(html: str) -> bool:
    return "invalid-feedback" in html or "help-block" in html or "is-invalid" in html


def test_duplicate_client_name_is_refused(app, staff_client):
    assert post(staff_client, "/admin/client/new/", {"name": "Acme"}).status_code == 302
    response = post(staff_client, "/admin/client/new/", {"name": "Acme"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Already exists" in html
    with app.app_context():
        assert db.session.query(Client).count() == 1


@pytest.mark.parametrize("field,value,message", [
    ("base_price", "-1", "must not be negative"),
    ("overage_price", "abc", "Not a valid decimal value"),
    ("filter_pattern", "vm-[abc", "unbalanced"),
    ("aggregation", "median", "Not a valid choice"),
])
def test_unit_type_form_validation(app, staff_client, field, value, message):
    data = {"name": "vm-hours", "aggregation": "sum", "base_price": "0.05", "overage_price": "0.07",
            "filter_pattern": "*", field: value}
    response = post(staff_client, "/admin/unittype/new/", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in html and field_error(html)
    with app.app_context():
        assert db.session.query(UnitType).count() == 0


def test_bucket_needs_a_non_negative_commit_and_a_name_unique_per_client(app, staff_client):
    with app.app_context():
        client, unit = Client(name="Acme"), UnitType(name="vm-hours")
        db.session.add_all([client, unit])
        db.session.commit()
        ids = client.id, unit.id
    base = {"client": ids[0], "unit_type": ids[1], "name": "VMs", "source_type": "vcenter", "aggregation": "sum",
            "commit": "100", "base_price": "1", "overage_price": "2", "enabled": "y"}
    negative = post(staff_client, "/admin/bucket/new/", dict(base, commit="-5"))
    assert "must not be negative" in negative.get_data(as_text=True)
    assert post(staff_client, "/admin/bucket/new/", base).status_code == 302
    again = post(staff_client, "/admin/bucket/new/", base)
    assert "already has a bucket named" in again.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Bucket).count() == 1


@pytest.mark.parametrize("kind,pattern,ok", [
    ("regex", "vm-(test", False), ("regex", r"^vm-test-\d+$", True), ("glob", "vm-[x", False),
    ("glob", "vm-test-*", True), ("exact", "vm-1", True),
])
def test_suppression_pattern_is_checked_for_its_type(app, staff_client, kind, pattern, ok):
    response = post(staff_client, "/admin/suppression/new/", {"pattern": pattern, "type": kind, "reason": "lab"})
    assert (response.status_code == 302) is ok
    with app.app_context():
        assert db.session.query(Suppression).count() == (1 if ok else 0)

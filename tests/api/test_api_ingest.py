"""POST /api/v1/readings: the ingest contract, status by status, item by item."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from extensions import db
from ingest.batch import ingest_body
from models import Asset, AuditLog, Reading, Suppression
from tests.api_helpers import bearer, iso, make_client, make_key, make_unit_type, reading

URL = "/api/v1/readings"


@pytest.fixture
def ingest(app):
    make_unit_type(app, "cpu_hours")
    make_unit_type(app, "storage_gb")
    return make_key(app, "ingest")


def post(client, key, body):
    return client.post(URL, json=body, headers=bearer(key))


def count_readings(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Reading.id)))


def test_a_valid_batch_is_stored_and_counted(app, client, ingest):
    body = [reading("vm-1", value=1.25, ts="2026-11-01T10:00:00Z"),
            reading("vm-1", value="2", ts="2026-11-01T12:00:00+01:00"),
            reading("vm-2", unit="storage_gb", value=0, ts="2026-11-01T10:00:00-05:00")]
    response = post(client, ingest, body)
    assert response.status_code == 200
    assert response.json == {"accepted": 3, "duplicates": 0, "suppressed": 0, "rejected": []}
    with app.app_context():
        rows = db.session.execute(select(Reading.ts, Reading.value).order_by(Reading.id)).all()
        assert sorted(rows) == sorted([
            (datetime(2026, 11, 1, 10, tzinfo=timezone.utc), Decimal("1.25")),
            (datetime(2026, 11, 1, 11, tzinfo=timezone.utc), Decimal("2")),
            (datetime(2026, 11, 1, 15, tzinfo=timezone.utc), Decimal("0")),
        ])


def test_the_envelope_form_is_accepted(client, ingest):
    response = post(client, ingest, {"readings": [reading()]})
    assert response.json["accepted"] == 1


def test_each_bad_item_is_rejected_alone_with_its_index(app, client, ingest):
    future = iso(datetime.now(timezone.utc) + timedelta(minutes=10))
    near_future = iso(datetime.now(timezone.utc) + timedelta(minutes=4))
    body = [
        reading("ok-1"),                                       # 0 good
        reading("bad", value=-1),                              # 1 negative
        reading("bad", value="NaN"),                           # 2 not finite
        reading("bad", value="abc"),                           # 3 not a number
        reading("bad", value=True),                            # 4 a boolean is no number
        reading("bad", ts="2026-11-01T10:00:00"),              # 5 no zone
        reading("bad", ts="yesterday"),                        # 6 not ISO 8601
        reading("bad", ts=1764000000),                         # 7 epoch number
        reading("bad", ts=future),                             # 8 10 minutes ahead
        reading("bad", unit="unknown_unit"),                   # 9 unknown unit type
        {"source": "x", "unit_type": "cpu_hours", "value": 1, "timestamp": "2026-11-01T10:00:00Z"},  # 10
        "not an object",                                       # 11
        reading("ok-2", ts=near_future),                       # 12 good: within 5 minutes
    ]
    response = post(client, ingest, body)
    assert response.status_code == 200
    result = response.json
    assert result["accepted"] == 2
    assert [r["index"] for r in result["rejected"]] == list(range(1, 12))
    reasons = {r["index"]: r["error"] for r in result["rejected"]}
    assert reasons[1].startswith("value:")
    assert reasons[5].startswith("timestamp:") and "timezone" in reasons[5]
    assert reasons[8] == "timestamp: is more than 5 minutes in the future"
    assert reasons[9] == "unit_type: unknown unit type 'unknown_unit'"
    assert reasons[10].startswith("asset_id:")
    with app.app_context():
        assert sorted(db.session.scalars(select(Asset.external_id))) == ["ok-1", "ok-2"]


def test_a_replay_is_counted_as_duplicates_and_stored_once(app, client, ingest):
    body = [reading("vm-1", ts=f"2026-11-01T{h:02d}:00:00Z") for h in range(5)]
    assert post(client, ingest, body).json["accepted"] == 5
    again = post(client, ingest, body).json
    assert (again["accepted"], again["duplicates"]) == (0, 5)
    assert count_readings(app) == 5


def test_a_repeat_inside_one_batch_is_a_duplicate_even_written_in_another_zone(app, client, ingest):
    body = [reading("vm-1", value=1, ts="2026-11-01T10:00:00Z"),
            reading("vm-1", value=9, ts="2026-11-01T12:00:00+02:00")]
    assert post(client, ingest, body).json == {"accepted": 1, "duplicates": 1, "suppressed": 0, "rejected": []}
    with app.app_context():
        assert db.session.scalar(select(Reading.value)) == Decimal("1")


def test_two_identical_batches_racing_are_counted_once(app, ingest):
    body = [reading(f"vm-{i % 40}", ts=f"2026-11-0{1 + i // 240}T{(i // 10) % 24:02d}:{i % 10:02d}:00Z")
            for i in range(400)]
    results: list[dict] = []
    barrier = threading.Barrier(2)

    def send() -> None:
        client = app.test_client()
        barrier.wait()
        response = post(client, ingest, body)
        results.append(response.json if response.status_code == 200 else {"status": response.status_code})

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all("accepted" in r for r in results), results
    assert sum(r["accepted"] for r in results) == 400
    assert sum(r["duplicates"] for r in results) == 400
    assert count_readings(app) == 400
    with app.app_context():
        assert db.session.scalar(select(func.count(Asset.id))) == 40


@pytest.mark.parametrize("kind, pattern", [("exact", "vm-test-1"), ("glob", "vm-test-*"), ("regex", r"vm-test-\d+")])
def test_suppressed_assets_leave_no_asset_row_and_no_reading(app, client, ingest, kind, pattern):
    with app.app_context():
        db.session.add(Suppression(pattern=pattern, type=kind, reason="lab"))
        db.session.commit()
    response = post(client, ingest, [reading("vm-test-1"), reading("vm-prod-1")])
    assert response.json == {"accepted": 1, "duplicates": 0, "suppressed": 1, "rejected": []}
    with app.app_context():
        assert list(db.session.scalars(select(Asset.external_id))) == ["vm-prod-1"]
    assert count_readings(app) == 1


def test_a_regex_suppression_must_match_the_whole_asset_id(app, client, ingest):
    with app.app_context():
        db.session.add(Suppression(pattern="test", type="regex"))
        db.session.commit()
    assert post(client, ingest, [reading("test"), reading("vm-test-2")]).json["suppressed"] == 1


def test_new_assets_are_unassigned_and_new_for_an_unscoped_key(app, client, ingest):
    post(client, ingest, [reading("vm-9", name="Nine", description="the ninth")])
    with app.app_context():
        asset = db.session.scalar(select(Asset))
        assert (asset.client_id, asset.acknowledged, asset.name, asset.description) == (None, False, "Nine",
                                                                                      "the ninth")
        assert asset.last_seen_at == datetime(2026, 11, 1, 10, tzinfo=timezone.utc)
        audit = db.session.scalar(select(AuditLog).where(AuditLog.table == "assets"))
        assert audit.action == "create" and audit.record_id == str(asset.id)
        assert audit.new_values["external_id"] == "vm-9"


def test_last_seen_follows_the_latest_reading_and_received_at_is_stored(app, client, ingest):
    before = datetime.now(timezone.utc)
    post(client, ingest, [reading("vm-1", ts="2026-11-02T10:00:00Z")])
    post(client, ingest, [reading("vm-1", ts="2026-11-01T10:00:00Z")])
    with app.app_context():
        assert db.session.scalar(select(Asset.last_seen_at)) == datetime(2026, 11, 2, 10, tzinfo=timezone.utc)
        received = list(db.session.scalars(select(Reading.received_at)))
        assert all(before - timedelta(seconds=1) <= r <= datetime.now(timezone.utc) for r in received)


def test_a_scoped_key_creates_assets_for_its_client_and_may_not_post_for_another(app, client):
    make_unit_type(app, "cpu_hours")
    acme, globex = make_client(app, "Acme"), make_client(app, "Globex")
    acme_key, globex_key = make_key(app, "ingest", acme), make_key(app, "ingest", globex)
    assert post(client, acme_key, [reading("acme-vm")]).json["accepted"] == 1
    with app.app_context():
        assert db.session.scalar(select(Asset.client_id)) == acme
    response = post(client, globex_key, [reading("acme-vm", ts="2026-11-01T11:00:00Z"),
                                         reading("globex-vm")])
    result = response.json
    assert result["accepted"] == 1
    assert result["rejected"][0]["index"] == 0
    assert result["rejected"][0]["error"].startswith("forbidden: ")
    assert count_readings(app) == 2


def test_a_scoped_key_may_not_post_for_an_unassigned_asset(app, client):
    make_unit_type(app, "cpu_hours")
    unscoped = make_key(app, "ingest")
    scoped = make_key(app, "ingest", make_client(app, "Acme"))
    post(client, unscoped, [reading("loose")])
    result = post(client, scoped, [reading("loose", ts="2026-11-02T10:00:00Z")]).json
    assert result["accepted"] == 0 and result["rejected"][0]["error"].startswith("forbidden: ")


def test_a_reassigned_asset_is_seen_at_once_by_the_same_process(app, client):
    make_unit_type(app, "cpu_hours")
    acme, globex = make_client(app, "Acme"), make_client(app, "Globex")
    acme_key, admin = make_key(app, "ingest", acme), make_key(app, "admin")
    assert post(client, acme_key, [reading("vm-1")]).json["accepted"] == 1
    with app.app_context():
        asset_id = db.session.scalar(select(Asset.id))
    patch = client.patch(f"/api/v1/assets/{asset_id}", json={"client_id": globex}, headers=bearer(admin))
    assert patch.status_code == 200
    result = post(client, acme_key, [reading("vm-1", ts="2026-11-02T10:00:00Z")]).json
    assert result["rejected"][0]["error"].startswith("forbidden: ")


def test_a_cached_asset_deleted_meanwhile_is_created_again(app, client, ingest):
    post(client, ingest, [reading("vm-1")])
    with app.app_context():
        db.session.execute(Asset.__table__.delete())
        db.session.commit()
    result = post(client, ingest, [reading("vm-1", ts="2026-11-02T10:00:00Z")]).json
    assert result["accepted"] == 1
    assert count_readings(app) == 1


@pytest.mark.parametrize("body, status", [
    (b"not json", 400), (b'{"readings": 5}', 400), (b'"text"', 400), (b"{}", 400), (b"42", 400),
    (b'{"readings": [], "extra": 1}', 400), (b"\xff\xfe", 400), (b"[" * 5000, 400), (b"1" * 5000, 400),
])
def test_a_body_that_is_not_a_list_of_readings_is_400(client, ingest, body, status):
    response = client.post(URL, data=body, headers={**bearer(ingest), "Content-Type": "application/json"})
    assert response.status_code == status
    assert "error" in response.json


def test_over_ten_thousand_items_is_413(client, ingest):
    response = post(client, ingest, [reading()] * 10_001)
    assert response.status_code == 413
    assert "10,000" in response.json["error"]


def test_exactly_ten_thousand_items_are_taken(app, client, ingest):
    start = datetime(2026, 10, 1, tzinfo=timezone.utc)
    body = [reading(f"vm-{i % 100}", value=i, ts=iso(start + timedelta(minutes=i // 100))) for i in range(10_000)]
    assert post(client, ingest, body).json["accepted"] == 10_000
    assert count_readings(app) == 10_000


def test_no_key_or_a_bad_key_is_401(client, ingest):
    assert client.post(URL, json=[]).status_code == 401
    assert client.post(URL, json=[], headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.post(URL, json=[], headers=bearer("mdk_deadbeef_nope")).status_code == 401
    assert client.post(URL, json=[], headers=bearer("mdk_dead\x00eef_nope")).status_code == 401
    assert client.post(URL, json=[], headers=bearer(ingest + "x")).json["error"] == "invalid or disabled API key"


def test_a_disabled_key_is_refused_at_once(app, client, ingest):
    from models import ApiKey

    assert post(client, ingest, []).status_code == 200
    with app.app_context():
        db.session.scalar(select(ApiKey)).enabled = False
        db.session.commit()
    assert post(client, ingest, []).status_code == 401


def test_a_readonly_key_may_not_post_readings(app, client, ingest):
    response = post(client, make_key(app, "readonly"), [reading()])
    assert response.status_code == 403
    assert count_readings(app) == 0


def test_over_the_rate_limit_is_429_with_retry_after(settings, ):
    from app import create_app
    from tests.conftest import empty_tables

    settings["API_RATE_LIMIT"] = "3 per minute"
    app = create_app(settings)
    with app.app_context():
        empty_tables()
    import redis

    redis.from_url(settings["REDIS_URL"]).flushdb()
    key = make_key(app, "ingest")
    other = make_key(app, "ingest", name="other")
    client = app.test_client()
    assert [post(client, key, []).status_code for _ in range(4)] == [200, 200, 200, 429]
    limited = post(client, key, [])
    assert limited.status_code == 429 and "error" in limited.json
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert post(client, other, []).status_code == 200


def test_ingest_is_a_plain_function_that_counts_every_item(app):
    make_unit_type(app, "cpu_hours")
    with app.app_context():
        result = ingest_body(db.session, json.dumps([reading("a"), reading("a"), reading("b", value=-1)]).encode())
        assert (result.accepted, result.duplicates, result.suppressed) == (1, 1, 0)
        assert [r["index"] for r in result.rejected] == [2]


def test_a_put_is_405_in_json(client, ingest):
    response = client.put(URL, headers=bearer(ingest))
    assert response.status_code == 405
    assert response.is_json and "error" in response.json

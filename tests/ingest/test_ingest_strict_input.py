"""POST /api/v1/readings takes timestamps only as ISO 8601 text with a zone, and a hostile number rejects its own item,
never the batch: each case through the real endpoint with a real key, checking the answer and what was stored."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from extensions import db
from models import Asset, Reading
from tests.api_helpers import bearer, make_key, make_unit_type, reading

URL = "/api/v1/readings"
ISO_REASON = ("timestamp: must be an ISO 8601 date and time with a timezone (Z or ±hh:mm), "
              "e.g. 2026-11-01T10:00:00Z")


@pytest.fixture
def ingest(app):
    make_unit_type(app, "cpu_hours")
    return make_key(app, "ingest")


def post_raw(client, key, raw: bytes):
    return client.post(URL, data=raw, headers={**bearer(key), "Content-Type": "application/json"})


def stored(app) -> list[tuple[str, datetime, Decimal]]:
    with app.app_context():
        return sorted(db.session.execute(
            select(Asset.external_id, Reading.ts, Reading.value).join(Reading, Reading.asset_id == Asset.id)).all())


def item_text(asset_id: str, value: str = "1.5", ts: str = '"2026-11-01T10:00:00Z"') -> bytes:
    """One reading written by hand, so that numbers and literals reach the server exactly as a collector sent them."""
    return (f'{{"asset_id": "{asset_id}", "source": "vmware", "unit_type": "cpu_hours", '
            f'"value": {value}, "timestamp": {ts}}}').encode()


def batch(*items: bytes) -> bytes:
    return b"[" + b", ".join(items) + b"]"


TEN = datetime(2026, 11, 1, 10, tzinfo=timezone.utc)


def test_epoch_seconds_as_text_or_number_are_rejected_alone_and_the_rest_stored(app, client, ingest):
    body = [reading("ok-1"), reading("epoch-text", ts="1700000000"), reading("epoch-float-text", ts="1700000000.5"),
            reading("epoch-number", ts=1700000000), reading("epoch-ms", ts="1700000000000"), reading("ok-2")]
    response = client.post(URL, json=body, headers=bearer(ingest))
    assert response.status_code == 200
    assert response.json == {"accepted": 2, "duplicates": 0, "suppressed": 0,
                             "rejected": [{"index": i, "error": ISO_REASON} for i in (1, 2, 3, 4)]}
    assert stored(app) == [("ok-1", TEN, Decimal("1.5")), ("ok-2", TEN, Decimal("1.5"))]


@pytest.mark.parametrize("written, moment", [
    ("2026-11-01T10:00:00Z", TEN),
    ("2026-11-01T10:00:00z", TEN),
    ("2026-11-01t10:00:00Z", TEN),
    ("2026-11-01 10:00:00Z", TEN),
    ("2026-11-01T10:00Z", TEN),
    ("2026-11-01T11:00:00+01:00", TEN),
    ("2026-11-01T11:00:00+0100", TEN),
    ("2026-11-01T04:30:00-05:30", TEN),
    ("2026-11-01T10:00:00-00:00", TEN),
    ("2026-11-01T10:00:00.25Z", TEN + timedelta(microseconds=250_000)),
    ("2026-11-01T10:00:00,5Z", TEN + timedelta(microseconds=500_000)),
    ("2026-11-01T10:00:00.123456789Z", TEN + timedelta(microseconds=123_456)),
])
def test_every_iso_8601_form_with_a_zone_accepted_before_is_still_accepted(app, client, ingest, written, moment):
    response = client.post(URL, json=[reading("vm-1", ts=written)], headers=bearer(ingest))
    assert response.json == {"accepted": 1, "duplicates": 0, "suppressed": 0, "rejected": []}
    assert stored(app) == [("vm-1", moment, Decimal("1.5"))]


@pytest.mark.parametrize("written", [
    "2026-11-01T10:00:00", "2026-11-01", "2026-11-01_10:00:00Z", "20261101T100000Z", "2026-11-01T10:00:00+01",
    "2026-11-01T10:00:00 Z", " 2026-11-01T10:00:00Z", "2026-11-01T10:00:00.123Z" + "0" * 60, "1" * 5000,
    "yesterday", "",
])
def test_a_timestamp_not_written_as_iso_8601_with_a_zone_is_rejected_alone(app, client, ingest, written):
    response = client.post(URL, json=[dict(reading("bad"), timestamp=written), reading("ok")], headers=bearer(ingest))
    assert response.status_code == 200
    assert response.json == {"accepted": 1, "duplicates": 0, "suppressed": 0,
                             "rejected": [{"index": 0, "error": ISO_REASON}]}
    assert stored(app) == [("ok", TEN, Decimal("1.5"))]


def test_a_5000_digit_value_is_rejected_alone_and_the_rest_stored(app, client, ingest):
    raw = batch(item_text("ok-1"), item_text("huge", "9" * 5000), item_text("ok-2", "2"),
                item_text("huge-text", '"' + "9" * 5000 + '"'), item_text("big", "1000000000000"))
    response = post_raw(client, ingest, raw)
    assert response.status_code == 200
    assert response.json == {"accepted": 2, "duplicates": 0, "suppressed": 0, "rejected": [
        {"index": 1, "error": "value: Input should be less than 1E+12"},
        {"index": 3, "error": "value: Input should be less than 1E+12"},
        {"index": 4, "error": "value: Input should be less than 1E+12"}]}
    assert stored(app) == [("ok-1", TEN, Decimal("1.5")), ("ok-2", TEN, Decimal("2"))]


@pytest.mark.parametrize("literal, reason", [
    ("1e999999", "value: Input should be less than 1E+12"),  # JSON numbers are read exactly, as Decimal
    ("-1e999999", "value: Input should be greater than or equal to 0"),
    ("NaN", "value: Input should be a finite number"),
    ("Infinity", "value: Input should be a finite number"),
    ("-Infinity", "value: Input should be a finite number"),
    ("-1", "value: Input should be greater than or equal to 0"),
    ("[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]", "value: Decimal input should be an integer, float, string or "
                                                  "Decimal object"),
    ('{"a": {"b": {"c": 1}}}', "value: Decimal input should be an integer, float, string or Decimal object"),
])
def test_a_hostile_number_or_a_nested_value_is_rejected_alone(app, client, ingest, literal, reason):
    response = post_raw(client, ingest, batch(item_text("bad", literal), item_text("ok", "0.000001")))
    assert response.status_code == 200
    assert response.json == {"accepted": 1, "duplicates": 0, "suppressed": 0,
                             "rejected": [{"index": 0, "error": reason}]}
    assert stored(app) == [("ok", TEN, Decimal("0.000001"))]


def test_a_5000_digit_timestamp_number_is_rejected_alone(app, client, ingest):
    response = post_raw(client, ingest, batch(item_text("bad", ts="1" * 5000), item_text("ok")))
    assert response.json == {"accepted": 1, "duplicates": 0, "suppressed": 0,
                             "rejected": [{"index": 0, "error": ISO_REASON}]}
    assert stored(app) == [("ok", TEN, Decimal("1.5"))]


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_a_body_nested_deeper_than_json_parsers_go_is_a_400_and_stores_nothing(app, client, ingest, depth):
    nested = "[" * depth + "]" * depth
    response = post_raw(client, ingest, batch(item_text("ok"), item_text("deep", nested)))
    assert response.status_code == 400
    assert response.json == {"error": "the body must be JSON nested less deeply"}
    assert stored(app) == []


def test_every_json_integer_stays_exact_when_a_batch_has_a_rejected_item(app, client, ingest):
    """Integers are read as Decimal when the batch is not all valid: the same stored value as in a valid batch."""
    raw = batch(item_text("a", "999999999999"), item_text("b", "123456789012.5"), item_text("c", '"x"'))
    response = post_raw(client, ingest, raw)
    assert response.json["accepted"] == 2
    assert stored(app) == [("a", TEN, Decimal("999999999999")), ("b", TEN, Decimal("123456789012.5"))]
    assert json.loads(raw)[0]["value"] == 999999999999

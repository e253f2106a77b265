"""A batch's rules as plain functions (ingest/batch.py): each rejected item's reason, the bounds of a timestamp
(its text, its year, 5 minutes ahead, an archived month), what a body may be, and the counts returned."""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from extensions import db
from ingest.batch import BadBatch, ingest_body, parse_batch
from models import ArchivedMonth, Reading, Suppression
from tests.api_helpers import make_unit_type, reading

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def ingest(items, now: datetime = NOW, raw: bytes | None = None):
    return ingest_body(db.session, raw if raw is not None else json.dumps(items).encode(), now=now)


def reasons(result) -> dict[int, str]:
    return {r["index"]: r["error"] for r in result.rejected}


def stored() -> int:
    return db.session.scalar(select(func.count()).select_from(Reading))


def test_a_reading_exactly_five_minutes_ahead_is_taken_and_one_microsecond_more_is_not(app):
    make_unit_type(app, "cpu_hours")
    with app.app_context():
        result = ingest([reading("a", ts="2026-11-20T12:05:00Z"), reading("b", ts="2026-11-20T12:05:00.000001Z")])
        assert (result.accepted, reasons(result)) == (1, {1: "timestamp: is more than 5 minutes in the future"})


def test_years_2_to_9998_are_the_accepted_range(app):
    make_unit_type(app, "cpu_hours")
    with app.app_context():
        result = ingest([reading("a", ts="0001-12-31T23:00:00Z"), reading("b", ts="9999-01-01T00:00:00Z"),
                         reading("c", ts="9998-01-01T00:00:00Z"), reading("d", ts="0002-01-01T12:00:00Z")])
        # 9998 is inside the years but in the future; 1 and 9999 are outside the years; 2 is taken
        assert reasons(result) == {0: "timestamp: year must be 2 to 9998", 1: "timestamp: year must be 2 to 9998",
                                   2: "timestamp: is more than 5 minutes in the future"}
        assert result.accepted == 1 == stored()


def test_a_reading_for_an_archived_month_is_refused_and_the_months_around_it_are_taken(app):
    make_unit_type(app, "cpu_hours")
    with app.app_context():
        db.session.add(ArchivedMonth(period_start=datetime(2026, 9, 1, tzinfo=timezone.utc), status="archived"))
        db.session.commit()
        result = ingest([reading("a", ts="2026-09-15T00:00:00Z"), reading("a", ts="2026-08-31T23:59:59Z"),
                         reading("a", ts="2026-10-01T01:30:00+02:00"),  # 2026-09-30T23:30Z: September
                         reading("a", ts="2026-10-01T00:00:00Z")])
        refused = "timestamp: 2026-09 is archived (its readings were moved to a file); readings for it are no " \
                  "longer accepted"
        assert reasons(result) == {0: refused, 2: refused}
        assert result.accepted == 2 == stored()


def test_an_item_is_rejected_for_its_first_fault_and_a_non_object_without_a_field_name(app):
    make_unit_type(app, "cpu_hours")
    with app.app_context():
        result = ingest([{"source": "vm", "unit_type": "cpu_hours", "value": -1, "timestamp": "x"}, 7,
                         reading("a", unit="disk")])
        found = reasons(result)
        assert found[0].startswith("asset_id: ") and "required" in found[0].lower()
        assert found[1] == "Input should be a valid dictionary"
        assert found[2] == "unit_type: unknown unit type 'disk'"
        assert result.as_json() == {"accepted": 0, "duplicates": 0, "suppressed": 0, "rejected": [
            {"index": 0, "error": found[0]}, {"index": 1, "error": found[1]}, {"index": 2, "error": found[2]}]}


@pytest.mark.parametrize("ts", ["1764000000", "2026-11-01", "2026-11-01T10:00:00", "2026-11-01T10Z",
                                "2026-11-01T10:00:00Z" + " " * 50, "2026-11-01T10:00:00." + "0" * 44 + "Z"])
def test_a_timestamp_must_be_a_date_and_time_with_a_zone_of_at_most_64_characters(app, ts):
    make_unit_type(app, "cpu_hours")
    with app.app_context():
        result = ingest([reading("a", ts=ts)])
        assert reasons(result) == {0: "timestamp: must be an ISO 8601 date and time with a timezone (Z or ±hh:mm), "
                                      "e.g. 2026-11-01T10:00:00Z"}


@pytest.mark.parametrize("ts", [["2026-11-01T10:00:00Z"], {"at": "2026-11-01T10:00:00Z"}, 1764000000, None])
def test_a_timestamp_that_is_no_text_is_rejected_alone(app, ts):
    make_unit_type(app, "cpu_hours")
    with app.app_context():
        result = ingest([reading("a", ts="2026-11-01T10:00:00Z"), {**reading("b"), "timestamp": ts}])
        assert result.accepted == 1
        assert reasons(result) == {1: "timestamp: must be an ISO 8601 date and time with a timezone (Z or ±hh:mm), "
                                      "e.g. 2026-11-01T10:00:00Z"}


def test_a_64_character_timestamp_is_taken(app):
    make_unit_type(app, "cpu_hours")
    with app.app_context():
        # a text never seen before in this process (texts that passed once are not checked again)
        ts = "2026-11-01T10:00:00." + str(uuid.uuid4().int).ljust(43, "0")[:43] + "Z"
        assert len(ts) == 64
        assert ingest([reading("a", ts=ts)]).accepted == 1


@pytest.mark.parametrize(("body", "status", "message"), [
    (b'{"readings": [], "more": 1}', 400, 'the body must be a JSON list of readings or {"readings": [...]}'),
    (b'{"readings": {}}', 400, 'the body must be a JSON list of readings or {"readings": [...]}'),
    (b'"readings"', 400, 'the body must be a JSON list of readings or {"readings": [...]}'),
    (b"[1, 2", 400, "the body must be JSON"),
    (b"  " + b"[" * 100_000, 400, "the body must be JSON nested less deeply"),
])
def test_a_body_that_is_not_a_batch_is_refused_with_its_status(body, status, message):
    with pytest.raises(BadBatch) as refused:
        parse_batch(body)
    assert (refused.value.status, str(refused.value)) == (status, message)


def test_more_than_10000_items_are_refused_whether_valid_or_not():
    item = reading("a")
    for items in ([item] * 10_001, [item] * 10_000 + [{}]):
        for body in (json.dumps(items).encode(), json.dumps({"readings": items}).encode()):
            with pytest.raises(BadBatch) as refused:
                parse_batch(body)
            assert (refused.value.status, str(refused.value)) == (413, "at most 10,000 readings per request; "
                                                                       "got 10,001")


def test_suppressed_readings_are_counted_and_the_rest_stored(app):
    make_unit_type(app, "cpu_hours")
    with app.app_context():
        db.session.add(Suppression(pattern="tmp-*", type="glob"))
        db.session.commit()
        result = ingest([reading("tmp-1"), reading("tmp-1", ts="2026-11-01T11:00:00Z"), reading("keep"),
                         reading("tmp-2", unit="disk")])
        assert (result.accepted, result.suppressed, list(reasons(result))) == (1, 2, [3])
        assert stored() == 1
        plain = ingest([reading("keep", ts="2026-11-01T12:00:00Z")])
        assert (plain.accepted, plain.suppressed) == (1, 0)


def test_the_archived_month_is_the_utc_month_whatever_the_machines_time_zone(app, monkeypatch):
    make_unit_type(app, "cpu_hours")
    with app.app_context():
        db.session.add(ArchivedMonth(period_start=datetime(2026, 9, 1, tzinfo=timezone.utc), status="archived"))
        db.session.commit()
        # 2026-08-31 20:00 UTC is already September 1st in Auckland (+12:00): the month is August, not archived
        monkeypatch.setenv("TZ", "Pacific/Auckland")
        time.tzset()
        try:
            result = ingest([reading("a", ts="2026-08-31T20:00:00Z"), reading("a", ts="2026-09-30T20:00:00Z")])
        finally:
            monkeypatch.undo()
            time.tzset()
        assert (result.accepted, list(reasons(result))) == (1, [1])

"""Late usage after finalizing: recomputed minus billed, posted as adjustment lines of exactly the difference."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from billing.adjustments import late_differences, post_adjustments, waive_late_readings
from billing.run import bill_period
from extensions import db
from models import AuditLog, BillingReading, utcnow
from reports.late_usage import late_periods
from tests.factories import asset, bucket, readings

D = Decimal
SEP, OCT = (datetime(2026, m, 1, tzinfo=timezone.utc) for m in (9, 10))


def lines(start: datetime) -> list[BillingReading]:
    return list(db.session.scalars(sa.select(BillingReading).where(BillingReading.period_start == start)
                                   .order_by(BillingReading.adjusts_period.is_not(None), BillingReading.id)))


def p95_bucket_finalized_in_september():
    """'Link p95' (one circuit): 20 readings 1..20 Mbps in September 2026, commit 15 at $2.00, overage $1.333.
    n = 20: rank ceil(0.95·20) = 19 -> 19 Mbps. Base 15 × 2.00 = 30.00; overage 4 × 1.333 = 5.332 -> 5.33;
    final 35.33. Finalized."""
    circuit = asset("circuit-1")
    link = bucket("Link p95", "p95", [circuit], commit="15", base="2.00", overage="1.333")
    readings(circuit, [(f"2026-09-{day:02d}T12:00:00+00:00", str(day)) for day in range(1, 21)])
    db.session.commit()
    bill_period(db.session, SEP, finalize=True)
    return circuit, link


def late(circuit, values) -> None:
    """Readings received now: after the latest finalize (late)."""
    received = utcnow()
    assert received > db.session.scalar(sa.select(sa.func.max(BillingReading.finalized_at)))
    readings(circuit, values, received_at=received)
    db.session.commit()


def test_a_late_reading_moving_the_p95_is_posted_as_exactly_the_difference(app):
    with app.app_context():
        circuit, link = p95_bucket_finalized_in_september()
        [september] = lines(SEP)
        assert (september.total_usage, september.overage_cost, september.final_cost) == (D(19), D("5.33"),
                                                                                           D("35.33"))
        # A 50 Mbps sample arrives after finalizing: n = 21, rank ceil(19.95) = 20 -> 20 Mbps (moves by 1).
        # Recomputed: overage 5 × 1.333 = 6.665 -> 6.67; final 36.67. Difference: +1 unit, +1.34 (not 1.333).
        late(circuit, [("2026-09-25T12:00:00+00:00", "50")])
        [diff] = late_differences(db.session, SEP)
        assert (diff.difference.total_usage, diff.difference.overage_units, diff.difference.overage_cost,
                diff.difference.final_cost, diff.difference.base_cost) == (D(1), D(1), D("1.34"), D("1.34"), D(0))
        [period] = late_periods(db.session)
        assert (period.period, period.late_readings, period.buckets_affected, period.difference) == (
            "2026-09", 1, 1, D("1.34"))
        summary = post_adjustments(db.session, SEP, OCT)
        assert (summary.lines, summary.total) == (1, D("1.34"))
        [adjustment] = lines(OCT)
        assert (adjustment.adjusts_period, adjustment.bucket_id, adjustment.total_usage, adjustment.overage_cost,
                adjustment.final_cost, adjustment.commit, adjustment.finalized) == (
            SEP, link.id, D(1), D("1.34"), D("1.34"), D(0), False)
        assert adjustment.details["assets"] == [{"asset_id": circuit.id, "external_id": "circuit-1", "usage": "1.000000"}]
        assert adjustment.details["term"] == {"commit": "15.000000", "base_price": "2.000000",
                                              "overage_price": "1.333000"}
        # Billing October keeps the adjustment; finalizing October finalizes it: billed 35.33 + 1.34 = 36.67.
        summary = bill_period(db.session, OCT, finalize=True)
        assert "1 adjustment line(s) finalized with it" in summary.message
        [ordinary, adjustment] = lines(OCT)
        assert (ordinary.adjusts_period, adjustment.finalized, adjustment.final_cost) == (None, True, D("1.34"))
        [diff] = late_differences(db.session, SEP)
        assert diff.difference.is_zero() and diff.billed.final_cost == D("36.67")
        assert late_periods(db.session) == []


def test_a_period_recomputed_equal_posts_nothing(app):
    with app.app_context():
        circuit, _ = p95_bucket_finalized_in_september()
        late(circuit, [("2026-09-21T12:00:00+00:00", "3")])  # n = 21 -> rank 20 of 1,2,3,3,4..20 -> 19: no change
        [period] = late_periods(db.session)
        assert (period.late_readings, period.difference) == (1, D("0.00"))
        summary = post_adjustments(db.session, SEP, OCT)
        assert (summary.lines, summary.total) == (0, D("0.00"))
        assert "no adjustment posted" in summary.message
        assert lines(OCT) == []


def test_posting_again_replaces_the_unfinalized_lines_and_late_waves_add_up(app):
    with app.app_context():
        circuit, _ = p95_bucket_finalized_in_september()
        late(circuit, [("2026-09-25T12:00:00+00:00", "50")])
        post_adjustments(db.session, SEP, OCT)
        late(circuit, [("2026-09-26T12:00:00+00:00", "60"), ("2026-09-27T12:00:00+00:00", "70")])
        # n = 23: rank ceil(21.85) = 22 of 1..20, 50, 60, 70 -> 60. Recomputed overage 45 × 1.333 = 59.985 -> 59.99
        summary = post_adjustments(db.session, SEP, OCT)
        assert (summary.lines, summary.replaced) == (1, 1)
        [adjustment] = lines(OCT)
        assert (adjustment.total_usage, adjustment.final_cost) == (D(41), D("54.66"))  # 89.99 − 35.33
        bill_period(db.session, OCT, finalize=True)
        late(circuit, [("2026-09-28T12:00:00+00:00", "80")])
        # n = 24: rank ceil(22.8) = 23 -> 70; overage 55 × 1.333 = 73.315 -> 73.32; final 103.32; billed 89.99
        [period] = late_periods(db.session)
        assert (period.late_readings, period.difference) == (1, D("13.33"))
        post_adjustments(db.session, SEP)  # into the current month
        adjustments = db.session.scalars(sa.select(BillingReading.final_cost).where(
            BillingReading.adjusts_period == SEP).order_by(BillingReading.id)).all()
        assert adjustments == [D("54.66"), D("13.33")]
        assert sum(adjustments) + D("35.33") == D("103.32")


def test_into_must_be_a_later_open_started_period(app):
    with app.app_context():
        p95_bucket_finalized_in_september()
        for into, message in ((SEP, "later period"), (datetime(2027, 1, 1, tzinfo=timezone.utc), "future"),
                              (datetime(2026, 8, 1, tzinfo=timezone.utc), "later period")):
            with pytest.raises(ValueError, match=message):
                post_adjustments(db.session, SEP, into)
        bill_period(db.session, OCT, finalize=True)
        with pytest.raises(ValueError, match="2026-10 is finalized"):
            post_adjustments(db.session, SEP, OCT)
        with pytest.raises(ValueError, match="no finalized billing lines"):
            post_adjustments(db.session, datetime(2026, 8, 1, tzinfo=timezone.utc), OCT)


def test_waiving_stops_the_readings_so_far_counting_as_pending(app):
    with app.app_context():
        circuit, _ = p95_bucket_finalized_in_september()
        late(circuit, [("2026-09-25T12:00:00+00:00", "50")])
        waive_late_readings(db.session, SEP, "admin@example.com")
        assert late_periods(db.session) == []
        assert db.session.scalar(sa.select(AuditLog.action).where(AuditLog.table == "late_usage_waivers")) == "create"
        late(circuit, [("2026-09-26T12:00:00+00:00", "60")])
        [period] = late_periods(db.session)
        assert period.late_readings == 1 and period.waived_at is not None


def test_adjustment_lines_count_in_the_periods_totals_and_reports(app):
    from reports.over_under import client_lines
    from reports.revenue import client_statuses, final_cost_of

    with app.app_context():
        circuit, _ = p95_bucket_finalized_in_september()
        bill_period(db.session, OCT)  # October: no readings -> usage 0, buffer 15, final 30.00
        late(circuit, [("2026-09-25T12:00:00+00:00", "50")])
        post_adjustments(db.session, SEP, OCT)
        assert final_cost_of(db.session, OCT) == D("31.34")
        [client_line] = client_lines(db.session, OCT)
        assert (client_line.final_cost, client_line.overage, client_line.status) == (D("31.34"), D("1.34"), "under")
        assert client_statuses(db.session, OCT) == {client_line.client_id: "under"}
        bill_period(db.session, OCT)  # re-billing October keeps the posted adjustment
        assert final_cost_of(db.session, OCT) == D("31.34")


def test_the_csv_export_carries_adjusts_period(app, tmp_path):
    import csv
    import io
    import zipfile

    from billing.export import export_period

    with app.app_context():
        circuit, _ = p95_bucket_finalized_in_september()
        bill_period(db.session, OCT)
        late(circuit, [("2026-09-25T12:00:00+00:00", "50")])
        post_adjustments(db.session, SEP, OCT)
        assert export_period(db.session, OCT, tmp_path / "oct.zip") == 2
    with zipfile.ZipFile(tmp_path / "oct.zip") as archive:
        rows = list(csv.DictReader(io.TextIOWrapper(archive.open("gb.csv"), encoding="utf-8")))
    assert [(row["adjusts_period"], row["final_cost"]) for row in rows] == [("", "30.00"), ("2026-09", "1.34")]


def test_the_post_adjustments_command(app, runner):
    with app.app_context():
        circuit, _ = p95_bucket_finalized_in_september()
        late(circuit, [("2026-09-25T12:00:00+00:00", "50")])
    done = runner.invoke(args=["post-adjustments", "--period", "2026-09", "--into", "2026-10"])
    assert done.exit_code == 0, done.output
    assert "Posted 1 adjustment line(s) for 2026-09 into 2026-10, total $1.34." in done.output
    refused = runner.invoke(args=["post-adjustments", "--period", "2026-09", "--into", "2026-09"])
    assert refused.exit_code != 0 and "later period" in refused.output
    bad = runner.invoke(args=["post-adjustments", "--period", "2026-13"])
    assert bad.exit_code != 0 and "real month" in bad.output

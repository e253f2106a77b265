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


AUG = datetime(2026, 8, 1, tzinfo=timezone.utc)


def disks_finalized_in_august_and_september():
    """'Disk A' (disk-a) and 'Disk B' (disk-b), sum, each commit 10 at $1.00, overage $2.00. August: A 12 (overage
    2 × 2.00 = 4.00; final 14.00), B 10 (final 10.00); September: A 8 (buffer 2; final 10.00), B 10 (10.00). Both
    months finalized."""
    disk_a, disk_b = asset("disk-a"), asset("disk-b")
    a = bucket("Disk A", "sum", [disk_a], commit="10", base="1.00", overage="2.00")
    b = bucket("Disk B", "sum", [disk_b], commit="10", base="1.00", overage="2.00")
    readings(disk_a, [("2026-08-03T00:00:00+00:00", "12"), ("2026-09-03T00:00:00+00:00", "8")])
    readings(disk_b, [("2026-08-03T00:00:00+00:00", "10"), ("2026-09-03T00:00:00+00:00", "10")])
    db.session.commit()
    bill_period(db.session, AUG, finalize=True)
    bill_period(db.session, SEP, finalize=True)
    return (disk_a, a), (disk_b, b)


def late_disk_readings(disk_a, disk_b) -> None:
    """Late: A +1 in August (13: overage 3 -> 6.00, final 16.00: +2.00), A +3 in September (11: overage 1 -> 2.00,
    final 12.00: +2.00), B +5 in September (15: overage 5 -> 10.00, final 20.00: +10.00)."""
    late(disk_a, [("2026-08-20T00:00:00+00:00", "1"), ("2026-09-20T00:00:00+00:00", "3")])
    late(disk_b, [("2026-09-20T00:00:00+00:00", "5")])


def test_pending_adjustments_are_counted_per_adjusted_period_and_into_period_until_finalized(app):
    from billing.adjustments import pending_adjustments

    with app.app_context():
        (disk_a, _), (disk_b, _) = disks_finalized_in_august_and_september()
        late_disk_readings(disk_a, disk_b)
        bill_period(db.session, OCT)  # October's ordinary lines (unfinalized) are not adjustments
        assert pending_adjustments(db.session) == {}
        post_adjustments(db.session, AUG, OCT)
        post_adjustments(db.session, SEP, OCT)
        # August: 1 line (A +2.00); September: 2 lines (A +2.00, B +10.00) = 12.00; both into October
        assert pending_adjustments(db.session) == {AUG: [(OCT, 1, D("2.00"))], SEP: [(OCT, 2, D("12.00"))]}
        bill_period(db.session, OCT, finalize=True)  # finalized with October: no longer pending
        assert pending_adjustments(db.session) == {}


def test_finalized_periods_are_those_with_a_finalized_ordinary_line_latest_first(app):
    from billing.adjustments import check_into, finalized_periods

    with app.app_context():
        (disk_a, a), (disk_b, b) = disks_finalized_in_august_and_september()
        assert finalized_periods(db.session) == [SEP, AUG]
        late_disk_readings(disk_a, disk_b)
        post_adjustments(db.session, SEP, OCT)
        bill_period(db.session, OCT)
        assert finalized_periods(db.session) == [SEP, AUG]  # October billed, not finalized
        a.enabled = b.enabled = False
        db.session.commit()
        bill_period(db.session, OCT, finalize=True)  # no enabled bucket: October's only lines are the 2 adjustments
        assert [(line.adjusts_period, line.finalized) for line in lines(OCT)] == [(SEP, True), (SEP, True)]
        assert finalized_periods(db.session) == [SEP, AUG]
        with pytest.raises(ValueError, match="^2026-10 has no finalized billing lines$"):
            waive_late_readings(db.session, OCT, "admin@example.com")
        with pytest.raises(ValueError, match="^2026-10 has no finalized billing lines"):
            check_into(db.session, OCT, datetime(2026, 12, 1, tzinfo=timezone.utc),
                       datetime(2026, 12, 15, tzinfo=timezone.utc))


def test_open_periods_after_are_the_started_unfinalized_ones_latest_first(app):
    from billing.adjustments import open_periods_after

    with app.app_context():
        disks_finalized_in_august_and_september()
        bill_period(db.session, OCT)  # billed, not finalized: still open
        january = datetime(2027, 1, 15, tzinfo=timezone.utc)
        # after August: September is finalized; October .. January (the current month at `now`) are open
        assert open_periods_after(db.session, AUG, january) == ["2027-01", "2026-12", "2026-11", "2026-10"]
        assert open_periods_after(db.session, datetime(2026, 9, 30, tzinfo=timezone.utc),
                                  datetime(2026, 11, 2, tzinfo=timezone.utc)) == ["2026-11", "2026-10"]


def test_waiving_again_moves_that_periods_waiver_only(app):
    from models import LateUsageWaiver

    with app.app_context():
        disks_finalized_in_august_and_september()
        bill_period(db.session, OCT)  # billed, not finalized: nothing to waive
        first, second, third = (datetime(2026, 11, day, 9, tzinfo=timezone.utc) for day in (2, 3, 4))
        waive_late_readings(db.session, AUG, "ann@example.com", first)
        waive_late_readings(db.session, datetime(2026, 9, 17, tzinfo=timezone.utc), "bob@example.com", second)
        waive_late_readings(db.session, AUG, "cy@example.com", third)
        waivers = {(w.period_start, w.waived_at, w.waived_by) for w in db.session.scalars(sa.select(LateUsageWaiver))}
        assert waivers == {(AUG, third, "cy@example.com"), (SEP, second, "bob@example.com")}
        with pytest.raises(ValueError, match="^2026-10 has no finalized billing lines$"):
            waive_late_readings(db.session, OCT, "admin@example.com")


def test_an_asset_moved_after_finalizing_is_posted_as_its_usage_in_both_buckets(app):
    with app.app_context():
        (disk_a, a), (disk_b, b) = disks_finalized_in_august_and_september()
        b.assets, a.assets = [], [disk_a, disk_b]
        db.session.commit()
        # September recomputed: A 8 + 10 = 18 (overage 8 × 2.00 = 16.00; final 26.00) against 10.00 billed: +16.00;
        # B 0 (buffer 10 × 1.00 = 10.00; final 10.00) against 10.00: +0.00, but usage −10: posted all the same
        steps = []
        summary = post_adjustments(db.session, SEP, OCT, lambda percent, message: steps.append((percent, message)))
        assert (summary.lines, summary.total) == (2, D("16.00"))
        assert steps == [(5, "Recomputing 2026-09"), (80, "Writing 2 adjustment line(s) into 2026-10"), (100, "Done")]
        moved_in, moved_out = lines(OCT)
        assert (moved_in.bucket_id, moved_in.total_usage, moved_in.overage_units, moved_in.buffer_units,
                moved_in.overage_cost, moved_in.buffer_cost, moved_in.final_cost) == (
            a.id, D(10), D(8), D(-2), D("16.00"), D("-2.00"), D("16.00"))
        assert (moved_out.bucket_id, moved_out.total_usage, moved_out.overage_units, moved_out.buffer_units,
                moved_out.buffer_cost, moved_out.final_cost) == (b.id, D(-10), D(0), D(10), D("10.00"), D("0.00"))
        assert moved_in.details["assets"] == [{"asset_id": disk_b.id, "external_id": "disk-b", "usage": "10.000000"}]
        assert moved_out.details["assets"] == [{"asset_id": disk_b.id, "external_id": "disk-b",
                                                "usage": "-10.000000"}]
        assert {name: moved_in.details[name] for name in ("adjusts_period", "aggregation", "unit_type", "bucket")} == {
            "adjusts_period": "2026-09", "aggregation": "sum", "unit_type": "gb", "bucket": "Disk A"}
        # the line keeps both sides of the difference, figure by figure
        assert {name: D(value) for name, value in moved_in.details["billed"].items()} == {
            "total_usage": D(8), "overage_units": D(0), "buffer_units": D(2), "base_cost": D("10.00"),
            "overage_cost": D("0.00"), "buffer_cost": D("2.00"), "final_cost": D("10.00")}
        assert {name: D(value) for name, value in moved_in.details["recomputed"].items()} == {
            "total_usage": D(18), "overage_units": D(8), "buffer_units": D(0), "base_cost": D("10.00"),
            "overage_cost": D("16.00"), "buffer_cost": D("0.00"), "final_cost": D("26.00")}
        # moved back: September recomputes as billed; posting again removes the 2 unfinalized lines
        a.assets, b.assets = [disk_a], [disk_b]
        db.session.commit()
        summary = post_adjustments(db.session, SEP, OCT)
        assert summary.message == ("2026-09 recomputes equal to what was billed: no adjustment posted "
                                   "(2 unfinalized adjustment line(s) removed).")
        assert lines(OCT) == []


def test_posting_audits_each_line_created_and_each_replaced_line_deleted(app):
    with app.app_context():
        circuit, link = p95_bucket_finalized_in_september()
        late(circuit, [("2026-09-25T12:00:00+00:00", "50")])
        first = post_adjustments(db.session, SEP, OCT)
        assert first.message == "Posted 1 adjustment line(s) for 2026-09 into 2026-10, total $1.34."
        [posted_id] = [line.id for line in lines(OCT)]
        [created] = db.session.scalars(sa.select(AuditLog).where(
            AuditLog.table == "billing_readings", AuditLog.record_id == str(posted_id))).all()
        # +1 Mbps: overage 1 unit, +1.34; buffer, base and commit 0
        numbers = {"total_usage": D(1), "commit": D(0), "base_cost": D(0), "overage_units": D(1),
                   "overage_cost": D("1.34"), "buffer_units": D(0), "buffer_cost": D(0), "final_cost": D("1.34")}
        plain = {"client_id": link.client_id, "bucket_id": link.id, "period_start": "2026-10-01T00:00:00+00:00",
                 "adjusts_period": "2026-09-01T00:00:00+00:00", "finalized": False}
        assert created.action == "create" and created.old_values is None
        assert {name: created.new_values[name] for name in plain} == plain
        assert {name: D(created.new_values[name]) for name in numbers} == numbers
        assert set(created.new_values) == set(plain) | set(numbers)
        # Posting again (nothing new): the line is replaced by an equal one; the old one's deletion is audited
        second = post_adjustments(db.session, SEP, OCT)
        assert second.message == ("Posted 1 adjustment line(s) for 2026-09 into 2026-10, total $1.34; "
                                  "1 earlier unposted line(s) replaced.")
        [deleted] = db.session.scalars(sa.select(AuditLog).where(
            AuditLog.table == "billing_readings", AuditLog.record_id == str(posted_id),
            AuditLog.action == "delete")).all()
        assert deleted.new_values is None
        assert {name: deleted.old_values[name] for name in plain} == plain
        assert {name: D(deleted.old_values[name]) for name in numbers} == numbers
        assert set(deleted.old_values) == set(plain) | set(numbers)
        [replacement] = lines(OCT)
        assert (replacement.adjusts_period, replacement.final_cost) == (SEP, D("1.34"))


def test_into_is_checked_against_the_given_now_and_p_needs_finalized_lines(app):
    from billing.adjustments import check_into

    with app.app_context():
        disks_finalized_in_august_and_september()
        december, mid_december = datetime(2026, 12, 1, tzinfo=timezone.utc), datetime(2026, 12, 15, tzinfo=timezone.utc)
        check_into(db.session, SEP, december, mid_december)  # December is the current month at mid-December
        with pytest.raises(ValueError, match="^2026-12 is in the future"):
            check_into(db.session, SEP, december, datetime(2026, 11, 30, tzinfo=timezone.utc))
        bill_period(db.session, OCT)  # October billed, not finalized: nothing to adjust yet
        with pytest.raises(ValueError, match="^2026-10 has no finalized billing lines"):
            check_into(db.session, OCT, december, mid_december)


def test_the_late_usage_panel_counts_only_the_buckets_with_pending_late_readings(app):
    with app.app_context():
        (disk_a, _), (disk_b, _) = disks_finalized_in_august_and_september()
        late(disk_b, [("2026-09-20T00:00:00+00:00", "5")])  # B 15: +10.00, then waived
        waive_late_readings(db.session, SEP, "admin@example.com")
        late(disk_a, [("2026-09-21T00:00:00+00:00", "3")])  # A 11: overage 1 -> +2.00, pending
        [period] = late_periods(db.session)
        # B's +10.00 is waived, not pending: the panel's $ difference is A's alone
        assert (period.period, period.late_readings, period.buckets_affected, period.difference) == (
            "2026-09", 1, 1, D("2.00"))
        assert sum(d.difference.final_cost for d in late_differences(db.session, SEP)) == D("12.00")


def test_finalized_adjustment_lines_add_their_per_asset_usage_to_what_was_billed(app):
    with app.app_context():
        (disk_a, a), (disk_b, b) = disks_finalized_in_august_and_september()
        b.assets, a.assets = [], [disk_a, disk_b]
        db.session.commit()
        post_adjustments(db.session, SEP, OCT)  # A: disk-b +10; B: disk-b −10
        bill_period(db.session, OCT, finalize=True)
        moved_in, moved_out = late_differences(db.session, SEP)
        # billed now: A's line (disk-a 8) plus its adjustment (disk-b +10); B's line (disk-b 10) plus −10
        assert moved_in.billed_assets == {disk_a.id: D(8), disk_b.id: D(10)}
        assert moved_out.billed_assets == {disk_b.id: D(0)}
        assert (moved_in.billed.total_usage, moved_in.billed.final_cost) == (D(18), D("26.00"))
        assert moved_in.difference.is_zero() and moved_out.difference.is_zero()
        assert moved_in.asset_differences() == {} and moved_out.asset_differences() == {}

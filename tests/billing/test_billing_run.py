"""A billing run: one line per enabled bucket, exact costs, repeatable, finalized lines frozen, late readings."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from billing.run import bill_period, late_readings
from extensions import db
from models import AuditLog, BillingReading, utcnow
from tests.factories import NOV, asset, bucket, readings, unit_type

D = Decimal
OCT_TS = "2026-10-{:02d}T12:00:00+00:00"
OCT = NOV.replace(month=10)


def lines() -> list[BillingReading]:
    db.session.expire_all()
    return list(db.session.scalars(select(BillingReading).order_by(BillingReading.bucket_id)))


def figures(line: BillingReading) -> tuple:
    return (line.total_usage, line.base_cost, line.overage_units, line.overage_cost, line.buffer_units,
            line.buffer_cost, line.final_cost)


def test_a_line_per_bucket_with_snapshot_costs_and_breakdown(app):
    with app.app_context():
        a, b = asset("vm-a"), asset("vm-b")
        readings(a, [(OCT_TS.format(2), "100"), (OCT_TS.format(3), "0.5")])
        readings(b, [(OCT_TS.format(4), "20")])
        over = bucket("storage", "sum", [a, b], commit="100", base="2", overage="3")
        under = bucket("peak", "max", [a, b], commit="150", base="0.1", overage="1")
        db.session.commit()
        summary = bill_period(db.session, OCT)
        assert (summary.period, summary.lines, summary.total_cost) == ("2026-10", 2, D("276.50"))
        first, second = lines()
        # U = 120.5, C = 100: base 100*2 = 200.00, overage 20.5*3 = 61.50, final 261.50
        assert first.bucket_id == over.id
        assert figures(first) == (D("120.5"), D("200.00"), D("20.5"), D("61.50"), D("0"), D("0.00"), D("261.50"))
        assert (first.commit, first.base_price, first.overage_price) == (D("100"), D("2"), D("3"))
        assert first.details["assets"] == [
            {"asset_id": a.id, "external_id": "vm-a", "usage": "100.500000"},
            {"asset_id": b.id, "external_id": "vm-b", "usage": "20.000000"},
        ]
        assert first.details["status"] == "over"
        # U = 100 + 20 = 120, C = 150: base 15.00, buffer 30 units = 3.00 $, final 15.00
        assert second.bucket_id == under.id
        assert figures(second) == (D("120"), D("15.00"), D("0"), D("0.00"), D("30"), D("3.00"), D("15.00"))
        assert second.details["status"] == "under"
        assert (first.period_start, first.period_end) == (OCT, NOV)
        assert not first.finalized and first.finalized_at is None


def test_exact_half_cent_rounds_up_and_commit_zero_has_no_base(app):
    with app.app_context():
        a = asset("vm-a")
        readings(a, [(OCT_TS.format(2), "0.5")])
        bucket("tiny", "sum", [a], commit="0", base="9", overage="0.01")  # 0.5 * 0.01 = 0.005 -> 0.01
        db.session.commit()
        bill_period(db.session, OCT)
        (line,) = lines()
        assert figures(line) == (D("0.5"), D("0.00"), D("0.5"), D("0.01"), D("0"), D("0.00"), D("0.01"))


def test_disabled_buckets_and_disregarded_assets_are_not_billed(app):
    with app.app_context():
        kept, gone = asset("kept"), asset("gone", disregarded_at=utcnow())
        readings(kept, [(OCT_TS.format(2), "5")])
        readings(gone, [(OCT_TS.format(2), "7")])
        on = bucket("on", "sum", [kept, gone], commit="0", overage="1")
        bucket("off", "sum", [kept], commit="0", overage="1", enabled=False)
        db.session.commit()
        bill_period(db.session, OCT)
        (line,) = lines()
        assert (line.bucket_id, line.total_usage, line.final_cost) == (on.id, D("5"), D("5.00"))
        assert [entry["external_id"] for entry in line.details["assets"]] == ["kept"]


def test_repeating_a_run_replaces_unfinalized_lines_with_the_same_result(app):
    with app.app_context():
        a = asset("vm-a")
        readings(a, [(OCT_TS.format(2), "10")])
        bucket("storage", "sum", [a], commit="5", base="1", overage="2")
        db.session.commit()
        bill_period(db.session, OCT)
        before = [figures(line) for line in lines()]
        bill_period(db.session, OCT)
        assert [figures(line) for line in lines()] == before == [
            (D("10"), D("5.00"), D("5"), D("10.00"), D("0"), D("0.00"), D("15.00"))]
        readings(a, [(OCT_TS.format(9), "1")])
        db.session.commit()
        bill_period(db.session, OCT)
        (line,) = lines()
        assert (line.total_usage, line.final_cost) == (D("11"), D("17.00"))
        actions = db.session.execute(select(AuditLog.action, AuditLog.table).where(
            AuditLog.table == "billing_readings").order_by(AuditLog.id)).all()
        assert [a for a, _ in actions] == ["create", "delete", "create", "delete", "create"]


def test_finalized_lines_never_change_and_late_readings_are_counted(app):
    with app.app_context():
        a = asset("vm-a")
        readings(a, [(OCT_TS.format(2), "10")], received_at=utcnow() - timedelta(days=20))
        bucket("storage", "sum", [a], commit="0", overage="1")
        db.session.commit()
        summary = bill_period(db.session, OCT, finalize=True)
        assert summary.finalized
        (line,) = lines()
        assert line.finalized and line.finalized_at is not None
        frozen = figures(line) + (line.finalized_at, line.id)
        # a reading for October arrives after finalization: stored, counted late, not billed
        readings(a, [(OCT_TS.format(20), "99")], received_at=utcnow() + timedelta(seconds=1))
        readings(a, [("2026-11-02T00:00:00+00:00", "5")], received_at=utcnow() + timedelta(seconds=1))
        db.session.commit()
        again = bill_period(db.session, OCT)
        (line,) = lines()
        assert figures(line) + (line.finalized_at, line.id) == frozen
        assert (again.lines, again.kept_finalized, again.late_readings) == (0, 1, 1)
        assert late_readings(db.session, [line.id]) == {line.id: 1}
        assert "1 late reading(s) not billed" in again.message


def test_late_readings_count_only_the_lines_bound_eligible_assets_of_their_unit_type_and_period(app):
    with app.app_context():
        cpu = unit_type("cpu")
        a, b, off, gone, stray = (asset("vm-a"), asset("vm-b"), asset("vm-off", enabled=False),
                                  asset("vm-gone", disregarded_at=utcnow()), asset("vm-stray"))
        storage = bucket("storage", "sum", [a, b, off, gone])
        compute = bucket("compute", "sum", [a], unit=cpu)
        idle = bucket("idle", "sum", [b], unit=cpu)
        before = utcnow() - timedelta(days=20)
        for each in (a, b, off, gone, stray):
            readings(each, [(OCT_TS.format(1), "1")], received_at=before)
        db.session.commit()
        bill_period(db.session, OCT, finalize=True)
        storage_line, compute_line, idle_line = (
            db.session.scalar(select(BillingReading).where(BillingReading.bucket_id == line_bucket.id))
            for line_bucket in (storage, compute, idle))
        after = storage_line.finalized_at + timedelta(seconds=1)
        # late for storage: vm-a 2 + vm-b 1 = 3; vm-off, vm-gone (not eligible) and vm-stray (unbound) do not count,
        # nor vm-a's November reading (outside the period) nor its reading received before finalizing
        readings(a, [(OCT_TS.format(5), "1"), (OCT_TS.format(6), "1"), ("2026-11-01T00:00:00+00:00", "1")],
                 received_at=after)
        readings(a, [(OCT_TS.format(7), "1")], received_at=before)
        readings(b, [("2026-10-31T23:59:59+00:00", "1")], received_at=after)
        for each in (off, gone, stray):
            readings(each, [(OCT_TS.format(5), "1")], received_at=after)
        # late for compute: vm-a's one cpu reading; the cpu reading does not count for storage
        readings(a, [(OCT_TS.format(8), "1")], unit=cpu, received_at=after)
        db.session.commit()
        # vm-b reports no cpu: the idle line has no late readings and is left out
        assert late_readings(db.session, [storage_line.id, compute_line.id, idle_line.id]) == {
            storage_line.id: 3, compute_line.id: 1}
        # an unfinalized line is left out too (a finalized line cannot be unfinalized): a bucket added after
        # finalizing, billed in October, binds vm-a with its late readings
        later = bucket("later", "sum", [a])
        db.session.commit()
        bill_period(db.session, OCT)
        later_line = db.session.scalar(select(BillingReading).where(BillingReading.bucket_id == later.id))
        assert not later_line.finalized
        assert late_readings(db.session, [later_line.id]) == {}


def test_a_bucket_added_after_finalizing_is_billed_alongside(app):
    with app.app_context():
        a = asset("vm-a")
        readings(a, [(OCT_TS.format(2), "10")])
        first = bucket("storage", "sum", [a], commit="0", overage="1")
        db.session.commit()
        bill_period(db.session, OCT, finalize=True)
        second = bucket("peak", "max", [a], commit="0", overage="2")
        db.session.commit()
        bill_period(db.session, OCT)
        assert [(line.bucket_id, line.finalized, line.final_cost) for line in lines()] == [
            (first.id, True, D("10.00")), (second.id, False, D("20.00"))]


def test_a_future_period_is_refused_and_the_open_one_cannot_be_finalized(app):
    from billing.periods import current_period_start

    with app.app_context():
        with pytest.raises(ValueError, match="future"):
            bill_period(db.session, NOV.replace(year=2099))
        with pytest.raises(ValueError, match="has not ended yet"):
            bill_period(db.session, current_period_start(), finalize=True)
        assert bill_period(db.session, current_period_start()).lines == 0


def test_a_run_that_fails_leaves_the_lines_as_they_were(app):
    with app.app_context():
        a = asset("vm-a")
        readings(a, [(OCT_TS.format(2), "10")])
        bucket("storage", "sum", [a], commit="0", overage="1000")
        db.session.commit()
        bill_period(db.session, OCT)
        before = [(line.id, figures(line)) for line in lines()]
        audits = db.session.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1))
        # a collector glitch posts 9 trillion twice: the micro-unit SUM overflows 64 bits on SQLite, and on
        # PostgreSQL the cost (18 trillion * $1000) overflows the money column during the insert
        readings(a, [(OCT_TS.format(3), "9000000000000"), (OCT_TS.format(4), "9000000000000")])
        db.session.commit()
        with pytest.raises(DBAPIError, match="overflow"):
            bill_period(db.session, OCT)
        db.session.rollback()
        assert [(line.id, figures(line)) for line in lines()] == before
        assert db.session.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1)) == audits


def test_replacing_a_line_audits_its_old_and_new_figures_as_plain_text(app):
    with app.app_context():
        a = asset("vm-a")
        readings(a, [(OCT_TS.format(2), "10")])
        storage = bucket("storage", "sum", [a], commit="5", base="1", overage="2")
        db.session.commit()
        bill_period(db.session, OCT)
        first_id = lines()[0].id
        readings(a, [(OCT_TS.format(9), "1")])
        db.session.commit()
        bill_period(db.session, OCT)
        second_id = lines()[0].id
        deleted, created = db.session.execute(select(AuditLog.record_id, AuditLog.old_values, AuditLog.new_values)
                                              .where(AuditLog.table == "billing_readings",
                                                     AuditLog.id > 0).order_by(AuditLog.id)).all()[1:]
        # the replaced line: U = 10, C = 5: base 5.00, overage 5 × 2 = 10.00, final 15.00
        assert deleted.record_id == str(first_id) and deleted.new_values is None
        old = deleted.old_values
        assert (old["bucket_id"], old["finalized"], old["period_start"]) == (storage.id, False, OCT.isoformat())
        assert (D(old["total_usage"]), D(old["overage_units"]), D(old["final_cost"])) == (D("10"), D("5"), D("15"))
        assert isinstance(old["final_cost"], str) and isinstance(old["commit"], str)
        # its replacement: U = 11: overage 6 × 2 = 12.00, final 17.00
        assert created.record_id == str(second_id) and created.old_values is None
        new = created.new_values
        assert (D(new["total_usage"]), D(new["final_cost"]), new["period_start"]) == (D("11"), D("17"), OCT.isoformat())
        assert set(new) == set(old) == {"client_id", "bucket_id", "period_start", "total_usage", "commit",
                                        "base_price", "overage_price", "base_cost", "overage_cost", "buffer_units",
                                        "buffer_cost", "overage_units", "final_cost", "finalized"}


def test_finalizing_a_period_finalizes_only_the_adjustment_lines_posted_into_it(app):
    from billing.adjustments import post_adjustments

    jul, aug, sep = (NOV.replace(month=m) for m in (7, 8, 9))
    with app.app_context():
        a = asset("vm-a")
        bucket("storage", "sum", [a], commit="0", overage="1")
        readings(a, [("2026-07-02T12:00:00+00:00", "1"), ("2026-08-02T12:00:00+00:00", "2")],
                 received_at=utcnow() - timedelta(days=30))
        db.session.commit()
        bill_period(db.session, jul, finalize=True)
        bill_period(db.session, aug, finalize=True)
        late = utcnow() + timedelta(seconds=1)
        readings(a, [("2026-07-03T12:00:00+00:00", "3"), ("2026-08-03T12:00:00+00:00", "4")], received_at=late)
        db.session.commit()
        post_adjustments(db.session, aug, sep)  # +4.00 into September
        post_adjustments(db.session, jul, OCT)  # +3.00 into October
        adjustment = {line.adjusts_period: line for line in lines() if line.adjusts_period is not None}
        # billing September without finalizing leaves its adjustment open
        assert bill_period(db.session, sep).adjustments == 0
        assert not lines()[-1].finalized
        summary = bill_period(db.session, sep, finalize=True)
        assert summary.adjustments == 1 and "1 adjustment line(s) finalized with it" in summary.message
        db.session.expire_all()
        into_sep, into_oct = db.session.get(BillingReading, adjustment[aug].id), db.session.get(BillingReading,
                                                                                               adjustment[jul].id)
        ordinary = db.session.scalar(select(BillingReading).where(BillingReading.period_start == sep,
                                                                  BillingReading.adjusts_period.is_(None)))
        assert (into_sep.finalized, into_sep.final_cost, into_sep.finalized_at) == (True, D("4.00"),
                                                                                   ordinary.finalized_at)
        assert (into_oct.finalized, into_oct.finalized_at) == (False, None)
        (audit,) = db.session.execute(select(AuditLog.action, AuditLog.old_values, AuditLog.new_values).where(
            AuditLog.table == "billing_readings", AuditLog.record_id == str(into_sep.id),
            AuditLog.action == "update")).all()
        assert audit.old_values == {"finalized": False}
        assert audit.new_values == {"finalized": True, "finalized_at": ordinary.finalized_at.isoformat()}
        # finalizing September again finalizes nothing more and keeps the adjustment's moment
        again = bill_period(db.session, sep, finalize=True)
        assert again.adjustments == 0 and "adjustment" not in again.message
        db.session.expire_all()
        assert db.session.get(BillingReading, adjustment[aug].id).finalized_at == ordinary.finalized_at


def test_late_readings_start_at_the_period_start_and_after_the_finalizing_moment(app):
    with app.app_context():
        a = asset("vm-a")
        bucket("storage", "sum", [a])
        readings(a, [(OCT_TS.format(2), "1")], received_at=utcnow() - timedelta(days=20))
        db.session.commit()
        bill_period(db.session, OCT, finalize=True)
        (line,) = lines()
        # received at the finalizing moment itself: not after it, not late
        readings(a, [(OCT_TS.format(3), "1")], received_at=line.finalized_at)
        after = line.finalized_at + timedelta(microseconds=1)
        # the period's first instant counts; the instant before it (September) does not
        readings(a, [("2026-10-01T00:00:00+00:00", "1"), ("2026-09-30T23:59:59.999999+00:00", "1")],
                 received_at=after)
        db.session.commit()
        assert late_readings(db.session, [line.id]) == {line.id: 1}
        assert bill_period(db.session, OCT).late_readings == 1


def test_a_finalized_adjustment_line_counts_no_late_readings_of_its_own(app):
    from billing.adjustments import post_adjustments

    sep = NOV.replace(month=9)
    with app.app_context():
        a = asset("vm-a")
        bucket("storage", "sum", [a], commit="0", overage="1")
        readings(a, [("2026-09-02T12:00:00+00:00", "1")], received_at=utcnow() - timedelta(days=60))
        db.session.commit()
        bill_period(db.session, sep, finalize=True)
        readings(a, [("2026-09-03T12:00:00+00:00", "2")], received_at=utcnow() + timedelta(seconds=1))
        db.session.commit()
        post_adjustments(db.session, sep, OCT)
        bill_period(db.session, OCT, finalize=True)
        ordinary, adjustment = (db.session.scalar(select(BillingReading).where(
            BillingReading.period_start == OCT, which)) for which in (BillingReading.adjusts_period.is_(None),
                                                                     BillingReading.adjusts_period.is_not(None)))
        assert adjustment.finalized
        readings(a, [(OCT_TS.format(5), "7")], received_at=adjustment.finalized_at + timedelta(seconds=1))
        db.session.commit()
        # October's late reading is counted once, on its ordinary line, never on the adjustment posted into it
        assert late_readings(db.session, [ordinary.id, adjustment.id]) == {ordinary.id: 1}


def test_a_line_names_its_bucket_aggregation_and_unit_type(app):
    with app.app_context():
        a = asset("vm-a")
        readings(a, [(OCT_TS.format(2), "4")], unit=unit_type("vcpu"))
        bucket("compute", "max", [a], commit="4", unit=unit_type("vcpu"))
        db.session.commit()
        bill_period(db.session, OCT)
        (line,) = lines()
        header = {k: v for k, v in line.details.items() if k != "assets"}
        assert header == {"aggregation": "max", "unit_type": "vcpu", "bucket": "compute", "status": "at"}


def test_a_bucket_without_a_contract_term_stops_the_run_and_writes_nothing(app):
    from sqlalchemy import delete

    from models import BucketTerm

    with app.app_context():
        a = asset("vm-a")
        readings(a, [(OCT_TS.format(2), "4")])
        bucket("priced", "sum", [a], commit="1")
        bare = bucket("bare", "sum", [a])
        db.session.execute(delete(BucketTerm).where(BucketTerm.bucket_id == bare.id))
        db.session.commit()
        with pytest.raises(ValueError) as refused:
            bill_period(db.session, OCT)
        assert str(refused.value) == f"bucket {bare.id} (bare) has no contract term"
        db.session.rollback()
        assert lines() == []


def test_every_asset_of_a_bucket_over_5000_assets_is_named_on_its_line(app):
    from sqlalchemy import insert

    from ingest.store import NewReading, store_readings
    from models import Asset, bucket_assets

    with app.app_context():
        gb = unit_type()
        storage = bucket("storage", "sum", [], commit="0", overage="1")
        count = 5001  # the external ids are looked up 5,000 at a time
        db.session.execute(insert(Asset), [{"external_id": f"vm-{n:04d}", "source_type": "vm", "name": "",
                                            "acknowledged": True, "enabled": True, "client_id": storage.client_id}
                                           for n in range(count)])
        ids = list(db.session.scalars(select(Asset.id).order_by(Asset.id)))
        db.session.execute(insert(bucket_assets), [{"bucket_id": storage.id, "asset_id": i} for i in ids])
        store_readings(db.session, [NewReading(i, gb.id, OCT.replace(day=2), D(1)) for i in ids])
        db.session.commit()
        assert bill_period(db.session, OCT).total_cost == D("5001.00")
        (line,) = lines()
        assert [entry["external_id"] for entry in line.details["assets"]] == [f"vm-{n:04d}" for n in range(count)]


def test_a_run_reports_its_progress_in_order_and_its_summary_in_words(app):
    with app.app_context():
        a = asset("vm-a")
        readings(a, [(OCT_TS.format(2), "1234.5")], received_at=utcnow() - timedelta(days=20))
        bucket("storage", "sum", [a], commit="0", overage="1")
        bucket("peak", "max", [a], commit="2000", base="1")
        db.session.commit()
        calls: list[tuple[int, str]] = []
        summary = bill_period(db.session, OCT, progress=lambda percent, message: calls.append((percent, message)))
        assert calls[:2] == [(2, "Billing 2026-10: finding buckets"), (5, "Billing 2026-10: 2 bucket(s) to compute")]
        assert calls[-2:] == [(90, "Billing 2026-10: writing 2 line(s)"), (100, "Billing 2026-10: done")]
        # usage.py's steps (0% and 95%) are placed in 5..85%: 5 + 95 × 80 // 100 = 81
        assert calls[2:-2] == [(5, "Billing 2026-10: sum, max, avg and count"), (81, "Billing 2026-10: adding up")]
        assert all(type(percent) is int for percent, _ in calls)  # whole percents, as the job's progress column
        # storage 1234.50 + peak base 2000 × 1 = 2000.00
        assert summary.message == "2026-10: 2 bucket(s) billed, total $3,234.50."
        final = bill_period(db.session, OCT, finalize=True)
        assert final.message == "2026-10: 2 bucket(s) billed and finalized, total $3,234.50."
        readings(a, [(OCT_TS.format(3), "1")], received_at=utcnow() + timedelta(seconds=1))
        db.session.commit()
        again = bill_period(db.session, OCT)
        assert str(again.total_cost) == "0.00"  # a Decimal in cents even with no line
        assert again.message == ("2026-10: 0 bucket(s) billed, total $0.00; 2 finalized line(s) kept unchanged "
                                 "(2 late reading(s) not billed).")


def test_billing_a_period_leaves_the_open_lines_of_other_periods_alone(app):
    sep = NOV.replace(month=9)
    with app.app_context():
        a = asset("vm-a")
        readings(a, [("2026-09-02T12:00:00+00:00", "3"), (OCT_TS.format(2), "5")])
        bucket("storage", "sum", [a], commit="0", overage="1")
        db.session.commit()
        bill_period(db.session, sep)
        (september,) = lines()
        bill_period(db.session, OCT)
        bill_period(db.session, OCT)
        assert [(line.id, line.period_start, line.final_cost) for line in lines() if line.period_start == sep] == [
            (september.id, sep, D("3.00"))]
        assert [line.final_cost for line in lines() if line.period_start == OCT] == [D("5.00")]


def test_a_finalized_adjustment_does_not_stand_for_its_buckets_own_line(app):
    from billing.adjustments import post_adjustments

    sep = NOV.replace(month=9)
    with app.app_context():
        a = asset("vm-a")
        storage = bucket("storage", "sum", [a], commit="0", overage="1")
        readings(a, [("2026-09-02T12:00:00+00:00", "1"), (OCT_TS.format(2), "6")],
                 received_at=utcnow() - timedelta(days=60))
        db.session.commit()
        bill_period(db.session, sep, finalize=True)
        readings(a, [("2026-09-03T12:00:00+00:00", "2")], received_at=utcnow() + timedelta(seconds=1))
        db.session.commit()
        post_adjustments(db.session, sep, OCT)
        # October is finalized while the bucket is disabled: only its adjustment (+2.00) is finalized
        storage.enabled = False
        db.session.commit()
        assert bill_period(db.session, OCT, finalize=True).adjustments == 1
        storage.enabled = True
        db.session.commit()
        summary = bill_period(db.session, OCT)
        # September's late reading belongs to September's line: October's run reports none
        assert (summary.lines, summary.kept_finalized, summary.total_cost, summary.late_readings) == (
            1, 0, D("6.00"), 0)
        assert sorted((line.adjusts_period is None, line.finalized, line.final_cost)
                      for line in lines() if line.period_start == OCT) == [(False, True, D("2.00")),
                                                                           (True, False, D("6.00"))]


def test_billing_is_allowed_from_a_periods_start_and_finalizing_after_its_end():
    from datetime import datetime, timezone

    from billing.run import check_billable

    now = datetime(2026, 12, 15, tzinfo=timezone.utc)
    dec, jan = NOV.replace(month=12), NOV.replace(year=2027, month=1)
    check_billable(dec, now=now)  # the open month may be billed
    check_billable(NOV, finalize=True, now=now)  # the month before may be finalized
    with pytest.raises(ValueError) as future:
        check_billable(jan, now=now)
    assert str(future.value) == "2027-01 is in the future; only started periods can be billed"
    with pytest.raises(ValueError) as open_month:
        check_billable(dec, finalize=True, now=now)
    assert str(open_month.value) == ("2026-12 has not ended yet; it can be billed now but finalized only once it "
                                     "is over")


def test_a_line_is_calculated_and_finalized_at_one_moment(app):
    with app.app_context():
        a = asset("vm-a")
        readings(a, [(OCT_TS.format(2), "1")])
        bucket("storage", "sum", [a])
        db.session.commit()
        before = utcnow()
        bill_period(db.session, OCT, finalize=True)
        (line,) = lines()
        assert line.calculated_at == line.finalized_at and before <= line.calculated_at <= utcnow()


def test_late_readings_are_counted_for_every_line_of_a_period_over_2000_lines(app):
    from sqlalchemy import insert

    from models import Bucket, BucketTerm, bucket_assets

    with app.app_context():
        a = asset("vm-a")
        readings(a, [(OCT_TS.format(2), "1")], received_at=utcnow() - timedelta(days=20))
        first = bucket("bucket-0000", "sum", [a])
        count = 2001  # lines are counted 1,000 at a time: three chunks, the last of one line
        db.session.execute(insert(Bucket), [{"client_id": first.client_id, "name": f"bucket-{n:04d}",
                                             "unit_type_id": first.unit_type_id, "source_type": "vm",
                                             "aggregation": "sum"} for n in range(1, count)])
        ids = list(db.session.scalars(select(Bucket.id).where(Bucket.id != first.id)))
        db.session.execute(insert(bucket_assets), [{"bucket_id": i, "asset_id": a.id} for i in ids])
        db.session.execute(insert(BucketTerm), [{"bucket_id": i, "effective_from": OCT} for i in ids])
        db.session.commit()
        assert bill_period(db.session, OCT, finalize=True).lines == count
        finalized_at = lines()[0].finalized_at
        readings(a, [(OCT_TS.format(3), "1")], received_at=finalized_at + timedelta(seconds=1))
        db.session.commit()
        line_ids = [line.id for line in lines()]
        assert late_readings(db.session, line_ids) == {line_id: 1 for line_id in line_ids}
        assert bill_period(db.session, OCT).late_readings == count

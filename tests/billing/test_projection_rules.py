"""Projection rules the first tests left open: ties at the sixth place, a projection exactly at commit, and what a
run's summary and progress say."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import func, insert, select

from billing.projections import CHUNK, ProjectionSummary, project_usage, run_projections
from extensions import db
from models import Bucket, BucketTerm, Projection
from tests.factories import DEC, NOV, asset, bucket, client, readings, unit_type

D = Decimal
MID_NOV = datetime(2026, 11, 16, tzinfo=timezone.utc)


def test_a_projection_on_a_tie_rounds_half_up_not_half_even():
    # 0.000001 after 12 of 30 days -> x 720/288 = x 2.5 -> 0.0000025: half-up 0.000003 (half-even would say ...2)
    assert project_usage(D("0.000001"), "sum", NOV, DEC, NOV + timedelta(days=12)) == D("0.000003")
    # in the first hour and for other aggregations the usage itself is kept, rounded the same way
    assert project_usage(D("0.0000025"), "sum", NOV, DEC, NOV + timedelta(minutes=30)) == D("0.000003")
    assert project_usage(D("0.0000025"), "max", NOV, DEC, MID_NOV) == D("0.000003")


def test_after_the_period_ends_a_projection_is_the_usage_itself():
    assert project_usage(D("45"), "sum", NOV, DEC, DEC + timedelta(days=3)) == D("45")


def many_buckets(count: int) -> None:
    """`count` enabled `sum` buckets with no assets (usage 0) and their first term (commit 0), each table in one
    statement (the ORM's flush, with its audit rows, takes seconds per thousand)."""
    owner, unit = client(), unit_type()
    db.session.execute(insert(Bucket), [{"client_id": owner.id, "name": f"b{i}", "unit_type_id": unit.id,
                                         "source_type": "vm", "aggregation": "sum"} for i in range(count)])
    db.session.execute(insert(BucketTerm), [{"bucket_id": bucket_id, "effective_from": NOV} for bucket_id in
                                            db.session.scalars(select(Bucket.id))])


def provider() -> dict[str, int]:
    """`at`: sum, U=45 by mid-November (projects to 90) with commit 90; `over`: the same with commit 89.999999."""
    a, b = asset("a"), asset("b")
    readings(a, [("2026-11-02T00:00:00+00:00", "40"), ("2026-11-16T00:00:00+00:00", "5")])  # the last at `now`
    readings(b, [("2026-11-03T00:00:00+00:00", "45")])
    at = bucket("at", "sum", [a], commit="90", base="1", overage="2")
    over = bucket("over", "sum", [b], commit="89.999999", base="1", overage="2")
    db.session.commit()
    return {"at": at.id, "over": over.id}


def test_a_projection_exactly_at_commit_is_not_over_commit(app):
    with app.app_context():
        ids = provider()
        summary = run_projections(db.session, now=MID_NOV)
        rows = {p.bucket_id: p for p in db.session.scalars(select(Projection))}
    assert rows[ids["at"]].projected_usage == D(90) and rows[ids["at"]].pct_of_commit == D("100.00")
    assert rows[ids["over"]].projected_usage == D(90)
    assert summary == ProjectionSummary(NOV, MID_NOV, buckets=2, removed=0, over_commit=1)


def test_the_summary_counts_the_stale_projections_it_removed_and_when_it_ran(app):
    with app.app_context():
        ids = provider()
        run_projections(db.session, now=MID_NOV)
        db.session.get(Bucket, ids["over"]).enabled = False
        db.session.commit()
        later = MID_NOV + timedelta(hours=1)
        summary = run_projections(db.session, now=later)
        stored = db.session.execute(select(Projection.bucket_id, Projection.calculated_at)).all()
    assert (summary.period_start, summary.calculated_at) == (NOV, later)
    assert (summary.buckets, summary.removed, summary.over_commit) == (1, 1, 0)
    assert [(bucket_id, calculated_at.replace(tzinfo=timezone.utc)) for bucket_id, calculated_at in stored] == [
        (ids["at"], later)]
    assert summary.message() == "Projected 1 buckets for 2026-11 (0 over commit, 1 stale removed)."


def test_a_run_reports_reading_usage_then_each_chunk(app):
    with app.app_context():
        provider()
        seen: list[tuple[int, str]] = []
        run_projections(db.session, now=MID_NOV, progress=lambda percent, message: seen.append((percent, message)))
    # 10 + 85·2//2 = 95 after the one chunk of 2 buckets
    assert seen == [(5, "Reading usage"), (95, "Projected 2 of 2 buckets")]


def test_elapsed_time_counts_to_the_microsecond():
    # 1,000,000 · 2,592,000,000,000 µs / 1,296,000,500,000 µs (15 days and half a second) = 1999999.2283950...
    later = NOV + timedelta(days=15, microseconds=500000)
    assert project_usage(D(1000000), "sum", NOV, DEC, later) == D("1999999.228395")


def test_a_reading_one_microsecond_after_now_is_not_yet_usage(app):
    with app.app_context():
        a = asset("a")
        readings(a, [("2026-11-02T00:00:00+00:00", "40"),
                     ("2026-11-16T00:00:00+00:00", "5"),           # exactly at `now`: counted
                     ("2026-11-16T00:00:00.000001+00:00", "1000")])  # 1 µs later: not yet
        target = bucket("sum", "sum", [a], commit="100")
        db.session.commit()
        run_projections(db.session, now=MID_NOV)
        row = db.session.scalars(select(Projection).where(Projection.bucket_id == target.id)).one()
    # U = 45 by mid-November -> 90 projected
    assert (row.current_usage, row.projected_usage) == (D(45), D(90))


def test_one_bucket_reports_its_one_chunk_as_95_percent(app):
    with app.app_context():
        bucket("only", "sum", [asset("a")])
        db.session.commit()
        seen: list[tuple[int, str]] = []
        run_projections(db.session, now=MID_NOV, progress=lambda percent, message: seen.append((percent, message)))
    # 10 + 85·1//1 = 95
    assert seen == [(5, "Reading usage"), (95, "Projected 1 of 1 buckets")]


def test_more_buckets_than_a_chunk_report_whole_percents_per_chunk(app):
    with app.app_context():
        many_buckets(CHUNK + 1)
        db.session.commit()
        seen: list[tuple[int, str]] = []
        summary = run_projections(db.session, now=MID_NOV,
                                  progress=lambda percent, message: seen.append((percent, message)))
        stored = db.session.scalar(select(func.count()).select_from(Projection))
    # 10 + 85·1000//1001 = 10 + 84 (84.915… floored: a whole percent), then 10 + 85·1001//1001 = 95
    assert seen == [(5, "Reading usage"), (94, "Projected 1000 of 1001 buckets"), (95, "Projected 1001 of 1001 buckets")]
    assert all(type(percent) is int for percent, _ in seen)
    assert (summary.buckets, stored) == (CHUNK + 1, CHUNK + 1)

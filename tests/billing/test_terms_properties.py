"""The SQL billing, late differences and adjustment lines held to the slow reference (tests/reference.py) on random
data: random term changes, late readings in waves after finalizing, adjustments posted, re-posted, finalized, more
late readings, adjusted again. After every post, what bills the period equals its recomputation, figure by figure."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from billing.adjustments import late_differences, post_adjustments
from billing.periods import current_period_start, next_period, period_bounds, previous_period
from tests.reference import LATE_FIGURES, reference_billed, reference_figures
from billing.run import bill_period
from billing.terms import set_term
from extensions import db
from models import BillingReading, utcnow
from tests.factories import asset, bucket, client, readings
from tests.conftest import empty_tables

D = Decimal
AGGS = ["sum", "max", "avg", "last", "p95", "count"]
CURRENT = current_period_start()
Q = previous_period(CURRENT)           # the open period adjustments go into first
P = previous_period(Q)                 # the finalized period that gets late readings
EARLIEST = P - timedelta(days=200)

money = st.decimals(min_value=0, max_value=D("99.999"), places=3, allow_nan=False, allow_infinity=False)
amount = st.decimals(min_value=0, max_value=D("500"), places=2, allow_nan=False, allow_infinity=False)
values = st.decimals(min_value=0, max_value=D("999.999999"), places=6, allow_nan=False, allow_infinity=False)
buckets = st.lists(st.tuples(st.sampled_from(AGGS), st.sets(st.integers(0, 2), min_size=1, max_size=3),
                             amount, money, money), min_size=1, max_size=3)
# term changes: (bucket index, months after the first term, commit, base, overage)
term_changes = st.lists(st.tuples(st.integers(0, 2), st.integers(1, 8), amount, money, money), max_size=4)
# a wave: readings (asset, hour of the period, value) then what is done: post into Q, post twice, or finalize Q too
burst = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 27 * 24), values), min_size=0, max_size=6)
waves = st.lists(st.tuples(burst, st.sampled_from(["post", "repost", "post-finalize", "nothing"])),
                 min_size=1, max_size=4)


def month_after(start: datetime, months: int) -> datetime:
    for _ in range(months):
        start = next_period(start)
    return start


def store(assets, rows) -> None:
    for index, hour, value in rows:
        readings(assets[index], [((P + timedelta(hours=hour, seconds=index)).isoformat(), str(value))],
                 received_at=utcnow())
    db.session.commit()


def sql_lines(start: datetime) -> dict[int, BillingReading]:
    return {line.bucket_id: line for line in db.session.scalars(sa.select(BillingReading).where(
        BillingReading.period_start == start, BillingReading.adjusts_period.is_(None)))}


def assert_billed_equals_recomputed(finalized_only: bool) -> None:
    recomputed = reference_figures(db.session, *period_bounds(P), list(sql_lines(P)))
    billed = reference_billed(db.session, P, finalized_only=finalized_only)
    assert set(billed) == set(recomputed)
    for bucket_id, figures in recomputed.items():
        assert {name: billed[bucket_id][name] for name in LATE_FIGURES} == {name: figures[name] for name in LATE_FIGURES}


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(made=buckets, changes=term_changes, first=burst, later=waves)
def test_billing_and_adjustments_hold_to_the_reference(app, made, changes, first, later):
    with app.app_context():
        empty_tables()
        owner = client()
        assets = [asset(f"a{i}", owner) for i in range(3)]
        ids = [bucket(f"b{i}", agg, [assets[a] for a in sorted(bound)], commit=str(commit), base=str(base),
                      overage=str(over), owner=owner, created_at=EARLIEST).id
               for i, (agg, bound, commit, base, over) in enumerate(made)]
        for index, months, commit, base, over in changes:
            if index < len(ids):
                set_term(db.session, ids[index], month_after(EARLIEST, months), commit, base, over)
        db.session.commit()
        store(assets, first)
        bill_period(db.session, P, finalize=True)
        reference = reference_figures(db.session, *period_bounds(P))
        for bucket_id, line in sql_lines(P).items():
            assert {name: getattr(line, name) for name in reference[bucket_id]} == reference[bucket_id]
        into, q_finalized = Q, False
        for rows, action in later:
            store(assets, rows)
            expected = {bucket_id: {name: figures[name] - reference_billed(db.session, P)[bucket_id][name]
                                    for name in LATE_FIGURES}
                        for bucket_id, figures in reference_figures(db.session, *period_bounds(P), ids).items()}
            for diff in late_differences(db.session, P):
                assert {name: getattr(diff.difference, name) for name in LATE_FIGURES} == expected[diff.bucket_id]
            if action == "nothing":
                continue
            post_adjustments(db.session, P, into)
            if action == "repost":
                post_adjustments(db.session, P, into)
            assert_billed_equals_recomputed(finalized_only=False)
            if action == "post-finalize" and not q_finalized:
                bill_period(db.session, Q, finalize=True)
                q_finalized, into = True, CURRENT
                assert_billed_equals_recomputed(finalized_only=True)
                assert all(line.finalized for line in db.session.scalars(
                    sa.select(BillingReading).where(BillingReading.period_start == Q)))

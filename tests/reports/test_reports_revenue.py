"""Dashboard reports on the hand-computed provider of tests/reportdata.py."""
from decimal import Decimal

from extensions import db
from reports import revenue
from reports.common import last_billed_period, trailing_periods
from tests.reportdata import NOV, NOW, OCT, SEP


def test_last_period_is_the_latest_billed_before_this_one(ids):
    # November has an unfinalized run, but "last period" is the latest *before* this period: October.
    assert last_billed_period(db.session, NOW) == OCT


def test_projected_rev_sums_this_periods_projected_cost(ids):
    assert revenue.projected_revenue(db.session, NOW) == Decimal("470.00")


def test_mom_rev_compares_projected_rev_with_last_periods_final_cost(ids):
    mom = revenue.mom_revenue(db.session, NOW)
    assert (mom.projected, mom.last_final, mom.last_period) == (Decimal("470.00"), Decimal("340.00"), OCT)
    assert mom.change_pct == Decimal("38.24")  # (470 - 340) / 340 = 38.235…%


def test_mom_rev_is_empty_without_a_billed_period(app):
    with app.app_context():
        mom = revenue.mom_revenue(db.session, NOW)
    assert mom.change_pct is None and mom.projected == Decimal("0.00")


def test_revenue_by_period_covers_12_periods_ending_last_period(ids):
    points = revenue.revenue_by_period(db.session, NOW)
    assert [p for p, _ in points] == trailing_periods(OCT, 12)
    assert points[0][0].strftime("%Y-%m") == "2025-11"
    totals = dict(points)
    assert totals[OCT] == Decimal("340.00") and totals[SEP] == Decimal("190.00")
    assert sum(totals.values()) == Decimal("530.00")


def test_avg_revenue_per_client_divides_by_clients_billed(ids):
    averages = dict(revenue.avg_revenue_per_client(db.session, NOW))
    assert averages[OCT] == Decimal("113.33")  # 340 / 3 clients
    assert averages[SEP] == Decimal("95.00")  # 190 / 2 clients
    assert list(averages.values()).count(None) == 10


def test_top_clients_with_share_of_projected_rev(ids):
    rows = revenue.top_clients(db.session, NOW)
    assert [(r.client, r.projected, r.share_pct) for r in rows] == [
        ("Acme", Decimal("350.00"), Decimal("74.47")),
        ("Globex", Decimal("70.00"), Decimal("14.89")),
        ("Initech", Decimal("50.00"), Decimal("10.64")),
    ]


def test_new_overages_skip_buckets_that_were_already_over(ids):
    rows = revenue.new_overages(db.session, NOW)
    # Acme VMs is projected over but was over in October: not new. Initech Storage is projected under.
    assert [(r.client, r.bucket, r.pct_of_commit) for r in rows] == [
        ("Acme", "Acme Storage", Decimal("125.00")),
        ("Globex", "Globex VMs", Decimal("120.00")),
    ]


def test_new_overage_counts_a_bucket_without_last_period_line(ids):
    from models import Bucket
    from tests.reportdata import add_projection

    bucket = db.session.get(Bucket, ids["initech_vm"])  # commit 10, no October line
    add_projection(bucket, NOV, "12", "15")
    db.session.commit()
    assert ("Initech VMs", Decimal("150.00")) in [(r.bucket, r.pct_of_commit) for r in revenue.new_overages(db.session, NOW)]


def test_client_status_counts_in_last_period(ids):
    assert revenue.client_status_counts(db.session, NOW) == {"over": 0, "under": 1, "mixed": 1, "at": 1}


def test_revenue_by_source_type_last_period(ids):
    assert revenue.revenue_by_source_type(db.session, NOW) == [
        ("vcenter", Decimal("190.00")),  # Acme VMs 140 + Globex VMs 50
        ("netapp", Decimal("150.00")),  # Acme Storage 100 + Initech Storage 50
    ]


def test_every_dashboard_report_is_empty_without_data(app):
    with app.app_context():
        assert revenue.revenue_by_period(db.session, NOW) == []
        assert revenue.avg_revenue_per_client(db.session, NOW) == []
        assert revenue.top_clients(db.session, NOW) == []
        assert revenue.new_overages(db.session, NOW) == []
        assert revenue.client_status_counts(db.session, NOW) == {}
        assert revenue.revenue_by_source_type(db.session, NOW) == []

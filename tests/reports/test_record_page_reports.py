"""reports/unbound.py, reports/bucket_page.py and reports/client_page.py with the numbers worked out."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from billing.periods import current_period_start, previous_period
from extensions import db
from models import UnitType
from reports.bucket_page import bound_assets, projection
from reports.client_page import client_assets, client_history, client_issues
from reports.unbound import unbound_usage
from tests import factories as f
from tests.reportdata import add_line

NOW = datetime.now(timezone.utc)
START = current_period_start(NOW)


def ts(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


def unit(name: str, aggregation: str, overage: str = "1", base: str = "0.5") -> UnitType:
    row = UnitType(name=name, aggregation=aggregation, base_price=Decimal(base), overage_price=Decimal(overage))
    db.session.add(row)
    db.session.flush()
    return row


def test_unbound_usage_follows_each_unit_types_aggregation_and_prices_it_at_commit_0(app):
    """Readings 5, 1, 3, 20 (in that time order; one of last month not counted):
    sum 29 × $0.045 = $1.305 -> $1.31; max 20; avg 29/4 = 7.25; last 20; count 1;
    p95 nearest rank ceil(0.95·4) = 4 of [1, 3, 5, 20] = 20."""
    with app.app_context():
        acme = f.client("Acme")
        asset = f.asset("a-1", acme)
        units = {agg: unit(f"u-{agg}", agg, overage="0.045" if agg == "sum" else "2")
                 for agg in ("sum", "max", "avg", "last", "count", "p95")}
        for row in units.values():
            f.readings(asset, [(ts(0), "5"), (ts(1), "1"), (ts(2), "3"), (ts(3), "20"),
                               ((START - timedelta(days=2)).isoformat(), "1000")], row)
        db.session.commit()
        found = {item.aggregation: item for item in unbound_usage(db.session, [asset.id], NOW)[asset.id]}
    assert {agg: item.usage for agg, item in found.items()} == {
        "sum": Decimal("29"), "max": Decimal("20"), "avg": Decimal("7.25"), "last": Decimal("20"),
        "count": Decimal("1"), "p95": Decimal("20")}
    assert found["sum"].cost == Decimal("1.31") and found["avg"].cost == Decimal("14.50")
    assert found["sum"].unit_type == "u-sum"


def test_bound_unit_types_are_not_unbound(app):
    with app.app_context():
        acme = f.client("Acme")
        asset = f.asset("a-1", acme)
        gb, vm = unit("gb", "sum"), unit("vm", "sum")
        f.readings(asset, [(ts(0), "5")], gb)
        f.readings(asset, [(ts(0), "7")], vm)
        f.bucket("GB", owner=acme, unit=gb, assets=[asset])
        db.session.commit()
        found = unbound_usage(db.session, [asset.id], NOW)[asset.id]
        issues = client_issues(db.session, acme.id, NOW)
    assert [(i.unit_type, i.usage, i.cost) for i in found] == [("vm", Decimal("7"), Decimal("7.00"))]
    assert issues.unbound_count == 1 and [u.unit_type for u in issues.unbound] == ["vm"] and issues.new_count == 0


def test_bound_assets_carry_their_usage_and_the_projection_its_cost(app):
    """Two bound assets, sum: 4 + 6 = 10 so far; a disabled one is bound but not counted. At the period's midpoint a
    sum projects to 20; commit 15, base $1, overage $2: 15 + 5×2 = $25, 133.33% of commit."""
    with app.app_context():
        acme = f.client("Acme")
        gb = unit("gb", "sum")
        a, b, c = f.asset("a", acme), f.asset("b", acme), f.asset("c", acme, enabled=False)
        for asset, value in ((a, "4"), (b, "6"), (c, "100")):
            f.readings(asset, [(ts(0), value)], gb)
        bucket = f.bucket("GB", owner=acme, unit=gb, assets=[a, b, c], commit="15", base="1", overage="2")
        db.session.commit()
        shown, count, usage = bound_assets(db.session, bucket.id, NOW)
        middle = START + (current_period_start(START + timedelta(days=40)) - START) / 2
        ahead = projection(bucket, usage, middle)
    assert [(x.external_id, x.usage) for x in shown] == [("a", Decimal("4")), ("b", Decimal("6")), ("c", None)]
    assert count == 3 and usage == Decimal("10")
    assert ahead.projected_usage == Decimal("20") and ahead.cost.final_cost == Decimal("25.00")
    assert ahead.pct_of_commit == Decimal("133.33") and ahead.status == "over"


def test_client_history_and_assets(app):
    """Last period: lines 140 (finalized) and 100 -> 240; this period: 100 (open)."""
    with app.app_context():
        acme = f.client("Acme")
        vm = f.bucket("VMs", owner=acme, commit="100", base="1", overage="2")
        st = f.bucket("Storage", owner=acme, commit="200", base="0.5", overage="1")
        add_line(vm, previous_period(START), "120").finalized = True
        add_line(st, previous_period(START), "150").finalized = False
        add_line(vm, START, "10")
        bound = f.asset("z-2", acme)
        bound.buckets.append(vm)
        f.asset("a-1", acme)
        db.session.commit()
        history = client_history(db.session, acme.id)
        assets, total = client_assets(db.session, acme.id)
    assert [(h.lines, h.finalized, h.final_cost, h.overage, h.buffer) for h in history] == [
        (1, False, Decimal("100.00"), Decimal("0.00"), Decimal("90.00")),
        (2, False, Decimal("240.00"), Decimal("40.00"), Decimal("25.00"))]
    assert [(a.external_id, a.buckets) for a in assets] == [("a-1", 0), ("z-2", 1)] and total == 2


def test_the_bucket_page_shows_the_stored_projection_when_there_is_one(app):
    """The stored projection (current 75 -> projected 150, commit 100, base $1, overage $2: 100 + 50×2 = $200) wins
    over the page's own computation, so the client page, Projections and the bucket page agree."""
    from reports.bucket_page import current_projection
    from tests.reportdata import add_projection

    with app.app_context():
        bucket = f.bucket("VMs", owner=f.client("Acme"), commit="100", base="1", overage="2")
        live = current_projection(db.session, bucket, Decimal("0"), NOW)
        add_projection(bucket, START, "75", "150")
        db.session.commit()
        stored = current_projection(db.session, bucket, Decimal("0"), NOW)
    assert live.calculated_at is None and live.cost.final_cost == Decimal("100.00")
    assert (stored.current_usage, stored.projected_usage, stored.cost.final_cost) == (
        Decimal("75"), Decimal("150"), Decimal("200.00"))
    assert stored.calculated_at is not None and stored.status == "over"


def test_unbound_time_weighted_usage_is_unit_hours(app):
    """A time_weighted unit (max gap 60 min): 10 at 00:00 and 20 at 00:30 this month -> 10 × 0.5 h (until the next
    reading) + 20 × 1 h (until 01:30, the max gap) = 25 unit·hours; × $2 overage = $50.00."""
    with app.app_context():
        asset = f.asset("a-1", f.client("Acme"))
        gbh = unit("gb-hours", "time_weighted", overage="2")
        f.readings(asset, [(ts(0), "10"), (ts(30), "20")], gbh)
        db.session.commit()
        [found] = unbound_usage(db.session, [asset.id], START + timedelta(hours=2))[asset.id]
    assert (found.aggregation, found.usage, found.cost) == ("time_weighted", Decimal("25"), Decimal("50.00"))

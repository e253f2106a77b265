"""Over/Under reports on the hand-computed provider of tests/reportdata.py (October 2026)."""
from decimal import Decimal

import pytest

from extensions import db
from reports import over_under
from tests.reportdata import OCT, SEP


def test_trend_sums_overage_and_buffer_per_period(ids):
    points = {p.period: (p.overage, p.buffer) for p in over_under.trend(db.session, OCT)}
    assert len(points) == 12
    assert points[OCT] == (Decimal("40.00"), Decimal("45.00"))
    assert points[SEP] == (Decimal("40.00"), Decimal("0.00"))


def test_client_lines_total_each_client(ids):
    rows = {r.client: r for r in over_under.client_lines(db.session, OCT)}
    acme = rows["Acme"]
    assert (acme.status, acme.unit_types) == ("mixed", ["storage-gb", "vm-hours"])
    assert (acme.final_cost, acme.committed, acme.overage, acme.buffer) == (
        Decimal("240.00"), Decimal("200.00"), Decimal("40.00"), Decimal("25.00"))
    assert acme.vs_commit == Decimal("120.00")  # 100 · 240 / 200
    assert acme.pct_unused == Decimal("12.50")  # 100 · 25 / 200
    assert (rows["Globex"].status, rows["Globex"].vs_commit, rows["Globex"].pct_unused) == (
        "under", Decimal("100.00"), Decimal("40.00"))
    assert rows["Initech"].status == "at"


@pytest.mark.parametrize("status, clients", [
    ("all", ["Acme", "Globex", "Initech"]), ("over", []), ("under", ["Globex"]), ("mixed", ["Acme"]),
])
def test_status_filter(ids, status, clients):
    assert [r.client for r in over_under.client_lines(db.session, OCT, status)] == clients


def test_unknown_status_is_refused(ids):
    with pytest.raises(ValueError):
        over_under.client_lines(db.session, OCT, "sideways")


def test_right_size_candidates_by_buffer_largest_first(ids):
    rows = over_under.right_size_candidates(db.session, OCT)
    assert [(r.client, r.buffer, r.pct_unused) for r in rows] == [
        ("Acme", Decimal("25.00"), Decimal("12.50")), ("Globex", Decimal("20.00"), Decimal("40.00"))]
    assert rows[0].buffer_units == {"storage-gb": Decimal("50.000000"), "vm-hours": Decimal("0.000000")}
    assert over_under.total_buffer(db.session, OCT) == Decimal("45.00")


def test_right_size_candidates_of_one_unit_type(ids):
    rows = over_under.right_size_candidates(db.session, OCT, ids["vm"])
    # Acme's VMs were over (no buffer): only Globex's 20 unused VM hours remain.
    assert [(r.client, r.buffer, r.buffer_units) for r in rows] == [
        ("Globex", Decimal("20.00"), {"vm-hours": Decimal("20.000000")})]
    assert rows[0].committed == Decimal("50.00")
    assert over_under.total_buffer(db.session, OCT, ids["vm"]) == Decimal("20.00")


def test_by_unit_type_lenses(ids):
    rows = [(r.unit_type, r.delta_units, r.overage, r.buffer) for r in over_under.by_unit_type(db.session, OCT)]
    assert rows == [
        ("storage-gb", Decimal("-50.000000"), Decimal("0.00"), Decimal("25.00")),  # (150-200) + (100-100)
        ("vm-hours", Decimal("0.000000"), Decimal("40.00"), Decimal("20.00")),  # (120-100) + (30-50)
    ]
    assert [name for _, name in over_under.billed_unit_types(db.session, OCT)] == ["storage-gb", "vm-hours"]


def test_a_period_without_lines_is_empty(ids):
    from tests.reportdata import NOV
    from billing.periods import next_period

    later = next_period(NOV)
    assert over_under.client_lines(db.session, later) == []
    assert over_under.by_unit_type(db.session, later) == []
    assert over_under.total_buffer(db.session, later) == Decimal("0.00")
    assert over_under.trend(db.session, None) == []

"""True-ups: the suggested commit is ceil(max usage) of the last 3 billed periods; applying it bills the next period."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa

from billing.run import bill_period
from billing.terms import bucket_terms
from billing.trueups import apply_true_ups, true_ups
from extensions import db
from models import AuditLog, BillingReading
from tests.factories import asset, bucket, client, readings, unit_type

D = Decimal
MID_SEPTEMBER = datetime(2026, 9, 15, tzinfo=timezone.utc)  # "now" of the true-up: current period 2026-09
OCT = datetime(2026, 10, 1, tzinfo=timezone.utc)


def storage_billed_may_to_august():
    """'Storage' (sum, commit 100 at $2.00, overage $3.00) billed May 90, June 120, July 130.2, August 110; 'Mail'
    (max, commit 50 at $1.00) billed 12 in June..August; 'Exact' billed exactly its commit 10 (not listed)."""
    acme = client("Acme")
    disk, box, exact = asset("disk-1", acme), asset("mbx-1", acme), asset("e-1", acme)
    gb = unit_type("gb")
    storage = bucket("Storage", "sum", [disk], commit="100", base="2.00", overage="3.00", owner=acme, unit=gb,
                     created_at=datetime(2026, 1, 2, tzinfo=timezone.utc))
    mail = bucket("Mail", "max", [box], commit="50", base="1.00", overage="1.50", owner=acme, unit=gb,
                  created_at=datetime(2026, 1, 2, tzinfo=timezone.utc))
    bucket("Exact", "max", [exact], commit="10", base="1", overage="1", owner=acme, unit=gb)
    for month, usage in ((5, "90"), (6, "120"), (7, "130.2"), (8, "110"), (10, "131")):
        readings(disk, [(f"2026-{month:02d}-03T00:00:00+00:00", usage)], unit=gb)
        readings(box, [(f"2026-{month:02d}-03T00:00:00+00:00", "12")], unit=gb)
        readings(exact, [(f"2026-{month:02d}-03T00:00:00+00:00", "10")], unit=gb)
    db.session.commit()
    for month in (5, 6, 7, 8):
        bill_period(db.session, datetime(2026, month, 1, tzinfo=timezone.utc))
    return storage, mail


def test_suggestions_follow_the_last_three_billed_periods(app):
    with app.app_context():
        storage, mail = storage_billed_may_to_august()
        items = {item.bucket: item for item in true_ups(db.session, now=MID_SEPTEMBER)}
        assert set(items) == {"Storage", "Mail"}
        up = items["Storage"]
        # June 120, July 130.2, August 110 (May is a 4th period): ceil(130.2) = 131
        assert up.usage_by_period == {"2026-06": D(120), "2026-07": D("130.2"), "2026-08": D(110)}
        assert (up.current_commit, up.suggested_commit, up.direction) == (D(100), D(131), "up")
        # at August's 110: under 100 -> 200.00 + 10 × 3.00 = 230.00; under 131 -> 262.00 + 0 = 262.00; +32.00
        assert up.monthly_effect == D("32.00")
        down = items["Mail"]
        # max 12: ceil 12; at 12: under 50 -> 50.00; under 12 -> 12.00: -38.00
        assert (down.suggested_commit, down.direction, down.monthly_effect) == (D(12), "down", D("-38.00"))
        assert [i.bucket for i in true_ups(db.session, direction="down", now=MID_SEPTEMBER)] == ["Mail"]


def test_a_true_up_applied_and_the_next_period_billed_at_the_new_commit(app):
    with app.app_context():
        storage, _ = storage_billed_may_to_august()
        assert apply_true_ups(db.session, [storage.id], "staff@example.com", now=MID_SEPTEMBER) == 1
        terms = bucket_terms(db.session, storage.id)
        assert [(t.effective_from, t.commit, t.base_price, t.overage_price) for t in terms][-1] == (
            OCT, D(131), D(2), D(3))
        assert terms[-1].created_by == "staff@example.com" and "max usage of 2026-06 120" in terms[-1].note
        [item] = [i for i in true_ups(db.session, now=MID_SEPTEMBER) if i.bucket == "Storage"]
        assert item.applied_from == "2026-10"
        assert apply_true_ups(db.session, [storage.id], "staff@example.com", now=MID_SEPTEMBER) == 0
        bill_period(db.session, OCT)
        october = db.session.scalar(sa.select(BillingReading).where(
            BillingReading.bucket_id == storage.id, BillingReading.period_start == OCT))
        # October 131 at the new commit 131: base 131 × 2.00 = 262.00, no overage, no buffer
        assert (october.commit, october.base_cost, october.overage_cost, october.buffer_cost, october.final_cost) == (
            D(131), D("262.00"), D("0.00"), D("0.00"), D("262.00"))
        august = db.session.scalar(sa.select(BillingReading).where(
            BillingReading.bucket_id == storage.id, BillingReading.period_start == datetime(2026, 8, 1,
                                                                                              tzinfo=timezone.utc)))
        assert august.commit == D(100)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditLog).where(
            AuditLog.table == "bucket_terms", AuditLog.action == "create")) == 4  # 3 first terms + the true-up

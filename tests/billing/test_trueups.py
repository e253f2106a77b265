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


SEP = datetime(2026, 9, 1, tzinfo=timezone.utc)
JUN, JUL, AUG = (datetime(2026, m, 1, tzinfo=timezone.utc) for m in (6, 7, 8))


def test_a_direction_outside_all_up_down_is_refused(app):
    import pytest

    with app.app_context():
        with pytest.raises(ValueError, match="^direction must be one of all, up, down$"):
            true_ups(db.session, direction="sideways", now=MID_SEPTEMBER)


def test_the_current_period_and_disabled_buckets_are_left_out(app):
    with app.app_context():
        storage, mail = storage_billed_may_to_august()
        disk = storage.assets[0]
        readings(disk, [("2026-09-03T00:00:00+00:00", "150")], unit=unit_type("gb"))
        db.session.commit()
        bill_period(db.session, SEP)  # September is the current period at MID_SEPTEMBER: not a billed period yet
        [_, item] = true_ups(db.session, now=MID_SEPTEMBER)  # Mail, Storage
        assert (item.bucket, item.suggested_commit) == ("Storage", D(131))
        assert item.usage_by_period == {"2026-06": D(120), "2026-07": D("130.2"), "2026-08": D(110)}
        mail.enabled = False
        db.session.commit()
        assert [i.bucket for i in true_ups(db.session, now=MID_SEPTEMBER)] == ["Storage"]


def test_adjustment_lines_are_not_billed_periods_of_their_own(app):
    from billing.adjustments import post_adjustments
    from models import utcnow

    with app.app_context():
        storage, _ = storage_billed_may_to_august()
        bill_period(db.session, JUN, finalize=True)
        bill_period(db.session, JUL, finalize=True)
        # a late July reading (+1 GB) posted into August (open): an adjustment line in August for July
        readings(storage.assets[0], [("2026-07-20T00:00:00+00:00", "1")], unit=unit_type("gb"), received_at=utcnow())
        db.session.commit()
        post_adjustments(db.session, JUL, AUG)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(BillingReading).where(
            BillingReading.period_start == AUG, BillingReading.adjusts_period == JUL)) == 1
        [item] = [i for i in true_ups(db.session, now=MID_SEPTEMBER) if i.bucket == "Storage"]
        # still June, July, August of the ordinary lines (the line for July as billed: 130.2)
        assert item.usage_by_period == {"2026-06": D(120), "2026-07": D("130.2"), "2026-08": D(110)}


def test_listing_by_client_and_by_unit_type(app):
    with app.app_context():
        storage, mail = storage_billed_may_to_august()
        beta, cores = client("Beta"), unit_type("cores")
        host = asset("host-1", beta)
        vcpu = bucket("vCPU", "max", [host], commit="4", base="10.00", overage="12.00", owner=beta, unit=cores,
                      created_at=datetime(2026, 1, 2, tzinfo=timezone.utc))
        readings(host, [(f"2026-{month:02d}-03T00:00:00+00:00", "6") for month in (6, 7, 8)], unit=cores)
        db.session.commit()
        for month in (JUN, JUL, AUG):
            bill_period(db.session, month)
        [item] = true_ups(db.session, client_id=beta.id, now=MID_SEPTEMBER)
        # max 6 -> 6; at 6: under 4 -> 40.00 + 2 × 12.00 = 64.00; under 6 -> 60.00: −4.00
        assert (item.bucket_id, item.bucket, item.client_id, item.client, item.unit_type_id, item.unit_type) == (
            vcpu.id, "vCPU", beta.id, "Beta", cores.id, "cores")
        assert (item.current_commit, item.suggested_commit, item.monthly_effect, item.direction) == (
            D(4), D(6), D("-4.00"), "up")
        # Exact (billed its commit: not listed) comes before vCPU in bucket id: the listing goes on past it
        assert [i.bucket for i in true_ups(db.session, now=MID_SEPTEMBER)] == ["Mail", "Storage", "vCPU"]
        acme = storage.client
        assert [i.bucket for i in true_ups(db.session, client_id=acme.id, now=MID_SEPTEMBER)] == ["Mail", "Storage"]
        assert [i.bucket for i in true_ups(db.session, unit_type_id=cores.id, now=MID_SEPTEMBER)] == ["vCPU"]
        assert [i.bucket for i in true_ups(db.session, unit_type_id=mail.unit_type_id,
                                           now=MID_SEPTEMBER)] == ["Mail", "Storage"]


def test_applying_uses_the_given_now_and_notes_each_periods_usage(app):
    with app.app_context():
        storage, _ = storage_billed_may_to_august()
        readings(storage.assets[0], [("2026-09-03T00:00:00+00:00", "150")], unit=unit_type("gb"))
        db.session.commit()
        bill_period(db.session, SEP)
        bill_period(db.session, OCT)
        # at MID_SEPTEMBER: June 120, July 130.2, August 110 -> 131 from October (today's clock would see
        # August 110, September 150, October 131 -> 150)
        assert apply_true_ups(db.session, [storage.id], "staff@example.com", now=MID_SEPTEMBER) == 1
        term = bucket_terms(db.session, storage.id)[-1]
        assert (term.effective_from, term.commit) == (OCT, D(131))
        assert term.note == "True-up up: commit 100 -> 131 (max usage of 2026-06 120, 2026-07 130.2, 2026-08 110)"


def test_a_term_already_set_from_the_next_period_with_another_commit_is_not_the_true_up(app):
    from billing.terms import set_term

    with app.app_context():
        storage, _ = storage_billed_may_to_august()
        set_term(db.session, storage.id, OCT, D(120), D("2.50"), D("3.50"), note="renewal", created_by="sales")
        db.session.commit()
        [item] = [i for i in true_ups(db.session, now=MID_SEPTEMBER) if i.bucket == "Storage"]
        assert (item.suggested_commit, item.applied_from) == (D(131), None)  # October's term says 120, not 131
        assert apply_true_ups(db.session, [storage.id], "staff@example.com", now=MID_SEPTEMBER) == 1
        # the true-up replaces October's term: commit 131 at the prices of the term in force then
        term = bucket_terms(db.session, storage.id)[-1]
        assert (term.effective_from, term.commit, term.base_price, term.overage_price) == (
            OCT, D(131), D("2.50"), D("3.50"))
        [item] = [i for i in true_ups(db.session, now=MID_SEPTEMBER) if i.bucket == "Storage"]
        assert item.applied_from == "2026-10"


def test_the_listing_is_ordered_by_lowercase_client_then_bucket_name(app):
    with app.app_context():
        gb = unit_type("gb")
        for client_name, bucket_name in (("KiloB", "zz"), ("kilo_a", "NetB"), ("kilo_a", "net_a")):
            owner = client(client_name)
            disk = asset(f"{client_name}-{bucket_name}", owner)
            bucket(bucket_name, "max", [disk], commit="1", base="1", overage="1", owner=owner, unit=gb,
                   created_at=datetime(2026, 1, 2, tzinfo=timezone.utc))
            readings(disk, [("2026-08-03T00:00:00+00:00", "2")], unit=gb)
        db.session.commit()
        bill_period(db.session, AUG)
        # lowercased, "_" (0x5F) sorts before letters: kilo_a < kilob, net_a < netb
        assert [(i.client, i.bucket) for i in true_ups(db.session, now=MID_SEPTEMBER)] == [
            ("kilo_a", "net_a"), ("kilo_a", "NetB"), ("KiloB", "zz")]

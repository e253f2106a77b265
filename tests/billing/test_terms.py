"""Contract terms over time: each period is billed at the term in force for it; edits write the current period's
term; a term a finalized line was computed from is never changed (rules, and the database itself)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from billing.periods import current_period_start, next_period
from billing.run import bill_period
from billing.terms import TermLocked, bucket_terms, set_term, term_author, term_for, terms_for_period
from extensions import db
from models import AuditLog, BillingReading, Bucket, BucketTerm
from tests.factories import asset, bucket, readings

D = Decimal
JAN, MAR, JUL, SEP = (datetime(2026, m, 1, tzinfo=timezone.utc) for m in (1, 3, 7, 9))


def month(year: int, number: int) -> datetime:
    return datetime(year, number, 1, tzinfo=timezone.utc)


def line(bucket_id: int, start: datetime) -> BillingReading:
    return db.session.scalar(sa.select(BillingReading).where(
        BillingReading.bucket_id == bucket_id, BillingReading.period_start == start,
        BillingReading.adjusts_period.is_(None)))


def vm_bucket_since_january():
    """'VM cores' (sum), created 2026-01-05: first term from 2026-01, commit 100 at $2.00, overage $3.00; 120 cores
    used in March and in September."""
    vm = asset("vm-1")
    cores = bucket("VM cores", "sum", [vm], commit="100", base="2.00", overage="3.00",
                   created_at=datetime(2026, 1, 5, tzinfo=timezone.utc))
    readings(vm, [("2026-03-10T00:00:00+00:00", "70"), ("2026-03-20T00:00:00+00:00", "50"),
                  ("2026-09-10T00:00:00+00:00", "120")])
    db.session.commit()
    return cores


def test_a_new_bucket_gets_its_first_term_from_the_month_it_was_created(app):
    with app.app_context():
        cores = vm_bucket_since_january()
        [first] = bucket_terms(db.session, cores.id)
        assert (first.effective_from, first.commit, first.base_price, first.overage_price) == (JAN, D(100), D(2), D(3))
        assert db.session.get(Bucket, cores.id).commit == D(100)


def test_mid_year_commit_change_and_an_old_period_rebilled_at_its_own_term(app):
    with app.app_context():
        cores = vm_bucket_since_january()
        set_term(db.session, cores.id, JUL, D(150), D("1.80"), D("2.50"), note="renewal", created_by="ops@example.com")
        db.session.commit()
        bill_period(db.session, MAR)
        bill_period(db.session, SEP)
        march, september = line(cores.id, MAR), line(cores.id, SEP)
        # March, term from January: base 100 × 2.00 = 200.00; overage (120 − 100) × 3.00 = 60.00; final 260.00
        assert (march.commit, march.base_price, march.overage_price) == (D(100), D(2), D(3))
        assert (march.base_cost, march.overage_cost, march.buffer_cost, march.final_cost) == (
            D("200.00"), D("60.00"), D("0.00"), D("260.00"))
        # September, term from July: base 150 × 1.80 = 270.00; buffer (150 − 120) × 1.80 = 54.00; final 270.00
        assert (september.commit, september.base_price, september.overage_price) == (D(150), D("1.8"), D("2.5"))
        assert (september.base_cost, september.overage_cost, september.buffer_units, september.buffer_cost,
                september.final_cost) == (D("270.00"), D("0.00"), D(30), D("54.00"), D("270.00"))
        # A grid edit today writes the current period's term; re-billing March still uses March's term.
        db.session.get(Bucket, cores.id).commit = D(200)
        db.session.commit()
        bill_period(db.session, MAR)
        assert (line(cores.id, MAR).commit, line(cores.id, MAR).final_cost) == (D(100), D("260.00"))
        assert [t.effective_from for t in bucket_terms(db.session, cores.id)] == [JAN, JUL, current_period_start()]
        assert db.session.get(Bucket, cores.id).commit == D(200)
        assert term_for(db.session, cores.id, SEP).commit == D(150)


def test_the_first_term_bills_periods_before_it(app):
    with app.app_context():
        cores = vm_bucket_since_january()
        set_term(db.session, cores.id, MAR, D(110), D(2), D(3))
        db.session.commit()
        assert terms_for_period(db.session, month(2025, 6))[cores.id].commit == D(100)
        assert terms_for_period(db.session, month(2026, 2))[cores.id].commit == D(100)
        assert terms_for_period(db.session, month(2026, 3))[cores.id].commit == D(110)
        assert terms_for_period(db.session, month(2027, 3))[cores.id].commit == D(110)


def test_a_term_from_next_period_leaves_the_current_figures(app):
    with app.app_context():
        cores = vm_bucket_since_january()
        set_term(db.session, cores.id, next_period(current_period_start()), D(500), D(2), D(3), note="true-up")
        db.session.commit()
        assert db.session.get(Bucket, cores.id).commit == D(100)
        assert db.session.scalar(sa.select(Bucket.id).where(Bucket.commit == D(100))) == cores.id


def test_editing_commit_writes_the_current_term_once_and_audits_it(app):
    with app.app_context():
        cores = vm_bucket_since_january()
        target = db.session.get(Bucket, cores.id)
        target.commit, target.overage_price = D(130), D("3.50")
        db.session.commit()
        target = db.session.get(Bucket, cores.id)
        target.commit = D(130)  # unchanged: no new term, no audit row
        db.session.commit()
        current = [t for t in bucket_terms(db.session, cores.id) if t.effective_from == current_period_start()]
        assert [(t.commit, t.base_price, t.overage_price) for t in current] == [(D(130), D(2), D("3.5"))]
        audits = db.session.scalars(sa.select(AuditLog).where(AuditLog.table == "bucket_terms")).all()
        assert [a.action for a in audits] == ["create", "create"]
        assert audits[-1].new_values["commit"] == "130"


def test_a_term_for_a_finalized_period_is_refused_by_the_rules_and_the_database(app):
    with app.app_context():
        cores = vm_bucket_since_january()
        bill_period(db.session, MAR, finalize=True)
        with pytest.raises(TermLocked, match="2026-03"):
            set_term(db.session, cores.id, MAR, D(1), D(1), D(1))
        with pytest.raises(TermLocked, match="2026-03"):  # from February on it would govern March too
            set_term(db.session, cores.id, month(2026, 2), D(1), D(1), D(1))
        db.session.rollback()
        set_term(db.session, cores.id, month(2026, 4), D(90), D(2), D(3))  # April on: March keeps its term
        db.session.commit()
        first = db.session.scalar(sa.select(BucketTerm.id).where(BucketTerm.effective_from == JAN))
        for statement, values in (
                ("UPDATE bucket_terms SET commit = 1 WHERE id = :id", {"id": first}),
                ("DELETE FROM bucket_terms WHERE id = :id", {"id": first}),
                ("INSERT INTO bucket_terms (bucket_id, effective_from, commit, base_price, overage_price, note, "
                 "created_by, created_at) VALUES (:b, :f, 1, 1, 1, '', '', :f)",
                 {"b": cores.id, "f": month(2026, 2).replace(tzinfo=None)
                  if db.engine.dialect.name == "sqlite" else month(2026, 2)})):
            with pytest.raises(IntegrityError, match="contract term"):
                with db.engine.begin() as conn:
                    conn.execute(sa.text(statement.replace("commit =", '"commit" =').replace(
                        "(bucket_id, effective_from, commit,", '(bucket_id, effective_from, "commit",')), values)
        assert line(cores.id, MAR).final_cost == D("260.00")


def test_a_bucket_without_finalized_lines_is_deleted_with_its_terms_audited(app):
    with app.app_context():
        cores = vm_bucket_since_january()
        db.session.delete(db.session.get(Bucket, cores.id))
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(BucketTerm)) == 0
        deleted = db.session.scalars(sa.select(AuditLog.action).where(AuditLog.table == "bucket_terms")).all()
        assert deleted.count("delete") == 1


def test_projections_read_the_current_term(app):
    from billing.projections import run_projections
    from models import Projection

    with app.app_context():
        vm = asset("vm-9")
        gauge = bucket("Gauge", "max", [vm], commit="10", base="1", overage="2")
        now = datetime.now(timezone.utc)
        readings(vm, [((now - timedelta(minutes=5)).isoformat(), "12")])
        set_term(db.session, gauge.id, next_period(current_period_start()), D(50), D(1), D(2))
        db.session.commit()
        run_projections(db.session, now=now)
        projection = db.session.scalar(sa.select(Projection))
        # max 12 over commit 10 (this month's term, not next month's 50): 10 × 1 + 2 × 2 = 14.00; 120 %
        assert (projection.projected_cost, projection.pct_of_commit) == (D("14.00"), D("120.00"))


# ---- which periods a term governs (governed_finalized_periods / check_term_allowed) -----------------------------

def finalize(*starts: datetime) -> None:
    for start in starts:
        bill_period(db.session, start, finalize=True)


def refusal(bucket_id: int, effective_from: datetime) -> str | None:
    """The TermLocked message for a term of the bucket effective from that period, or None when it is written."""
    try:
        with db.session.begin_nested():
            set_term(db.session, bucket_id, effective_from, D(1), D(1), D(1))
            db.session.flush()
            raise _Undo
    except _Undo:
        return None
    except TermLocked as exc:
        return str(exc)


class _Undo(Exception):
    """Rolls back the savepoint of a term that was allowed."""


def test_a_term_governs_up_to_the_next_term_only(app):
    """Terms from January and July; September finalized (July's term bills it). A term from March governs March to
    June: allowed. A term from September itself, or replacing July's, would govern September: refused. A term from
    August governs only August while a September term exists (terms JAN, JUL, SEP): allowed."""
    with app.app_context():
        cores = vm_bucket_since_january()
        set_term(db.session, cores.id, JUL, D(150), D(2), D(3))
        db.session.commit()
        finalize(SEP)
        assert refusal(cores.id, MAR) is None
        assert "2026-09" in refusal(cores.id, JUL)      # replacing the term September was billed with
        assert "2026-09" in refusal(cores.id, month(2026, 8))
        assert refusal(cores.id, month(2026, 10)) is None
        db.session.rollback()
        other = bucket("Other", "sum", [asset("vm-2")], commit="100", base="2.00", overage="3.00",
                       created_at=datetime(2026, 1, 5, tzinfo=timezone.utc))  # made after September was finalized
        finalize(month(2026, 10))
        set_term(db.session, cores.id, month(2026, 11), D(150), D(2), D(3))
        db.session.commit()
        # terms JAN, JUL, NOV; finalized SEP, OCT: a term from AUG governs AUG to OCT (NOV's term comes after)
        assert "2026-09, 2026-10" in refusal(cores.id, month(2026, 8))
        # the other bucket's terms never shield this one, and its lines never lock this one
        assert refusal(other.id, MAR) is not None  # OCT finalized for it too, governed by a term from MAR


def test_a_later_term_in_the_same_period_as_the_line_takes_it_over(app):
    """Terms JAN and SEP, September finalized: September is billed at September's term, so a term from July governs
    only July and August."""
    with app.app_context():
        cores = vm_bucket_since_january()
        set_term(db.session, cores.id, SEP, D(150), D(2), D(3))
        db.session.commit()
        finalize(SEP)
        assert refusal(cores.id, JUL) is None
        assert "2026-09" in refusal(cores.id, SEP)


def test_a_term_before_the_first_one_governs_every_earlier_period(app):
    """A bucket created in May 2026 whose March was billed and finalized (its first term bills every earlier period):
    a new term from April would become its first term and govern March, and so would replacing May's."""
    with app.app_context():
        vm = asset("vm-5")
        late = bucket("Late", "sum", [vm], commit="10", base="1", overage="1",
                      created_at=datetime(2026, 5, 3, tzinfo=timezone.utc))
        db.session.commit()
        finalize(MAR)
        assert [t.effective_from for t in bucket_terms(db.session, late.id)] == [month(2026, 5)]
        assert "2026-03" in refusal(late.id, month(2026, 4))
        assert "2026-03" in refusal(late.id, month(2026, 5))
        assert refusal(late.id, month(2026, 6)) is None
        # another bucket's older terms do not make April "not the first" for this one
        bucket("Old", "sum", [asset("vm-6")], created_at=datetime(2025, 1, 5, tzinfo=timezone.utc))
        db.session.commit()
        assert "2026-03" in refusal(late.id, month(2026, 4))


def test_only_this_buckets_finalized_ordinary_lines_lock_its_terms(app):
    """An unfinalized line, another bucket's finalized line and a finalized adjustment line (computed from the period
    it adjusts) leave a period's term free."""
    with app.app_context():
        cores = vm_bucket_since_january()
        bill_period(db.session, MAR)  # not finalized
        assert refusal(cores.id, MAR) is None
        db.session.rollback()
        finalize(JUL)
        newer = bucket("New", "sum", [asset("vm-7")], created_at=datetime(2026, 8, 2, tzinfo=timezone.utc))
        db.session.commit()
        assert refusal(newer.id, JUL) is None and refusal(newer.id, JAN) is None
        db.session.rollback()
        ordinary = line(cores.id, JUL)
        db.session.add(BillingReading(
            client_id=ordinary.client_id, bucket_id=newer.id, period_start=SEP, period_end=month(2026, 10),
            adjusts_period=JUL, total_usage=D(0), commit=D(0), base_price=D(0), overage_price=D(0), base_cost=D(0),
            overage_units=D(0), overage_cost=D(0), buffer_units=D(0), buffer_cost=D(0), final_cost=D(0),
            finalized=True))
        db.session.commit()
        assert refusal(newer.id, SEP) is None


def test_the_refusal_names_the_first_six_locked_periods_in_order(app):
    """January to July 2026 finalized (seven periods). A term from January governs all seven: the message names
    2026-01 … 2026-06 and an ellipsis; one from February governs six: all named, no ellipsis."""
    with app.app_context():
        cores = vm_bucket_since_january()
        finalize(*[month(2026, m) for m in (7, 6, 5, 4, 3, 2, 1)])  # lines written newest first
        assert refusal(cores.id, JAN) == (
            f"bucket {cores.id} has finalized billing lines for 2026-01, 2026-02, 2026-03, 2026-04, 2026-05, 2026-06 …:"
            " a term effective from 2026-01 would change what they were computed from")
        assert refusal(cores.id, month(2026, 2)) == (
            f"bucket {cores.id} has finalized billing lines for 2026-02, 2026-03, 2026-04, 2026-05, 2026-06, 2026-07:"
            " a term effective from 2026-02 would change what they were computed from")


# ---- set_term adds or replaces the bucket's own term of the period -----------------------------------------------

def test_set_term_replaces_this_buckets_term_of_the_period_committed_or_pending(app):
    """Two buckets with terms from January. A term from July 15th is the July term; setting July again (before and after
    a flush) replaces this bucket's July term, never the other bucket's; note and author default to empty."""
    with app.app_context():
        cores = vm_bucket_since_january()
        other = bucket("Other", "sum", [asset("vm-2")], commit="100", base="2.00", overage="3.00",
                       created_at=datetime(2026, 1, 5, tzinfo=timezone.utc))
        db.session.commit()
        mine_id, other_id = cores.id, other.id  # read now: a refresh later would flush the pending terms
        set_term(db.session, other_id, JUL, D(7), D(7), D(7), note="other's")
        set_term(db.session, mine_id, datetime(2026, 7, 15, tzinfo=timezone.utc), D(150), D(2), D(3))
        set_term(db.session, mine_id, JUL, D(160), D(2), D(3))  # all three pending: this bucket's is replaced
        db.session.commit()
        set_term(db.session, cores.id, JUL, D(170), D("2.5"), D(4))  # committed: replaced
        db.session.commit()
        mine = [(t.effective_from, t.commit, t.base_price, t.overage_price, t.note, t.created_by)
                for t in bucket_terms(db.session, cores.id)]
        assert mine == [(JAN, D(100), D(2), D(3), "", "system"), (JUL, D(170), D("2.5"), D(4), "", "")]
        theirs = [(t.effective_from, t.commit, t.note) for t in bucket_terms(db.session, other.id)]
        assert theirs == [(JAN, D(100), ""), (JUL, D(7), "other's")]


def test_bucket_terms_are_listed_oldest_first(app):
    with app.app_context():
        cores = vm_bucket_since_january()
        set_term(db.session, cores.id, SEP, D(1), D(1), D(1))
        db.session.commit()
        set_term(db.session, cores.id, MAR, D(1), D(1), D(1))  # written after September's
        db.session.commit()
        assert [t.effective_from for t in bucket_terms(db.session, cores.id)] == [JAN, MAR, SEP]


def test_term_for_a_bucket_without_terms_says_so(app):
    with app.app_context():
        cores = vm_bucket_since_january()
        assert term_for(db.session, cores.id, MAR).commit == D(100)
        with pytest.raises(LookupError, match="^bucket 999999 has no contract term$"):
            term_for(db.session, 999_999, MAR)


# ---- who wrote a term --------------------------------------------------------------------------------------------

def test_term_author_is_the_user_the_api_key_or_system(app):
    from api.keys import create_api_key
    from database.audit import set_actor
    from models import User

    with app.app_context():
        ops = User(email="ops@example.com", password_hash="x", role="admin")
        db.session.add_all([User(email="other@example.com", password_hash="x"), ops])
        db.session.commit()
        key, _ = create_api_key("billing robot", "admin")
        create_api_key("another key", "admin")
        assert term_author(db.session) == "system"
        db.session.info["term_author"] = "nightly true-ups"
        assert term_author(db.session) == "nightly true-ups"
        del db.session.info["term_author"]
        set_actor(user_id=ops.id)
        assert term_author(db.session) == "ops@example.com"
        set_actor(user_id=999_999)  # a user deleted since
        assert term_author(db.session) == "user #999999"
        set_actor(api_key_id=key.id)
        assert term_author(db.session) == f"API key #{key.id} (billing robot)"
        set_actor(api_key_id=999_999)  # a key deleted since
        assert term_author(db.session) == "API key #999999"

"""Billing across month partitions is exact: a reading at 23:59:59.999 on the last day belongs to its month, one at
00:00:00 UTC on the first to the next; on PostgreSQL each lands in its own month partition."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa

from billing.run import bill_period
from database.partitions import create_partitions
from extensions import db
from models import BillingReading
from ingest.store import NewReading, store_readings
from tests.factories import asset, bucket, unit_type

JAN = datetime(2026, 1, 1, tzinfo=timezone.utc)
FEB = datetime(2026, 2, 1, tzinfo=timezone.utc)
MAR = datetime(2026, 3, 1, tzinfo=timezone.utc)


def usage(period: datetime) -> dict[str, Decimal]:
    return {line.details["bucket"]: line.total_usage for line in db.session.scalars(
        sa.select(BillingReading).where(BillingReading.period_start == period))}


def test_readings_either_side_of_midnight_utc_bill_in_their_own_month(app, backend):
    with app.app_context():
        create_partitions(db.session, [JAN, FEB])
        gb = unit_type("gb")
        vm = asset("vm-1")
        for name, aggregation in (("sum", "sum"), ("max", "max"), ("last", "last"), ("count", "count")):
            bucket(name, aggregation, [vm], unit=gb)
        db.session.commit()
        plus_two = datetime(2026, 2, 1, 1, 0, tzinfo=timezone.utc).astimezone(timezone(timedelta(hours=2)))
        store_readings(db.session, [
            NewReading(vm.id, gb.id, JAN, Decimal("0.5")),
            NewReading(vm.id, gb.id, datetime(2026, 1, 31, 23, 59, 59, 999000, tzinfo=timezone.utc), Decimal("1.5")),
            NewReading(vm.id, gb.id, FEB, Decimal("2.25")),
            NewReading(vm.id, gb.id, plus_two, Decimal("1")),  # 2026-02-01 01:00 UTC written as +02:00
            NewReading(vm.id, gb.id, datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=timezone.utc), Decimal("3")),
            NewReading(vm.id, gb.id, MAR, Decimal("100")),
        ])
        db.session.commit()

        bill_period(db.session, JAN)
        bill_period(db.session, FEB)
        # January: 0.5 + 1.5; its last reading is the 23:59:59.999 one
        assert usage(JAN) == {"sum": Decimal("2.000000"), "max": Decimal("1.500000"), "last": Decimal("1.500000"),
                              "count": Decimal("1.000000")}
        # February: 2.25 + 1 + 3 (00:00 on the 1st is February's; 00:00 on March 1st is not)
        assert usage(FEB) == {"sum": Decimal("6.250000"), "max": Decimal("3.000000"), "last": Decimal("3.000000"),
                              "count": Decimal("1.000000")}
        if backend == "postgresql":
            placed = db.session.execute(sa.text(
                "SELECT tableoid::regclass::text, count(*), sum(value) FROM readings GROUP BY 1 ORDER BY 1")).all()
            assert [tuple(row) for row in placed] == [("readings_2026_01", 2, 2_000_000),
                                                       ("readings_2026_02", 3, 6_250_000),
                                                       (placed[2][0], 1, 100_000_000)]
            assert placed[2][0] in ("readings_default", "readings_2026_03")

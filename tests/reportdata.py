"""A small provider with hand-computed billing lines and projections, shared by the report and page tests.

now = 2026-11-15. Prices: vm-hours base $1 / overage $2, storage-gb base $0.50 / overage $1.

Period 2026-10 (the last billed period):
  Acme VMs     commit 100, usage 120 -> base 100, overage 20u $40, final 140            (over)
  Acme Storage commit 200, usage 150 -> base 100, buffer 50u $25, final 100             (under)  => Acme mixed
  Globex VMs   commit  50, usage  30 -> base  50, buffer 20u $20, final  50             (under)  => Globex under
  Initech Stor commit 100, usage 100 -> base  50, final 50                              (at)     => Initech at
  Σ final 340, Σ overage 40, Σ buffer 45
Period 2026-09:
  Acme VMs usage 100 -> final 100 (at); Globex VMs usage 70 -> base 50 + overage 20u $40 = 90 (over)
  Σ final 190, Σ overage 40, Σ buffer 0
Period 2026-11 (this period, an unfinalized run): Acme VMs usage 10 -> final 100, buffer 90u $90.
Projections 2026-11:
  Acme VMs 150 -> $200 (over, was over: not new) · Acme Storage 250 -> $150 (125%, new) ·
  Globex VMs 60 -> $70 (120%, new) · Initech Storage 80 -> $50 (under). Projected Rev 470.
Initech VMs has no line and no projection.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from billing.periods import current_period_start, next_period, previous_period
from billing.pricing import pct_of_commit, rate_bucket_usage
from extensions import db
from models import BillingReading, Bucket, Client, Projection, UnitType

NOW = datetime(2026, 11, 15, 12, tzinfo=timezone.utc)
SEP = datetime(2026, 9, 1, tzinfo=timezone.utc)
OCT = datetime(2026, 10, 1, tzinfo=timezone.utc)
NOV = datetime(2026, 11, 1, tzinfo=timezone.utc)


def add_line(bucket: Bucket, period: datetime, usage: str) -> BillingReading:
    usage_d = Decimal(usage)
    cost = rate_bucket_usage(usage_d, bucket.commit, bucket.base_price, bucket.overage_price)
    line = BillingReading(
        client_id=bucket.client_id, bucket_id=bucket.id, period_start=period, period_end=next_period(period),
        total_usage=usage_d, commit=bucket.commit, base_price=bucket.base_price,
        overage_price=bucket.overage_price, base_cost=cost.base_cost, overage_units=cost.overage_units,
        overage_cost=cost.overage_cost, buffer_units=cost.buffer_units, buffer_cost=cost.buffer_cost,
        final_cost=cost.final_cost, details={},
    )
    db.session.add(line)
    return line


def add_projection(bucket: Bucket, period: datetime, current: str, projected: str) -> Projection:
    projected_d = Decimal(projected)
    cost = rate_bucket_usage(projected_d, bucket.commit, bucket.base_price, bucket.overage_price)
    row = Projection(client_id=bucket.client_id, bucket_id=bucket.id, period_start=period,
                     current_usage=Decimal(current), projected_usage=projected_d, projected_cost=cost.final_cost,
                     pct_of_commit=pct_of_commit(projected_d, bucket.commit))
    db.session.add(row)
    return row


def load_provider(now: datetime = NOW) -> dict[str, int]:
    """Insert the provider above (its three periods shifted to end with `now`'s); return the ids tests need."""
    this = current_period_start(now)
    last = previous_period(this)
    before = previous_period(last)
    vm = UnitType(name="vm-hours", aggregation="sum", base_price=Decimal(1), overage_price=Decimal(2))
    gb = UnitType(name="storage-gb", aggregation="avg", base_price=Decimal("0.5"), overage_price=Decimal(1))
    acme, globex, initech = Client(name="Acme"), Client(name="Globex"), Client(name="Initech")
    db.session.add_all([vm, gb, acme, globex, initech])
    db.session.flush()

    def bucket(client, name, unit, source, commit):
        row = Bucket(client=client, name=name, unit_type=unit, source_type=source, aggregation=unit.aggregation,
                     commit=Decimal(commit), base_price=unit.base_price, overage_price=unit.overage_price)
        db.session.add(row)
        return row

    acme_vm = bucket(acme, "Acme VMs", vm, "vcenter", 100)
    acme_gb = bucket(acme, "Acme Storage", gb, "netapp", 200)
    globex_vm = bucket(globex, "Globex VMs", vm, "vcenter", 50)
    initech_gb = bucket(initech, "Initech Storage", gb, "netapp", 100)
    initech_vm = bucket(initech, "Initech VMs", vm, "vcenter", 10)
    db.session.flush()
    add_line(acme_vm, last, "120")
    add_line(acme_gb, last, "150")
    add_line(globex_vm, last, "30")
    add_line(initech_gb, last, "100")
    add_line(acme_vm, before, "100")
    add_line(globex_vm, before, "70")
    add_line(acme_vm, this, "10")
    add_projection(acme_vm, this, "75", "150")
    add_projection(acme_gb, this, "250", "250")
    add_projection(globex_vm, this, "30", "60")
    add_projection(initech_gb, this, "80", "80")
    db.session.commit()
    return {"vm": vm.id, "gb": gb.id, "acme": acme.id, "globex": globex.id, "initech": initech.id,
            "acme_vm": acme_vm.id, "acme_gb": acme_gb.id, "globex_vm": globex_vm.id, "initech_gb": initech_gb.id,
            "initech_vm": initech_vm.id}

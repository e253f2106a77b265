"""`flask --app app demo-data`: a realistic managed-service provider to look at."""
from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import click
from sqlalchemy import func, select

from billing.periods import current_period_start, last_periods
from extensions import db
from models import Asset, Bucket, Client, UnitType
from readings import NewReading, store_readings

UNIT_TYPES = [
    # name, description, aggregation, source, base, overage, typical value per reading
    ("vm-hours", "Virtual machine hours", "sum", "vcenter", "0.045", "0.06", 24),
    ("storage-gb", "Provisioned storage (GB)", "avg", "netapp", "0.08", "0.11", 500),
    ("mailboxes", "Active mailboxes", "count", "o365", "4.00", "5.00", 1),
    ("bandwidth-mbps", "Circuit bandwidth, 95th percentile (Mbps)", "p95", "snmp", "1.10", "1.60", 80),
    ("backup-gb", "Protected backup (GB, month end)", "last", "veeam", "0.05", "0.07", 800),
    ("cpu-cores", "Peak licensed cores", "max", "hyperv", "6.00", "8.00", 16),
]
COMPANY_WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell", "Cyberdyne",
                 "Soylent", "Wonka", "Gringotts", "Oscorp", "Aperture", "Massive", "Dunder", "Pied", "Bluth", "Prestige"]
COMPANY_KINDS = ["Dental", "Logistics", "Legal", "Clinics", "Foods", "Energy", "Labs", "Capital", "Retail", "Media"]


def _company(i: int) -> str:
    return f"{COMPANY_WORDS[i % len(COMPANY_WORDS)]} {COMPANY_KINDS[(i // len(COMPANY_WORDS)) % len(COMPANY_KINDS)]}" + (
        f" {i // (len(COMPANY_WORDS) * len(COMPANY_KINDS)) + 1}" if i >= len(COMPANY_WORDS) * len(COMPANY_KINDS) else "")


def load_demo_data(clients: int = 40, assets: int = 1500, months: int = 13, seed: int = 7,
                   echo: Callable[[str], None] = print, bill: bool = True) -> str:
    """Create unit types, clients, assets, buckets and daily readings for `months` months; idempotent by name."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    units = _unit_types()
    client_rows = _clients(clients)
    existing_assets = db.session.scalar(select(func.count(Asset.id))) or 0
    if existing_assets >= assets:
        return f"demo data already loaded ({existing_assets} assets)"

    plans: list[tuple[Asset, UnitType, float]] = []
    buckets: dict[tuple[int, int], Bucket] = {}
    for i in range(existing_assets, assets):
        client = client_rows[i % len(client_rows)]
        unit = units[rng.randrange(len(units))]
        spec = next(s for s in UNIT_TYPES if s[0] == unit.name)
        asset = Asset(external_id=f"{spec[3]}-{i:05d}", source_type=spec[3], name=f"{client.name.split()[0].lower()}-{unit.name}-{i}",
                      description=f"{unit.description} for {client.name}", client=client, acknowledged=True)
        roll = rng.random()
        if roll < 0.02:
            asset.client, asset.acknowledged = None, False
        elif roll < 0.035:
            asset.disregarded_at = now
        db.session.add(asset)
        scale = spec[6] * rng.uniform(0.5, 1.5)
        plans.append((asset, unit, scale))
        if asset.client is not None and roll > 0.05:
            key = (client.id, unit.id)
            if key not in buckets:
                buckets[key] = Bucket(client=client, name=f"{unit.name} ({spec[3]})", unit_type=unit,
                                      source_type=spec[3], aggregation=unit.aggregation, base_price=unit.base_price,
                                      overage_price=unit.overage_price, commit=Decimal(0), reviewed=True)
                db.session.add(buckets[key])
            buckets[key].assets.append(asset)
    db.session.flush()
    _set_commits(buckets.values(), plans, rng)
    db.session.commit()

    start = last_periods(months - 1, now)[0] if months > 1 else current_period_start(now)
    days = max(1, (now - start).days)
    with click.progressbar(length=days, label="readings", file=None) as bar:
        for day in range(days):
            ts = start + timedelta(days=day, hours=12)
            rows = [NewReading(a.id, u.id, ts, Decimal(str(round(max(0.0, rng.gauss(s, s * 0.15)), 3))))
                    for a, u, s in plans]
            store_readings(db.session, rows)
            db.session.commit()
            bar.update(1)
    billed = _bill_past_periods(start, now) if bill else []
    return (f"demo data: {len(client_rows)} clients, {len(plans)} assets, {len(buckets)} buckets, {days} days of "
            f"readings, {len(billed)} period(s) billed and finalized")


def _bill_past_periods(start: datetime, now: datetime) -> list[str]:
    """Bill and finalize every period that has ended since `start`, so the reports have history."""
    from billing.periods import next_period, period_label
    from billing.run import bill_period

    periods = []
    period = start
    while next_period(period) <= current_period_start(now):
        periods.append(period)
        period = next_period(period)
    with click.progressbar(periods, label="billing", item_show_func=lambda p: p and period_label(p)) as bar:
        for period in bar:
            bill_period(db.session, period, finalize=True)
    return [period_label(p) for p in periods]


def _unit_types() -> list[UnitType]:
    units = []
    for name, description, aggregation, _source, base, overage, _typical in UNIT_TYPES:
        unit = db.session.scalar(select(UnitType).where(UnitType.name == name))
        if unit is None:
            unit = UnitType(name=name, description=description, aggregation=aggregation, base_price=Decimal(base),
                            overage_price=Decimal(overage), auto_provision=name in ("vm-hours", "mailboxes"),
                            filter_pattern="*")
            db.session.add(unit)
        units.append(unit)
    db.session.flush()
    return units


def _clients(count: int) -> list[Client]:
    rows = []
    for i in range(count):
        name = _company(i)
        client = db.session.scalar(select(Client).where(Client.name == name))
        if client is None:
            client = Client(name=name, enabled=True)
            db.session.add(client)
        rows.append(client)
    db.session.flush()
    return rows


def _set_commits(buckets, plans, rng: random.Random) -> None:
    """Commit near each bucket's expected monthly usage, so that some clients land over, some under."""
    expected: dict[int, float] = {}
    by_asset = {a.id: (u, s) for a, u, s in plans}
    for bucket in buckets:
        total = 0.0
        for asset in bucket.assets:
            unit, scale = by_asset[asset.id]
            agg = unit.aggregation
            total += scale * 30 if agg == "sum" else 1 if agg == "count" else scale
        expected[bucket.id] = total
        bucket.commit = Decimal(str(round(total * rng.choice([0.7, 0.85, 1.0, 1.15, 1.3]))))

"""`flask --app app demo-data`: a realistic managed-service provider to look at.

Shape: each client has a profile that sets its bucket commits against its expected usage: *over* clients
commit below what they use, *under* clients above, *mixed* clients both ways, *steady* clients close to it.
Usage grows gently over the months. About 2% of the assets are unassigned and new, 2% are assigned but
bound to no bucket (unbound: revenue leakage), 3% appeared in the last three weeks and are not yet
acknowledged, 1.5% are disregarded.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from billing.periods import current_period_start, last_periods, next_period, period_label
from extensions import db
from ingest.store import NewReading, store_readings
from jobs.rights import Requester
from jobs.runs import start_job
from models import Asset, Bucket, Client, Projection, UnitType

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
# Commit as a multiple of expected monthly usage, per client profile (choices drawn per bucket).
PROFILES = {
    "over": (0.7, 0.8, 0.85),
    "under": (1.2, 1.35, 1.5),
    "mixed": (0.75, 0.85, 1.25, 1.4),
    "steady": (0.97, 1.0, 1.03),
}
DEMO_DATA = Requester.operator("demo-data")  # the requester of the runs demo-data makes
PROFILE_WEIGHTS = {"over": 0.25, "under": 0.3, "mixed": 0.35, "steady": 0.1}
NOISE = 0.15  # relative standard deviation of one daily reading
DAYS_PER_BATCH = 8  # readings stored per call (fewer summary updates)
GROWTH = 0.15  # usage grows by this share over the loaded months
# What the month's usage is, in typical daily values, for each aggregation (p95 and max sit above the mean).
MONTHLY_FACTOR = {"sum": 30.4, "avg": 1.0, "last": 1.0, "p95": 1 + 1.645 * NOISE, "max": 1 + 2.0 * NOISE}


def _company(i: int) -> str:
    return f"{COMPANY_WORDS[i % len(COMPANY_WORDS)]} {COMPANY_KINDS[(i // len(COMPANY_WORDS)) % len(COMPANY_KINDS)]}" + (
        f" {i // (len(COMPANY_WORDS) * len(COMPANY_KINDS)) + 1}" if i >= len(COMPANY_WORDS) * len(COMPANY_KINDS) else "")


class Plan:
    """One demo asset: its unit type, typical reading, and the day it starts reporting."""

    __slots__ = ("asset", "unit", "scale", "first_day")

    def __init__(self, asset: Asset, unit: UnitType, scale: float, first_day: int) -> None:
        self.asset, self.unit, self.scale, self.first_day = asset, unit, scale, first_day


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

    start = last_periods(months - 1, now)[0] if months > 1 else current_period_start(now)
    days = max(1, (now - start).days)
    profiles = {c.id: rng.choices(list(PROFILE_WEIGHTS), weights=list(PROFILE_WEIGHTS.values()))[0]
                for c in client_rows}
    plans, buckets = _assets(existing_assets, assets, client_rows, units, rng, now, days)
    _set_commits(buckets.values(), plans, profiles, rng)
    db.session.commit()

    specs = [(p.asset.id, p.unit.id, p.scale, p.first_day) for p in plans]
    with click.progressbar(length=days, label="readings", file=None) as bar:
        for first in range(0, days, DAYS_PER_BATCH):
            batch = range(first, min(days, first + DAYS_PER_BATCH))
            rows = []
            for day in batch:
                ts = start + timedelta(days=day, hours=12)
                growth = 1 - GROWTH * (days - 1 - day) / max(1, days - 1)
                rows.extend(NewReading(asset_id, unit_id, ts, _value(rng, scale * growth))
                            for asset_id, unit_id, scale, first_day in specs if day >= first_day)
            store_readings(db.session, rows)
            db.session.commit()
            bar.update(len(batch))
    billed = _bill_past_periods(start, now) if bill else []
    projected = _project_this_period(now) if bill else 0
    return (f"demo data: {len(client_rows)} clients, {len(plans)} assets, {len(buckets)} buckets, {days} days of "
            f"readings, {len(billed)} period(s) billed and finalized, {projected} bucket(s) projected")


def _bill_past_periods(start: datetime, now: datetime) -> list[str]:
    """Bill and finalize every period that has ended since `start`, so the reports have history."""
    periods = []
    period = start
    while next_period(period) <= current_period_start(now):
        periods.append(period)
        period = next_period(period)
    with click.progressbar(periods, label="billing", item_show_func=lambda p: p and period_label(p)) as bar:
        for period in bar:
            label = period_label(period)
            start_job("billing", {"period": label, "finalize": True}, DEMO_DATA, label, here=True)
    return [period_label(p) for p in periods]


def _project_this_period(now: datetime) -> int:
    """Project the current period, so the dashboard's "This Period" figures have data."""
    label = period_label(current_period_start(now))
    start_job("projection", {"period": label}, DEMO_DATA, label, here=True)
    return db.session.scalar(select(func.count(Projection.id))) or 0


def _value(rng: random.Random, mean: float) -> Decimal:
    """A reading near `mean`, never negative, to 3 decimal places."""
    return Decimal(max(0, round(rng.gauss(mean, mean * NOISE) * 1000))).scaleb(-3)


def _assets(first: int, count: int, client_rows: list[Client], units: list[UnitType], rng: random.Random,
            now: datetime, days: int) -> tuple[list[Plan], dict[tuple[int, int], Bucket]]:
    """Create the assets and the buckets that bind them (one bucket per client and unit type)."""
    specs = {s[0]: s for s in UNIT_TYPES}
    plans: list[Plan] = []
    buckets: dict[tuple[int, int], Bucket] = {}
    for i in range(first, count):
        client = client_rows[rng.randrange(len(client_rows))] if i >= len(client_rows) else client_rows[i]
        unit = units[rng.randrange(len(units))]
        spec = specs[unit.name]
        asset = Asset(external_id=f"{spec[3]}-{i:05d}", source_type=spec[3],
                      name=f"{client.name.split()[0].lower()}-{unit.name}-{i}",
                      description=f"{unit.description} for {client.name}", client=client, acknowledged=True,
                      created_at=now - timedelta(days=days))
        first_day = 0
        roll = rng.random()
        if roll < 0.02:  # unassigned and new: a collector we have not placed yet
            asset.client, asset.acknowledged = None, False
            asset.description = f"{unit.description} (unplaced collector)"
        elif roll < 0.035:
            asset.disregarded_at = now - timedelta(days=rng.randrange(1, 90))
        elif roll < 0.065:  # appeared recently: not yet acknowledged
            first_day = max(0, days - rng.randrange(1, 21))
            asset.acknowledged = False
            asset.created_at = now - timedelta(days=days - first_day)
        db.session.add(asset)
        plans.append(Plan(asset, unit, spec[6] * rng.uniform(0.5, 1.5), first_day))
        unbound = 0.065 <= roll < 0.085
        if asset.client is not None and not unbound:
            key = (client.id, unit.id)
            if key not in buckets:
                buckets[key] = Bucket(client=client, name=f"{unit.name} ({spec[3]})", unit_type=unit,
                                      source_type=spec[3], aggregation=unit.aggregation, base_price=unit.base_price,
                                      overage_price=unit.overage_price, commit=Decimal(0), reviewed=True)
                db.session.add(buckets[key])
            buckets[key].assets.append(asset)
    db.session.flush()
    return plans, buckets


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
    names = [_company(i) for i in range(count)]
    found = {c.name: c for c in db.session.scalars(select(Client).where(Client.name.in_(names)))}
    rows = []
    for name in names:
        client = found.get(name)
        if client is None:
            client = Client(name=name, enabled=True)
            db.session.add(client)
        rows.append(client)
    db.session.flush()
    return rows


def _set_commits(buckets, plans: list[Plan], profiles: dict[int, str], rng: random.Random) -> None:
    """Commit = expected monthly usage (today's level) × a multiple drawn from the client's profile."""
    by_asset = {p.asset.id: p for p in plans}
    for bucket in buckets:
        total = 0.0
        for asset in bucket.assets:
            plan = by_asset[asset.id]
            if asset.disregarded_at is not None:
                continue
            agg = plan.unit.aggregation
            total += 1 if agg == "count" else plan.scale * MONTHLY_FACTOR[agg]
        multiple = rng.choice(PROFILES[profiles[bucket.client_id]])
        bucket.commit = Decimal(max(1, round(total * multiple)))


@click.command("demo-data")
@click.option("--clients", type=click.IntRange(1, 10000), default=40, show_default=True)
@click.option("--assets", type=click.IntRange(1, 1000000), default=1500, show_default=True)
@click.option("--months", type=click.IntRange(1, 36), default=13, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@with_appcontext
def demo_data_command(clients: int, assets: int, months: int, seed: int) -> None:
    """Load a realistic provider: clients, unit types, buckets, readings and billed periods."""
    summary = load_demo_data(clients=clients, assets=assets, months=months, seed=seed, echo=click.echo)
    click.echo(summary)


COMMANDS = (demo_data_command,)

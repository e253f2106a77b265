"""Builders for the alert and webhook tests: bound assets with readings (through the real store), billing lines,
projections and webhooks with a known secret."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from billing.periods import current_period_start, next_period, previous_period
from extensions import db
from models import Asset, BillingReading, Bucket, Client, Projection, UnitType, Webhook
from ingest.store import NewReading, store_readings
from webhooks.signing import new_secret, seal_secret

ZERO = Decimal("0")


def owner(name: str = "Acme") -> Client:
    found = db.session.query(Client).filter_by(name=name).one_or_none()
    if found is None:
        found = Client(name=name)
        db.session.add(found)
        db.session.flush()
    return found


def unit(name: str = "gb", silent_after_hours: int = 24, aggregation: str = "sum") -> UnitType:
    found = db.session.query(UnitType).filter_by(name=name).one_or_none()
    if found is None:
        found = UnitType(name=name, aggregation=aggregation, silent_after_hours=silent_after_hours)
        db.session.add(found)
        db.session.flush()
    return found


def asset(external_id: str, client: Client | None = None, **fields) -> Asset:
    row = Asset(external_id=external_id, source_type="vm", name=external_id, client=client, acknowledged=True,
                **fields)
    db.session.add(row)
    db.session.flush()
    return row


def bucket(name: str, unit_type: UnitType, assets: list[Asset], client: Client | None = None, commit: str = "0",
           **fields) -> Bucket:
    row = Bucket(client=client or owner(), name=name, unit_type=unit_type, source_type="vm", aggregation="sum",
                 commit=Decimal(commit), **fields)
    row.assets = list(assets)
    db.session.add(row)
    db.session.flush()
    return row


def read(target: Asset, unit_type: UnitType, *moments: datetime, value: str = "1") -> None:
    """Readings through ingest's store (which keeps each asset's latest reading per unit type)."""
    store_readings(db.session, [NewReading(target.id, unit_type.id, m, Decimal(value)) for m in moments])


def line(target: Bucket, period: datetime, usage: str) -> BillingReading:
    """A billing line of `usage` for the period (money figures are not what these tests look at)."""
    row = BillingReading(client_id=target.client_id, bucket_id=target.id, period_start=period,
                         period_end=next_period(period), total_usage=Decimal(usage), commit=target.commit,
                         base_price=ZERO, overage_price=ZERO, base_cost=ZERO, overage_units=ZERO, overage_cost=ZERO,
                         buffer_units=ZERO, buffer_cost=ZERO, final_cost=ZERO, details={})
    db.session.add(row)
    return row


def projection(target: Bucket, projected: str, now: datetime | None = None) -> Projection:
    row = Projection(client_id=target.client_id, bucket_id=target.id, period_start=current_period_start(now),
                     current_usage=Decimal(projected), projected_usage=Decimal(projected), projected_cost=ZERO,
                     pct_of_commit=None)
    db.session.add(row)
    return row


def last_periods(count: int, now: datetime | None = None) -> list[datetime]:
    """The `count` calendar periods before the current one, latest first."""
    periods = [previous_period(current_period_start(now))]
    while len(periods) < count:
        periods.append(previous_period(periods[-1]))
    return periods


def webhook(url: str, events: list[str], secret_key: str, enabled: bool = True) -> tuple[Webhook, str]:
    """A webhook and its secret in clear (sealed with `secret_key`, as the pages and the API store it)."""
    raw = new_secret()
    hook = Webhook(url=url, events=events, enabled=enabled, secret=seal_secret(raw, secret_key))
    db.session.add(hook)
    db.session.flush()
    return hook, raw


def hours_ago(now: datetime, hours: float) -> datetime:
    return now - timedelta(hours=hours)

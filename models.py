"""The Meterdesk domain: every table of DESIGN.md's Domain section."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    func,
    select,
    UniqueConstraint,
    bindparam,
    case,
    event,
    text,
)
from sqlalchemy.orm import NO_VALUE, Mapped, column_property, mapped_column, relationship, validates
from werkzeug.security import generate_password_hash

from extensions import db

AGGREGATIONS = ("sum", "max", "avg", "last", "p95", "count", "time_weighted")
MAX_GAP_LIMIT = 44640  # minutes in 31 days: a reading never holds past a month
USER_ROLES = ("admin", "staff", "viewer")
API_KEY_ROLES = ("admin", "ingest", "readonly")
SUPPRESSION_TYPES = ("exact", "glob", "regex")
JOB_ACTIVE = ("queued", "running")

MICRO = Decimal("0.000001")
Money = Numeric(18, 2)
Price = Numeric(18, 6)
Quantity = Numeric(24, 6)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class MicroUnits(TypeDecorator):
    """A Decimal with 6 places stored as an integer count of millionths: exact SUM on every backend."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        return to_micro(Decimal(value))

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return from_micro(value)


def to_micro(value: Decimal) -> int:
    return int(value.quantize(MICRO, rounding="ROUND_HALF_UP").scaleb(6))


def from_micro(value: int | Decimal) -> Decimal:
    return (Decimal(value).scaleb(-6)).quantize(MICRO)


bucket_assets = Table(
    "bucket_assets",
    db.metadata,
    Column("bucket_id", ForeignKey("buckets.id", ondelete="CASCADE"), primary_key=True),
    Column("asset_id", ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_bucket_assets_asset", "asset_id"),
)


class Client(db.Model):
    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    buckets: Mapped[list[Bucket]] = relationship(back_populates="client", passive_deletes=True)
    assets: Mapped[list[Asset]] = relationship(back_populates="client")

    def __str__(self) -> str:
        return self.name


class UnitType(db.Model):
    __tablename__ = "unit_types"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    aggregation: Mapped[str] = mapped_column(String(20), default="sum", server_default="sum")
    base_price: Mapped[Decimal] = mapped_column(Price, default=Decimal("0"), server_default="0")
    overage_price: Mapped[Decimal] = mapped_column(Price, default=Decimal("0"), server_default="0")
    auto_provision: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    filter_pattern: Mapped[str] = mapped_column(String(200), default="*", server_default="*")
    # time_weighted: how long a reading holds at most when no next reading comes (DESIGN.md "Time-weighted usage");
    # the default is the server's only, so inserts built from this model also work on schemas before the column
    max_gap_minutes: Mapped[int] = mapped_column(Integer, server_default="60")
    # server default only: rows written by older code (or at older revisions) get it from the database
    silent_after_hours: Mapped[int] = mapped_column(Integer, server_default="24")

    def __str__(self) -> str:
        return self.name


class Asset(db.Model):
    __tablename__ = "assets"
    __table_args__ = (
        UniqueConstraint("external_id", "source_type", name="uq_assets_external_source"),
        Index("ix_assets_client", "client_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255))
    source_type: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255), default="", server_default="")
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    acknowledged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    disregarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    client: Mapped[Client | None] = relationship(back_populates="assets")
    buckets: Mapped[list[Bucket]] = relationship(secondary=bucket_assets, back_populates="assets")

    @property
    def disregarded(self) -> bool:
        return self.disregarded_at is not None

    def __str__(self) -> str:
        return self.name or self.external_id


class Bucket(db.Model):
    __tablename__ = "buckets"
    __table_args__ = (
        UniqueConstraint("client_id", "name", name="uq_buckets_client_name"),
        Index("ix_buckets_unit_type", "unit_type_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    unit_type_id: Mapped[int] = mapped_column(ForeignKey("unit_types.id", ondelete="RESTRICT"))
    source_type: Mapped[str] = mapped_column(String(100))
    aggregation: Mapped[str] = mapped_column(String(20), default="sum", server_default="sum")
    # commit, base_price and overage_price read the term in force for the current period (BucketTerm, below);
    # setting them writes that term (billing/terms.py).
    reviewed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(back_populates="buckets")
    unit_type: Mapped[UnitType] = relationship()
    assets: Mapped[list[Asset]] = relationship(secondary=bucket_assets, back_populates="buckets")

    def __str__(self) -> str:
        return self.name


class Reading(db.Model):
    """Keyed by (asset, unit type, ts). On PostgreSQL range-partitioned by month on ts (database/partitions.py: a
    DEFAULT partition is created with the table by the listener it registers, month partitions ahead by the nightly
    job); on SQLite one table
    (a rowid table: measured faster to insert into at the collector's shape than one clustered on the key)."""

    __tablename__ = "readings"
    __table_args__ = (
        # PostgreSQL: the key's index carries the value, so billing's per-pair reads are index-only scans
        PrimaryKeyConstraint("asset_id", "unit_type_id", "ts", name="pk_readings", postgresql_include=["value"]),
        Index("ix_readings_unit_ts", "unit_type_id", "ts"),
        {"postgresql_partition_by": "RANGE (ts)"},
    )
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    unit_type_id: Mapped[int] = mapped_column(ForeignKey("unit_types.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    value: Mapped[Decimal] = mapped_column(MicroUnits)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AssetUnit(db.Model):
    """Summary kept by ingest: which unit types an asset reports, and when it last did (for unbound/provisioning)."""

    __tablename__ = "asset_units"
    __table_args__ = (Index("ix_asset_units_unit_last", "unit_type_id", "last_ts"),)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    unit_type_id: Mapped[int] = mapped_column(ForeignKey("unit_types.id", ondelete="CASCADE"), primary_key=True)
    first_ts: Mapped[datetime] = mapped_column(UTCDateTime)
    last_ts: Mapped[datetime] = mapped_column(UTCDateTime)


class MicroTotal(TypeDecorator):
    """A sum of MicroUnits: millionths as a wide integer (NUMERIC(38) on PostgreSQL: a day of values near 10^12 does
    not fit a bigint; an integer on SQLite, whose SUM is 64-bit anyway), read back as a Decimal with 6 places."""

    impl = BigInteger().with_variant(Numeric(38, 0), "postgresql")
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else to_micro(Decimal(value))

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else from_micro(value)


class ReadingDay(db.Model):
    """Count, sum and max of an asset's readings of a unit type over one UTC day, for days before the sealed
    horizon (ReadingDaysSealed): billing adds these up instead of reading every raw reading of a sealed day. Kept
    exact by whoever writes readings (database/reading_days.py)."""

    __tablename__ = "reading_days"
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    unit_type_id: Mapped[int] = mapped_column(ForeignKey("unit_types.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[Decimal] = mapped_column(MicroTotal)
    top: Mapped[Decimal] = mapped_column(MicroUnits)


class ReadingDaysSealed(db.Model):
    """One row: every UTC day before `before` has its ReadingDay rows (none: no day is sealed yet)."""

    __tablename__ = "reading_days_sealed"
    id: Mapped[int] = mapped_column(primary_key=True)
    before: Mapped[datetime] = mapped_column(UTCDateTime)


class ArchivedMonth(db.Model):
    """A month whose readings `archive-readings` wrote to a file and removed (its lines, terms and audit stay):
    it is not billed again and takes no new readings. `status` is `archiving` until the file is written and the
    readings are gone, then `archived`."""

    __tablename__ = "archived_months"
    period_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="archiving")
    readings: Mapped[int] = mapped_column(BigInteger, default=0)
    file: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    archived_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BillingReading(db.Model):
    __tablename__ = "billing_readings"
    __table_args__ = (
        # One ordinary line per bucket and period; one adjustment line per bucket, period and adjusted period.
        Index("uq_billing_bucket_period", "bucket_id", "period_start", unique=True,
              sqlite_where=text("adjusts_period IS NULL"), postgresql_where=text("adjusts_period IS NULL")),
        Index("uq_billing_adjustment", "bucket_id", "period_start", "adjusts_period", unique=True,
              sqlite_where=text("adjusts_period IS NOT NULL"), postgresql_where=text("adjusts_period IS NOT NULL")),
        Index("ix_billing_period_client", "period_start", "client_id"),
        # Covering index for the reports' per-period sums (the rows carry per-asset details: costly to visit).
        Index("ix_billing_period_totals", "period_start", "client_id", "bucket_id", "total_usage", "commit",
              "base_cost", "overage_cost", "buffer_cost", "buffer_units", "final_cost"),
        Index("ix_billing_client", "client_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # RESTRICT: a client or bucket goes only after its lines were removed explicitly (integrity.py, audited);
    # a finalized line is never removed (database/triggers.py).
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="RESTRICT"))
    bucket_id: Mapped[int] = mapped_column(ForeignKey("buckets.id", ondelete="RESTRICT"))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    # An adjustment line (DESIGN "Late usage"): the start of the finalized period whose late difference it bills.
    adjusts_period: Mapped[datetime | None] = mapped_column(UTCDateTime)
    total_usage: Mapped[Decimal] = mapped_column(Quantity)
    commit: Mapped[Decimal] = mapped_column(Quantity)
    base_price: Mapped[Decimal] = mapped_column(Price)
    overage_price: Mapped[Decimal] = mapped_column(Price)
    base_cost: Mapped[Decimal] = mapped_column(Money)
    overage_units: Mapped[Decimal] = mapped_column(Quantity)
    overage_cost: Mapped[Decimal] = mapped_column(Money)
    buffer_units: Mapped[Decimal] = mapped_column(Quantity)
    buffer_cost: Mapped[Decimal] = mapped_column(Money)
    final_cost: Mapped[Decimal] = mapped_column(Money)
    finalized: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    calculated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    client: Mapped[Client] = relationship()
    bucket: Mapped[Bucket] = relationship()


# The assets named in the per-asset details of each finalized line, written by the triggers of database/triggers.py
# (created with this table, the last of the two it joins, by the listeners database/triggers.py registers when it is
# imported, as app.py does): an asset a finalized line names cannot be deleted.
finalized_line_assets = Table(
    "finalized_line_assets",
    db.metadata,
    Column("line_id", ForeignKey("billing_readings.id", ondelete="RESTRICT"), primary_key=True),
    Column("asset_id", ForeignKey("assets.id", ondelete="RESTRICT"), primary_key=True),
    Index("ix_finalized_line_assets_asset", "asset_id"),
)
class BucketTerm(db.Model):
    """A bucket's commit and prices from a period on (DESIGN "Contract terms over time and true-ups")."""

    __tablename__ = "bucket_terms"
    __table_args__ = (UniqueConstraint("bucket_id", "effective_from", name="uq_bucket_terms_bucket_period"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    bucket_id: Mapped[int] = mapped_column(ForeignKey("buckets.id", ondelete="CASCADE"))
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)  # a period's start (first day 00:00 UTC)
    commit: Mapped[Decimal] = mapped_column(Quantity, default=Decimal("0"))
    base_price: Mapped[Decimal] = mapped_column(Price, default=Decimal("0"))
    overage_price: Mapped[Decimal] = mapped_column(Price, default=Decimal("0"))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by: Mapped[str] = mapped_column(String(255), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    bucket: Mapped[Bucket] = relationship()


def _current_period() -> datetime:
    now = utcnow()
    return datetime(now.year, now.month, 1, tzinfo=timezone.utc)


def _term_in_force(column: Any) -> Any:
    """The bucket's term figure in force for the current period: the latest term effective on or before it, else its
    first term (evaluated when each statement runs)."""
    current = bindparam("current_period", callable_=_current_period, type_=UTCDateTime())
    in_force = case((BucketTerm.effective_from <= current, 0), else_=1)
    latest_first = case((BucketTerm.effective_from <= current, BucketTerm.effective_from), else_=None)
    return (select(column).where(BucketTerm.bucket_id == Bucket.id)
            .order_by(in_force, latest_first.desc(), BucketTerm.effective_from).limit(1)
            .correlate_except(BucketTerm).scalar_subquery())


Bucket.commit = column_property(_term_in_force(BucketTerm.commit))
Bucket.base_price = column_property(_term_in_force(BucketTerm.base_price))
Bucket.overage_price = column_property(_term_in_force(BucketTerm.overage_price))


class LateUsageWaiver(db.Model):
    """A finalized period's late readings waived: those received up to `waived_at` no longer count as pending."""

    __tablename__ = "late_usage_waivers"
    id: Mapped[int] = mapped_column(primary_key=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime, unique=True)
    waived_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    waived_by: Mapped[str] = mapped_column(String(255), default="", server_default="")


class Projection(db.Model):
    __tablename__ = "projections"
    __table_args__ = (
        UniqueConstraint("bucket_id", "period_start", name="uq_projection_bucket_period"),
        Index("ix_projection_period_client", "period_start", "client_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    bucket_id: Mapped[int] = mapped_column(ForeignKey("buckets.id", ondelete="CASCADE"))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    current_usage: Mapped[Decimal] = mapped_column(Quantity)
    projected_usage: Mapped[Decimal] = mapped_column(Quantity)
    projected_cost: Mapped[Decimal] = mapped_column(Money)
    pct_of_commit: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    calculated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship()
    bucket: Mapped[Bucket] = relationship()


class ApiKey(db.Model):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client | None] = relationship()

    def __str__(self) -> str:
        return self.name


class Suppression(db.Model):
    __tablename__ = "suppressions"
    id: Mapped[int] = mapped_column(primary_key=True)
    pattern: Mapped[str] = mapped_column(String(500))
    type: Mapped[str] = mapped_column(String(10), default="exact", server_default="exact")
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def normal_email(email: str | None) -> str | None:
    """Emails are kept stripped and lower-case, so that uniqueness and login ignore case."""
    return email.strip().lower() if isinstance(email, str) else email


class User(UserMixin, db.Model):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="viewer", server_default="viewer")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_active(self) -> bool:  # flask-login refuses inactive users at once
        return bool(self.active)

    def get_id(self) -> str:
        """The login session's user id: `<id>:<session version>`, so a bumped version ends every session."""
        return f"{self.id}:{self.session_version or 0}"

    def end_sessions(self) -> None:
        """End every login session of this user (all devices, copied cookies included)."""
        self.session_version = (self.session_version or 0) + 1

    @property
    def password(self) -> None:
        """Write-only: the plain password is never kept, only its hash."""
        return None

    @password.setter
    def password(self, plain: str | None) -> None:
        """Store the hash of a new password; an empty value keeps the current one."""
        if plain:
            self.password_hash = generate_password_hash(plain)

    @validates("email")
    def _normal_email(self, key: str, email: str) -> str:
        return normal_email(email)

    def __str__(self) -> str:
        return self.email


@event.listens_for(User.password_hash, "set", active_history=True)
@event.listens_for(User.role, "set", active_history=True)
@event.listens_for(User.active, "set", active_history=True)
def _end_sessions_on_change(user: User, value: Any, old: Any, initiator: Any) -> None:
    """A new password, role or activation state ends the user's sessions, whichever route made the change."""
    if old is not NO_VALUE and value != old:
        user.end_sessions()


class AuditLog(db.Model):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_table_record", "table", "record_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(20))
    table: Mapped[str] = mapped_column("table", String(64))
    record_id: Mapped[str | None] = mapped_column(String(64))
    api_key_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(Integer)
    old_values: Mapped[dict | None] = mapped_column(JSON)
    new_values: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Read-only: user_id and api_key_id are plain ids (no foreign key), so an entry outlives its user or key.
    user: Mapped[User | None] = relationship(primaryjoin="foreign(AuditLog.user_id) == User.id", viewonly=True)
    api_key: Mapped[ApiKey | None] = relationship(primaryjoin="foreign(AuditLog.api_key_id) == ApiKey.id",
                                                  viewonly=True)


class JobRun(db.Model):
    __tablename__ = "job_runs"
    __table_args__ = (
        Index(
            "uq_job_runs_active_lock",
            "lock_key",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index("ix_job_runs_kind_created", "kind", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    lock_key: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="queued", server_default="queued")
    progress: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    message: Mapped[str] = mapped_column(Text, default="", server_default="")
    rq_job_id: Mapped[str | None] = mapped_column(String(100))
    requested_by: Mapped[str] = mapped_column(String(255), default="", server_default="")
    result_path: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def active(self) -> bool:
        return self.status in JOB_ACTIVE


WEBHOOK_EVENTS = ("billing.run.finished", "billing.period.finalized", "asset.silent", "usage.anomaly",
                  "bucket.projected_over")
WEBHOOK_TEST_EVENT = "webhook.test"


class Webhook(db.Model):
    """An endpoint that receives events; `secret` holds the signing secret encrypted (webhooks/signing.py)."""

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(Text)
    events: Mapped[list] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __str__(self) -> str:
        return self.url


class WebhookEvent(db.Model):
    """An event as emitted (the outbox): `dispatched_at` is set once its deliveries are queued; `webhook_id` names
    the one webhook a test event is for (null: every enabled webhook subscribed to the type)."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_pending", "dispatched_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    webhook_id: Mapped[int | None] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookDelivery(db.Model):
    """One attempt to deliver an event to a webhook."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_webhook_event", "webhook_id", "event_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(50))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    webhook: Mapped[Webhook] = relationship()

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class AlertEpisode(db.Model):
    """A stretch of time during which a condition (silent asset, usage anomaly, projected over) holds: its event is
    emitted when the episode opens, and again only after it was cleared. One open episode per (kind, subject)."""

    __tablename__ = "alert_episodes"
    __table_args__ = (
        Index("uq_alert_episodes_open", "kind", "subject", unique=True,
              sqlite_where=text("cleared_at IS NULL"), postgresql_where=text("cleared_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_id: Mapped[str | None] = mapped_column(String(40))


Client.bucket_count = column_property(
    select(func.count(Bucket.id)).where(Bucket.client_id == Client.id).correlate_except(Bucket).scalar_subquery(),
    deferred=True,
)

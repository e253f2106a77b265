"""Contract terms over time and late usage billed as adjustment lines (issue 14).

- bucket_terms: every existing bucket gets one term, effective from the month it was created in, with its current
  commit and prices; then buckets.commit, base_price and overage_price go (models.py reads them from the terms).
- billing_readings.adjusts_period; the unique (bucket_id, period_start) becomes two partial unique indexes: one
  ordinary line per bucket and period, one adjustment line per bucket, period and adjusted period.
- late_usage_waivers: a finalized period's late readings waived up to a moment.
- Triggers: a term that a finalized line was computed from cannot be inserted over, updated or deleted (a frozen copy
  of schema_triggers.py's; tests/test_integrity_schema.py holds them equal).

SQLite: billing_readings is rebuilt (batch "recreate") with foreign keys off, as SQLite's ALTER TABLE procedure asks
(finalized_line_assets' RESTRICT key would refuse the old table's drop), then checked with foreign_key_check; its
finalized-line triggers are created again.

Revision ID: bucket_terms_adjustments
Revises: alerts_webhooks
Create Date: 2026-11-26 18:00:00
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "bucket_terms_adjustments"
down_revision = "alerts_webhooks"
branch_labels = None
depends_on = None

TERM_REFUSAL = "a contract term that a finalized billing line was computed from cannot be changed"


def _sqlite_governs(term: str) -> str:
    return (
        "EXISTS (SELECT 1 FROM billing_readings AS l WHERE l.bucket_id = {t}.bucket_id AND l.finalized"
        " AND l.adjusts_period IS NULL AND (l.period_start >= {t}.effective_from OR NOT EXISTS (SELECT 1 FROM"
        " bucket_terms AS o WHERE o.bucket_id = {t}.bucket_id AND o.effective_from < {t}.effective_from))"
        " AND NOT EXISTS (SELECT 1 FROM bucket_terms AS o WHERE o.bucket_id = {t}.bucket_id"
        " AND o.effective_from > {t}.effective_from AND o.effective_from <= l.period_start))"
    ).format(t=term)


_SQLITE_INDEX_ASSETS = """
    INSERT INTO finalized_line_assets (line_id, asset_id)
    SELECT DISTINCT NEW.id, json_extract(item.value, '$.asset_id') FROM json_each(NEW.details, '$.assets') AS item;
"""

LINE_TRIGGERS_SQLITE = (
    "CREATE TRIGGER finalized_line_no_update BEFORE UPDATE ON billing_readings FOR EACH ROW WHEN OLD.finalized"
    " BEGIN SELECT RAISE(ABORT, 'a finalized billing line cannot be changed'); END",
    "CREATE TRIGGER finalized_line_no_delete BEFORE DELETE ON billing_readings FOR EACH ROW WHEN OLD.finalized"
    " BEGIN SELECT RAISE(ABORT, 'a finalized billing line cannot be deleted'); END",
    "CREATE TRIGGER finalized_line_assets_on_insert AFTER INSERT ON billing_readings FOR EACH ROW"
    f" WHEN NEW.finalized BEGIN {_SQLITE_INDEX_ASSETS} END",
    "CREATE TRIGGER finalized_line_assets_on_finalize AFTER UPDATE OF finalized ON billing_readings FOR EACH ROW"
    f" WHEN NEW.finalized AND NOT OLD.finalized BEGIN {_SQLITE_INDEX_ASSETS} END",
)

TERM_TRIGGERS = {
    "sqlite": (
        f"CREATE TRIGGER finalized_term_no_insert BEFORE INSERT ON bucket_terms FOR EACH ROW WHEN {_sqlite_governs('NEW')}"
        f" BEGIN SELECT RAISE(ABORT, '{TERM_REFUSAL}'); END",
        f"CREATE TRIGGER finalized_term_no_update BEFORE UPDATE ON bucket_terms FOR EACH ROW"
        f" WHEN {_sqlite_governs('OLD')} OR {_sqlite_governs('NEW')} BEGIN SELECT RAISE(ABORT, '{TERM_REFUSAL}'); END",
        f"CREATE TRIGGER finalized_term_no_delete BEFORE DELETE ON bucket_terms FOR EACH ROW WHEN {_sqlite_governs('OLD')}"
        f" BEGIN SELECT RAISE(ABORT, '{TERM_REFUSAL}'); END",
    ),
    "postgresql": (
        """CREATE OR REPLACE FUNCTION term_governs_finalized_line(term_bucket integer, term_from timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM billing_readings AS l WHERE l.bucket_id = term_bucket AND l.finalized
        AND l.adjusts_period IS NULL
        AND (l.period_start >= term_from OR NOT EXISTS (SELECT 1 FROM bucket_terms AS o
                                                        WHERE o.bucket_id = term_bucket AND o.effective_from < term_from))
        AND NOT EXISTS (SELECT 1 FROM bucket_terms AS o WHERE o.bucket_id = term_bucket
                        AND o.effective_from > term_from AND o.effective_from <= l.period_start))
$$""",
        f"""CREATE OR REPLACE FUNCTION refuse_finalized_term_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP <> 'INSERT' AND term_governs_finalized_line(OLD.bucket_id, OLD.effective_from))
       OR (TG_OP <> 'DELETE' AND term_governs_finalized_line(NEW.bucket_id, NEW.effective_from)) THEN
        RAISE EXCEPTION USING ERRCODE = 'restrict_violation', MESSAGE = '{TERM_REFUSAL}';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$""",
        "CREATE TRIGGER finalized_term_immutable BEFORE INSERT OR UPDATE OR DELETE ON bucket_terms FOR EACH ROW"
        " EXECUTE FUNCTION refuse_finalized_term_change()",
    ),
}
DROP_TERM_TRIGGERS = {
    "sqlite": ("DROP TRIGGER IF EXISTS finalized_term_no_insert", "DROP TRIGGER IF EXISTS finalized_term_no_update",
               "DROP TRIGGER IF EXISTS finalized_term_no_delete"),
    "postgresql": ("DROP TRIGGER IF EXISTS finalized_term_immutable ON bucket_terms",
                   "DROP FUNCTION IF EXISTS refuse_finalized_term_change()",
                   "DROP FUNCTION IF EXISTS term_governs_finalized_line(integer, timestamptz)"),
}
TERM_COLUMNS = (("commit", sa.Numeric(24, 6)), ("base_price", sa.Numeric(18, 6)), ("overage_price", sa.Numeric(18, 6)))
ORDINARY = "adjusts_period IS NULL"
ADJUSTMENT = "adjusts_period IS NOT NULL"


def _utc(value):
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is None:
        return datetime.now(timezone.utc)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _stamp(value: datetime, sqlite: bool):
    """A UTC datetime as the app's UTCDateTime stores it."""
    return value.replace(tzinfo=None) if sqlite else value


class _ForeignKeysOff:
    """SQLite: foreign keys off while a table referenced with RESTRICT is rebuilt (PRAGMA foreign_keys is a no-op
    inside a transaction, so the work so far is committed first); foreign_key_check must come back empty."""

    def __init__(self, bind) -> None:
        self.raw = bind.connection.dbapi_connection
        self.bind = bind

    def __enter__(self) -> None:
        if self.raw.in_transaction:
            self.raw.commit()
        self.raw.execute("PRAGMA foreign_keys=OFF")

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            broken = self.bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"foreign keys broken by the rebuild: {broken[:5]}")
        if self.raw.in_transaction:
            (self.raw.commit if exc[0] is None else self.raw.rollback)()
        self.raw.execute("PRAGMA foreign_keys=ON")


def _backfill_terms(sqlite: bool) -> None:
    bind = op.get_bind()
    buckets = sa.table("buckets", sa.column("id"), sa.column("created_at"),
                       *(sa.column(name) for name, _ in TERM_COLUMNS))
    terms = sa.table("bucket_terms", sa.column("bucket_id"), sa.column("effective_from"), sa.column("note"),
                     sa.column("created_by"), sa.column("created_at"), *(sa.column(name) for name, _ in TERM_COLUMNS))
    now = datetime.now(timezone.utc)
    rows = []
    for row in bind.execute(sa.select(buckets)).mappings():
        created = _utc(row["created_at"])
        rows.append({"bucket_id": row["id"], "commit": row["commit"], "base_price": row["base_price"],
                     "overage_price": row["overage_price"], "note": "The bucket's figures when terms were introduced",
                     "created_by": "migration", "created_at": _stamp(now, sqlite),
                     "effective_from": _stamp(datetime(created.year, created.month, 1, tzinfo=timezone.utc), sqlite)})
    if rows:
        bind.execute(sa.insert(terms), rows)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    sqlite = dialect == "sqlite"
    op.create_table(
        "bucket_terms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bucket_id", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, kind, nullable=False) for name, kind in TERM_COLUMNS),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sa.String(length=255), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bucket_id"], ["buckets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bucket_id", "effective_from", name="uq_bucket_terms_bucket_period"),
    )
    _backfill_terms(sqlite)
    for name, _ in TERM_COLUMNS:
        if sqlite:  # SQLite >= 3.35 drops a plain column in place (no rebuild of a table others reference)
            op.execute(f'ALTER TABLE buckets DROP COLUMN "{name}"')
        else:
            op.drop_column("buckets", name)
    op.create_table(
        "late_usage_waivers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waived_by", sa.String(length=255), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("period_start"),
    )
    adjusts = sa.Column("adjusts_period", sa.DateTime(timezone=True), nullable=True)
    if sqlite:
        with _ForeignKeysOff(op.get_bind()):
            with op.batch_alter_table("billing_readings", recreate="always") as batch_op:
                batch_op.add_column(adjusts)
                batch_op.drop_constraint("uq_billing_bucket_period", type_="unique")
            _line_indexes()
            for statement in LINE_TRIGGERS_SQLITE:
                op.execute(statement)
    else:
        op.add_column("billing_readings", adjusts)
        op.drop_constraint("uq_billing_bucket_period", "billing_readings", type_="unique")
        _line_indexes()
    for statement in TERM_TRIGGERS[dialect]:
        op.execute(statement)


def _line_indexes() -> None:
    op.create_index("uq_billing_bucket_period", "billing_readings", ["bucket_id", "period_start"], unique=True,
                    sqlite_where=sa.text(ORDINARY), postgresql_where=sa.text(ORDINARY))
    op.create_index("uq_billing_adjustment", "billing_readings", ["bucket_id", "period_start", "adjusts_period"],
                    unique=True, sqlite_where=sa.text(ADJUSTMENT), postgresql_where=sa.text(ADJUSTMENT))


def downgrade() -> None:
    """Back to one commit and price per bucket (the term in force now) and no adjustment lines: refused while any
    adjustment line exists (a finalized one can never go)."""
    bind = op.get_bind()
    dialect = bind.dialect.name
    sqlite = dialect == "sqlite"
    if bind.execute(sa.text(f"SELECT count(*) FROM billing_readings WHERE {ADJUSTMENT}")).scalar():
        raise RuntimeError("billing_readings holds adjustment lines: this revision cannot be downgraded")
    for statement in DROP_TERM_TRIGGERS[dialect]:
        op.execute(statement)
    op.drop_index("uq_billing_adjustment", table_name="billing_readings")
    op.drop_index("uq_billing_bucket_period", table_name="billing_readings")
    if sqlite:
        with _ForeignKeysOff(bind):
            with op.batch_alter_table("billing_readings", recreate="always") as batch_op:
                batch_op.drop_column("adjusts_period")
                batch_op.create_unique_constraint("uq_billing_bucket_period", ["bucket_id", "period_start"])
            for statement in LINE_TRIGGERS_SQLITE:
                op.execute(statement)
    else:
        op.drop_column("billing_readings", "adjusts_period")
        op.create_unique_constraint("uq_billing_bucket_period", "billing_readings", ["bucket_id", "period_start"])
    op.drop_table("late_usage_waivers")
    for name, kind in TERM_COLUMNS:
        if sqlite:
            op.execute(f'ALTER TABLE buckets ADD COLUMN "{name}" NUMERIC DEFAULT \'0\' NOT NULL')
        else:
            op.add_column("buckets", sa.Column(name, kind, server_default="0", nullable=False))
    now = datetime.now(timezone.utc)
    current = _stamp(datetime(now.year, now.month, 1, tzinfo=timezone.utc), sqlite)
    for name, _ in TERM_COLUMNS:
        bind.execute(sa.text(
            f'UPDATE buckets SET "{name}" = COALESCE((SELECT t."{name}" FROM bucket_terms AS t '
            "WHERE t.bucket_id = buckets.id ORDER BY CASE WHEN t.effective_from <= :current THEN 0 ELSE 1 END, "
            "CASE WHEN t.effective_from <= :current THEN t.effective_from END DESC, t.effective_from LIMIT 1), 0)"),
            {"current": current})
    op.drop_table("bucket_terms")

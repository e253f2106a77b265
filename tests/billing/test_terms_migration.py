"""The terms migration on a database with billed data: one term per bucket from its creation month with its figures;
finalized lines, their triggers and the assets they name survive the rebuild; downgrade restores the figures."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa

from extensions import db
from models import Bucket, BucketTerm
from tests.database.test_integrity_schema import migrated_app, refused

BEFORE = "alerts_webhooks"
SEP, OCT = datetime(2026, 9, 1), datetime(2026, 10, 1)


def _stamp(app, moment: datetime):
    return moment if app.config["DATABASE_URL"].startswith("postgresql") else moment.strftime("%Y-%m-%d %H:%M:%S.000000")


def test_upgrade_gives_each_bucket_its_term_and_keeps_finalized_lines_guarded(tmp_path):
    app = migrated_app(tmp_path, BEFORE)
    with app.app_context():
        with db.engine.begin() as conn:
            run = lambda sql, **values: conn.execute(sa.text(sql), values)  # noqa: E731
            run("INSERT INTO clients (id, name, enabled, created_at) VALUES (1, 'Acme', true, :at)",
                at=_stamp(app, SEP))
            run("INSERT INTO unit_types (id, name) VALUES (1, 'gb')")
            run('INSERT INTO buckets (id, client_id, name, unit_type_id, source_type, aggregation, "commit", base_price, '
                "overage_price, reviewed, enabled, created_at) VALUES (1, 1, 'Storage', 1, 'vm', 'sum', 100, 2, 3, "
                "true, true, :at)", at=_stamp(app, datetime(2026, 3, 10, 8, 30)))
            run("INSERT INTO assets (id, external_id, source_type, name, description, acknowledged, enabled, "
                "created_at, client_id) VALUES (1, 'disk-1', 'vm', '', '', true, true, :at, 1)", at=_stamp(app, SEP))
            run('INSERT INTO billing_readings (client_id, bucket_id, period_start, period_end, total_usage, "commit", '
                "base_price, overage_price, base_cost, overage_units, overage_cost, buffer_units, buffer_cost, "
                "final_cost, finalized, finalized_at, calculated_at, details) VALUES (1, 1, :p, :e, 120, 100, 2, 3, "
                "200, 20, 60, 0, 0, 260, true, :e, :e, :d)", p=_stamp(app, SEP), e=_stamp(app, OCT),
                d='{"assets": [{"asset_id": 1, "usage": "120"}]}')
        db.engine.dispose()
    upgrade = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert upgrade.exit_code == 0, upgrade.output
    with app.app_context():
        [term] = db.session.scalars(sa.select(BucketTerm)).all()
        assert (term.bucket_id, term.effective_from, term.commit, term.base_price, term.overage_price,
                term.created_by) == (1, datetime(2026, 3, 1, tzinfo=timezone.utc), Decimal(100), Decimal(2),
                                     Decimal(3), "migration")
        assert db.session.get(Bucket, 1).commit == Decimal(100)
        db.session.remove()
        db.engine.dispose()
    assert refused(app, "DELETE FROM billing_readings WHERE id = 1")
    assert refused(app, "DELETE FROM assets WHERE id = 1")
    assert refused(app, 'UPDATE bucket_terms SET "commit" = 1')
    line = ("INSERT INTO billing_readings (client_id, bucket_id, period_start, period_end, adjusts_period, total_usage, "
            '"commit", base_price, overage_price, base_cost, overage_units, overage_cost, buffer_units, buffer_cost, '
            "final_cost, finalized, calculated_at, details) VALUES (1, 1, :q, :e, {adjusts}, 5, 0, 2, 3, 0, 5, 15, 0, 0, "
            "15, false, :q, '{{}}')")
    october = dict(q=_stamp(app, OCT), e=_stamp(app, datetime(2026, 11, 1)))
    assert not refused(app, line.format(adjusts=":p"), p=_stamp(app, SEP), **october)  # an adjustment line for Sep
    assert refused(app, line.format(adjusts=":p"), p=_stamp(app, SEP), **october)  # only one per bucket and periods
    assert not refused(app, line.format(adjusts="NULL"), **october)  # October's ordinary line beside it
    assert refused(app, line.format(adjusts="NULL"), **october)
    assert not refused(app, "DELETE FROM billing_readings WHERE NOT finalized")
    downgrade = app.test_cli_runner().invoke(args=["db", "downgrade", BEFORE])
    assert downgrade.exit_code == 0, downgrade.output
    with app.app_context():
        with db.engine.connect() as conn:
            assert conn.execute(sa.text('SELECT "commit", base_price, overage_price FROM buckets')).one() == (100, 2, 3)
            assert "bucket_terms" not in sa.inspect(conn).get_table_names()
        db.engine.dispose()
    assert refused(app, "DELETE FROM billing_readings WHERE id = 1")

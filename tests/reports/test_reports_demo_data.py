"""`demo-data` builds a provider the reports have something to say about: over, under and mixed clients,
unbound, new and disregarded assets, billed history and this period's projections."""
from sqlalchemy import func, select

from commands.demo_data import load_demo_data
from extensions import db
from models import Asset, BillingReading, JobRun, Projection
from reports import revenue
from reports.assets import tile_counts


def test_demo_data_has_every_kind_of_client_and_asset(app):
    with app.app_context():
        summary = load_demo_data(clients=12, assets=240, months=3, seed=3)
        assert "2 period(s) billed and finalized" in summary
        counts = revenue.client_status_counts(db.session)
        assert counts["over"] > 0 and counts["under"] > 0 and counts["mixed"] > 0
        tiles = tile_counts(db.session)
        assert tiles["clients"] == 12 and tiles["unbound"] > 0 and tiles["new"] > 0 and tiles["unassigned"] > 0
        assert db.session.scalar(select(func.count(Asset.id)).where(Asset.disregarded_at.is_not(None))) > 0
        assert db.session.scalar(select(func.count(func.distinct(BillingReading.period_start)))) == 2
        assert db.session.scalar(select(func.count(Projection.id))) > 0
        assert revenue.mom_revenue(db.session).change_pct is not None
        runs = db.session.execute(select(JobRun.kind, JobRun.status, JobRun.requested_by)).all()
        assert sorted(runs) == [("billing", "done", "demo-data")] * 2 + [("projection", "done", "demo-data")]
        assert load_demo_data(clients=12, assets=240, months=3, seed=3).startswith("demo data already loaded")

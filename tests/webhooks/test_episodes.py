"""silent, anomaly and projected-over events fire once per episode: again only after the condition cleared."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import AlertEpisode, Asset, Bucket, WebhookEvent, utcnow
from webhooks.detect import detect_alerts
from webhooks.episodes import sync_episodes
from tests.webhooks.helpers import asset, bucket, last_periods, line, owner, projection, read, unit


def test_an_event_fires_when_a_condition_starts_and_again_only_after_it_cleared(app):
    with app.app_context():
        now = utcnow()
        first = sync_episodes(db.session, "asset.silent", {"1:1": {"asset_id": 1}, "2:1": {"asset_id": 2}}, now)
        db.session.commit()
        assert [(e.type, e.data) for e in first] == [("asset.silent", {"asset_id": 1}), ("asset.silent", {"asset_id": 2})]
        assert sync_episodes(db.session, "asset.silent", {"1:1": {"asset_id": 1}, "2:1": {}}, now) == []
        assert sync_episodes(db.session, "asset.silent", {"2:1": {}}, now + timedelta(hours=1)) == []  # 1:1 cleared
        db.session.commit()
        again = sync_episodes(db.session, "asset.silent", {"1:1": {"asset_id": 1}, "2:1": {}}, now + timedelta(hours=2))
        db.session.commit()
        assert [e.data for e in again] == [{"asset_id": 1}]
        episodes = db.session.execute(select(AlertEpisode.subject, AlertEpisode.cleared_at.is_(None))
                                      .order_by(AlertEpisode.id)).all()
        assert episodes == [("1:1", False), ("2:1", True), ("1:1", True)]
        assert db.session.scalar(select(AlertEpisode.event_id).where(AlertEpisode.id == 3)) == again[0].id
        assert len(db.session.scalars(select(WebhookEvent)).all()) == 3
        # kinds are separate: the same subject under another kind is its own episode
        assert len(sync_episodes(db.session, "usage.anomaly", {"1:1": {}}, now)) == 1


def test_the_database_holds_one_open_episode_per_kind_and_subject(app):
    with app.app_context():
        db.session.add(AlertEpisode(kind="asset.silent", subject="1:1"))
        db.session.commit()
        db.session.add(AlertEpisode(kind="asset.silent", subject="1:1"))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        db.session.add(AlertEpisode(kind="asset.silent", subject="1:1", cleared_at=utcnow()))
        db.session.commit()


def test_detection_covers_silent_assets_anomalies_and_buckets_projected_over(app):
    with app.app_context():
        now = utcnow()
        gb = unit("gb")
        quiet = asset("quiet-vm", owner())
        storage = bucket("Storage", gb, [quiet], commit="100")
        read(quiet, gb, now - timedelta(hours=30))
        for period, usage in zip(last_periods(3), ("10", "10", "10")):
            line(storage, period, usage)
        projection(storage, "150")  # mean 10 -> +1,400 %; and over its commit of 100
        db.session.commit()
        found = detect_alerts(db.session, Decimal(50), now)
        db.session.commit()
        assert (found.silent, found.anomalies, found.projected_over, found.events) == (1, 1, 1, 3)
        events = {e.type: e.data for e in db.session.scalars(select(WebhookEvent))}
        assert events["asset.silent"]["asset_id"] == quiet.id and events["asset.silent"]["hours_silent"] == "30.00"
        assert events["usage.anomaly"]["bucket_id"] == events["bucket.projected_over"]["bucket_id"] == storage.id
        assert (events["usage.anomaly"]["projected_usage"], events["usage.anomaly"]["baseline_usage"],
                events["usage.anomaly"]["pct_change"]) == ("150.000000", "10.000000", "1400.00")
        assert (events["bucket.projected_over"]["projected_usage"], events["bucket.projected_over"]["commit"]) == (
            "150.000000", "100.000000")
        assert detect_alerts(db.session, Decimal(50), now).events == 0
        db.session.get(Bucket, storage.id).enabled = False  # every condition of this bucket clears
        db.session.commit()
        cleared = detect_alerts(db.session, Decimal(50), now)
        db.session.commit()
        assert (cleared.silent, cleared.anomalies, cleared.projected_over, cleared.events) == (0, 0, 0, 0)
        db.session.get(Bucket, storage.id).enabled = True
        db.session.get(Asset, quiet.id).enabled = True
        db.session.commit()
        assert detect_alerts(db.session, Decimal(50), now).events == 3  # a new episode of each

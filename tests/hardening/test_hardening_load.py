"""Under load, nothing is lost and the bill is exact: 8 ingest clients post overlapping batches through gunicorn
(3 processes on 127.0.0.1) while billing and projection runs go on in a real worker (`flask --app app worker`), on the test's own
database (SQLite file or PostgreSQL schema) and Redis. bench/load.py runs the same on a larger scale.

Bounded for CI: 6,000 distinct readings (5 unit types x 60 assets x 20 hours), each posted twice in batches of
250 = 48 requests, plus 16 page/API reads by the same clients. METERDESK_LOAD_READINGS makes it larger.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from billing.periods import current_period_start, previous_period
from billing.run import bill_period
from extensions import db

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _bench():
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


load = _bench()
ASSETS = 60


def test_eight_clients_post_overlapping_batches_while_billing_runs_and_nothing_is_lost(app, tmp_path):
    readings = int(os.environ.get("METERDESK_LOAD_READINGS", "6000"))
    seeded = load.seed(app, ASSETS)
    period = previous_period(current_period_start())
    steps = max(1, readings // (ASSETS * len(load.UNITS)))
    items = load.make_readings(ASSETS, steps, period)
    batches = load.overlapping_batches(items, 250)
    env = load.server_env(app.config)
    extra = [("GET", "/api/v1/openapi.json"), ("GET", "/healthz")] * 8
    server = load.start_gunicorn(env, load.free_port(), workers=3, log=tmp_path / "gunicorn.log")
    port = int(server.args[server.args.index("-b") + 1].rsplit(":", 1)[1])
    jobs = load.JobsDuringLoad(app, env, period, log=tmp_path / "worker.log")
    try:
        jobs.start()
        assert jobs.busy.wait(60), "the first billing run never started"
        result = load.post_batches(port, seeded["key"], batches, clients=8, extra=extra)
    finally:
        states = jobs.finish()
        load.stop(server)

    distinct_sent, sent_total = load.sent_summary(items)
    assert distinct_sent == len(items) == steps * ASSETS * 5
    assert result.requests == len(batches) + len(extra)
    assert result.errors == [] and set(result.statuses) == {200}, (result.statuses, result.errors[:3])
    assert (result.accepted, result.duplicates, result.rejected) == (distinct_sent, distinct_sent, 0)
    assert states and {status for status, _ in states.values()} == {"done"}, states
    with app.app_context():
        stored, distinct_stored, stored_total = load.stored_summary(db.session)
        assert (stored, distinct_stored, stored_total) == (distinct_sent, distinct_sent, sent_total)
        bill_period(db.session, period)
        after_load = load.bill_lines(db.session, period)
        bill_period(db.session, period)
        quiet = load.bill_lines(db.session, period)
        reference = load.reference_bill(db.session, period)
    assert len(after_load) == load.CLIENTS * len(load.UNITS)
    assert after_load == quiet == reference
    assert sum(line[9] for line in after_load.values()) > 0

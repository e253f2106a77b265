"""No N+1: the client page, the bucket page and Unbound Assets run the same number of SQL statements for 3 assets as
for 30."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import event

from billing.periods import current_period_start
from extensions import db
from tests import factories as f


@contextmanager
def counted(app):
    """Count the SQL statements the app runs inside the block."""
    statements = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(1)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def world(app, count: int, name: str) -> tuple[int, int]:
    """A client with `count` assets bound to one bucket and `count` unbound, unacknowledged ones, all reporting."""
    start = current_period_start(datetime.now(timezone.utc)).isoformat()
    with app.app_context():
        owner = f.client(name)
        unit, other = f.unit_type("gb"), f.unit_type("vm-hours")
        bound = [f.asset(f"{name}-b{i}", owner) for i in range(count)]
        loose = [f.asset(f"{name}-u{i}", owner) for i in range(count)]
        for asset in bound:
            f.readings(asset, [(start, "1")], unit)
        for asset in loose:
            asset.acknowledged = False
            f.readings(asset, [(start, "2")], other)
        bucket = f.bucket(f"{name} GB", owner=owner, unit=unit, assets=bound)
        db.session.commit()
        return owner.id, bucket.id


def statements_for(app, client, url: str) -> int:
    client.get(url)  # warm: the first request loads the user, settings and caches
    with counted(app) as statements:
        assert client.get(url).status_code == 200
    return len(statements)


def test_pages_run_a_fixed_number_of_statements(app, admin_client):
    small_client, small_bucket = world(app, 3, "Small")
    big_client, big_bucket = world(app, 30, "Big")
    small = statements_for(app, admin_client, f"/admin/clients/{small_client}")
    assert 5 < small == statements_for(app, admin_client, f"/admin/clients/{big_client}")
    assert statements_for(app, admin_client, f"/admin/buckets/page/{small_bucket}") == statements_for(
        app, admin_client, f"/admin/buckets/page/{big_bucket}")
    small = statements_for(app, admin_client, "/admin/assets/unbound/?search=Small")
    assert small == statements_for(app, admin_client, "/admin/assets/unbound/?search=Big")

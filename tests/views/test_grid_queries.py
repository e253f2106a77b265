"""No N+1 on the grids: a page of 12 rows runs as many statements as a page of 3 (issue 12)."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import event, update

from api.keys import create_api_key
from billing.periods import current_period_start, previous_period
from extensions import db
from models import AuditLog, User
from tests import factories
from tests.reportdata import add_line, add_projection

PAGES = ["/admin/bucket/", "/admin/asset/", "/admin/assets/disregarded/", "/admin/projection/",
         "/admin/billingreading/", "/admin/auditlog/", "/admin/apikey/", "/admin/client/",
         "/admin/bucket/?search=Client", "/admin/auditlog/?search=admin"]


def add_rows(start: int, count: int) -> None:
    """`count` clients, each with an asset, a disregarded asset, a bucket, a billing line, a projection and a key."""
    this = current_period_start()
    for n in range(start, start + count):
        owner = factories.client(f"Client {n}")
        asset = factories.asset(f"vm-{n}", owner)
        factories.asset(f"old-{n}", owner, disregarded_at=datetime(2026, 11, 2, tzinfo=timezone.utc))
        bucket = factories.bucket(f"Bucket {n}", owner=owner, assets=[asset], commit="10")
        add_line(bucket, previous_period(this), "12")
        add_projection(bucket, this, "5", "20")
        db.session.flush()
        create_api_key(f"key {n}", "ingest", owner.id)
    admin = db.session.query(User).filter_by(email="admin@example.com").one()
    db.session.execute(update(AuditLog).values(user_id=admin.id))
    db.session.commit()


def statements(app, client, url: str) -> int:
    seen = []
    with app.app_context():
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
    return len(seen)


@pytest.mark.parametrize("url", PAGES)
def test_statements_do_not_grow_with_rows(app, admin_client, url):
    with app.app_context():
        add_rows(0, 3)
    few = statements(app, admin_client, url)
    with app.app_context():
        add_rows(3, 9)
    assert statements(app, admin_client, url) == few

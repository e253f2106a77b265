"""In a real browser: every chart of the dashboard, Over/Under and an asset page draws, offline; filters and bind work."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from extensions import db
from ingest.store import NewReading, store_readings
from models import Asset, Bucket, Client, UnitType
from tests.conftest import PASSWORD, make_user
from tests.livesrv import browser_page, live_server, login
from tests.reportdata import load_provider

pytestmark = pytest.mark.browser
NOW = datetime.now(timezone.utc)


@pytest.fixture
def provider(app):
    """The hand-computed provider, plus Acme's vm-7 reporting vm-hours with no bucket binding it."""
    make_user(app, "staff")
    with app.app_context():
        ids = load_provider(NOW)
        acme = db.session.get(Client, ids["acme"])
        asset = Asset(external_id="vm-7", source_type="vcenter", client=acme, acknowledged=True)
        db.session.add(asset)
        db.session.flush()
        store_readings(db.session, [NewReading(asset.id, ids["vm"], NOW - timedelta(days=d), Decimal(d + 1))
                                    for d in range(1, 6)])
        db.session.commit()
        ids["loose"] = asset.id
        return ids


def wait_for_charts(page, count: int) -> None:
    page.locator(".plot-container").nth(count - 1).wait_for(state="attached", timeout=15000)
    assert page.locator(".plot-container").count() == count


def test_dashboard_and_over_under_charts_draw(app, provider):
    with live_server(app) as base, browser_page(base) as page:
        login(page, base, "staff@example.com", PASSWORD)
        page.goto(f"{base}/admin/")
        wait_for_charts(page, 4)
        assert page.locator("[data-tile=projected_rev] .tile-value").inner_text() == "$470.00"
        page.screenshot(path="/tmp/meterdesk_dashboard.png", full_page=True)

        page.click("a.dropdown-toggle:has-text('Billing')")
        page.click("a[href='/admin/over-under/']")
        page.wait_for_url(f"{base}/admin/over-under/")
        wait_for_charts(page, 1)
        assert page.locator("tr[data-client-status]").count() == 3
        page.screenshot(path="/tmp/meterdesk_over_under.png", full_page=True)

        page.click("a[data-status=mixed]")
        page.wait_for_url("**status=mixed")
        wait_for_charts(page, 1)
        assert page.locator("tr[data-client-status]").all_inner_texts()[0].startswith("Acme")
        page.click("a[data-status=over]")
        page.wait_for_url("**status=over")
        assert page.locator("text=No clients match this filter.").count() == 1
        assert page.console_errors == [] and page.foreign_requests == []


def test_asset_usage_chart_loads_from_json(app, provider):
    with live_server(app) as base, browser_page(base) as page:
        login(page, base, "staff@example.com", PASSWORD)
        page.goto(f"{base}/admin/assets/page/{provider['loose']}")
        wait_for_charts(page, 1)
        assert page.locator("text=Loading usage…").count() == 0
        assert page.console_errors == [] and page.foreign_requests == []


def test_staff_binds_an_unbound_asset(app, provider):
    with app.app_context():
        vm = db.session.get(UnitType, provider["vm"])
        db.session.add(Bucket(client_id=provider["acme"], name="Acme VMs 2", unit_type=vm, source_type="vcenter"))
        db.session.commit()
    with live_server(app) as base, browser_page(base) as page:
        login(page, base, "staff@example.com", PASSWORD)
        page.goto(f"{base}/admin/assets/unbound/")
        row = page.locator("table tbody tr", has_text="vm-7")
        row.locator("input[name=rowid]").check()
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("text=With selected")
        page.click("a:has-text('Bind to client bucket')")
        page.wait_for_selector("text=1 asset usages bound to a bucket.")
        assert page.locator("table tbody tr", has_text="vm-7").count() == 0
        assert page.locator("text=No unbound assets").count() == 1
        assert page.console_errors == [] and page.foreign_requests == []

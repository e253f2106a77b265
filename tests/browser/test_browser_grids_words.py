"""In a real browser: row highlights on consecutive rows, a progress bar as wide as its percent, and the one-day
usage chart's axis in days (issue 12 items 9 and 15)."""
from datetime import datetime, timedelta, timezone

import pytest

from extensions import db
from models import JobRun
from tests import factories
from tests.conftest import PASSWORD, make_user
from tests.livesrv import browser_page, live_server, login

pytestmark = pytest.mark.browser

UNREVIEWED_YELLOW = "rgb(255, 248, 225)"  # #fff8e1, static/css/meterdesk.css


def test_needs_review_highlight_shows_on_two_consecutive_rows(app):
    make_user(app, "viewer")
    with app.app_context():
        factories.bucket("Reviewed", reviewed=True)
        factories.bucket("Auto one", reviewed=False)
        factories.bucket("Auto two", reviewed=False)
        db.session.commit()
    with live_server(app) as base, browser_page(base) as page:
        login(page, base, "viewer@example.com", PASSWORD)
        page.goto(f"{base}/admin/bucket/")
        rows = page.locator("table.model-list tbody tr")
        assert rows.count() == 3  # newest first: Auto two (odd, striped), Auto one (even), Reviewed
        backgrounds = [rows.nth(i).evaluate("r => getComputedStyle(r).backgroundColor") for i in range(3)]
        assert backgrounds[0] == backgrounds[1] == UNREVIEWED_YELLOW
        assert backgrounds[2] != UNREVIEWED_YELLOW
        assert page.locator("h4.page-heading").inner_text() == "Billing Buckets"
        assert page.console_errors == [] and page.foreign_requests == []


@pytest.mark.parametrize(("status", "percent"), [("running", 3), ("running", 37), ("done", 100)])
def test_progress_bar_width_matches_its_percent(app, status, percent):
    make_user(app, "staff")
    with app.app_context():
        db.session.add(JobRun(kind="billing", parameters={"period": "2026-10"}, lock_key="billing:2026-10",
                              status=status, progress=percent, message="rating buckets"))
        db.session.commit()
    with live_server(app) as base, browser_page(base) as page:
        login(page, base, "staff@example.com", PASSWORD)
        page.goto(f"{base}/admin/billingreading/")
        bar = page.locator(".run-billing ~ .job-status .progress-bar")
        assert bar.inner_text() == f"{percent}%"
        page.wait_for_timeout(700)  # Bootstrap animates the width for 0.6 s
        ratio = bar.evaluate("b => b.getBoundingClientRect().width / b.parentElement.clientWidth")
        assert ratio == pytest.approx(percent / 100, abs=0.01)
        assert page.console_errors == [] and page.foreign_requests == []


def test_one_day_usage_chart_has_day_ticks(app):
    make_user(app, "viewer")
    day = (datetime.now(timezone.utc) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    with app.app_context():
        asset = factories.asset("vm-1", factories.client())
        factories.readings(asset, [((day + timedelta(hours=h)).isoformat(), "2") for h in (1, 5, 9)])
        db.session.commit()
        asset_id = asset.id
    with live_server(app) as base, browser_page(base) as page:
        login(page, base, "viewer@example.com", PASSWORD)
        page.goto(f"{base}/admin/assets/page/{asset_id}")
        page.wait_for_selector(".asset-usage .xtick text")
        ticks = page.locator(".asset-usage .xtick text").all_text_contents()
        assert f"{day:%b} {day.day}" in ticks
        assert 2 <= len(ticks) <= 10
        assert all(":" not in tick and len(tick.split()) == 2 for tick in ticks), ticks
        assert page.console_errors == [] and page.foreign_requests == []

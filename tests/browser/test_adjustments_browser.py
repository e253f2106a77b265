"""In a real browser with a real `rq worker --burst`: an admin posts late usage as adjustments from Billing Readings
and sees the adjustment lines in the open period."""
from __future__ import annotations

import os

import pytest

from tests.conftest import PASSWORD, make_user
from tests.livesrv import browser_page, live_server, login
from tests.browser.test_billing_browser import worker_burst
from tests.views.test_terms_pages import finalized_september_with_a_late_reading

pytestmark = pytest.mark.browser


def shot(page, name: str) -> None:
    """Keep a screenshot when METERDESK_SCREENSHOTS names a folder (to look at the pages)."""
    folder = os.environ.get("METERDESK_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def test_admin_posts_adjustments_from_the_page_and_sees_them_in_the_open_period(app):
    storage = finalized_september_with_a_late_reading(app)
    make_user(app, "admin")
    with live_server(app) as base, browser_page(base) as page:
        login(page, base, "admin@example.com", PASSWORD)
        page.goto(f"{base}/admin/billingreading/")
        row = page.locator("table.late-periods tr[data-period='2026-09']")
        assert row.locator(".late-count").inner_text() == "1"
        assert row.locator(".late-difference").inner_text() == "$15.00"
        shot(page, "billing-late-usage")
        row.locator("select[name=into]").select_option("2026-10")
        row.locator("button:has-text('Post adjustments')").click()
        page.wait_for_selector(".alert:has-text('Posting adjustments for 2026-09 into 2026-10 started')")
        job = page.locator(".late-usage .job-status")
        assert job.get_attribute("data-job-status") == "queued"
        worker_burst(app)
        job.locator(".job-state:text-is('done')").wait_for(timeout=15000)
        assert "Posted 1 adjustment line(s) for 2026-09 into 2026-10, total $15.00" in job.locator(
            ".job-message").inner_text()
        page.goto(f"{base}/admin/billingreading/?flt1_0=2026-10")
        lines = page.locator("table.model-list tbody tr")
        assert lines.count() == 1
        assert lines.first.locator(".adjustment-of").inner_text() == "adjusts 2026-09"
        assert "$15.00" in lines.first.inner_text() and f">{storage}<" in lines.first.inner_html()
        assert page.locator("table.client-summary", has_text="$15.00").count() == 1
        row = page.locator("table.late-periods tr[data-period='2026-09']")
        assert "1 line(s) into 2026-10: $15.00 (not finalized)" in row.inner_text()
        shot(page, "billing-adjustment-lines")
        page.goto(f"{base}/admin/true-ups/")
        page.locator("table.true-ups tr[data-bucket-id]").first.wait_for()
        shot(page, "true-ups")
        page.goto(f"{base}/admin/bucket/details/?id={storage}")
        shot(page, "bucket-terms")
        assert page.console_errors == [] and page.foreign_requests == []

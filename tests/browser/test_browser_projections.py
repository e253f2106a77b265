"""In a real browser: staff press "Run projections", a worker runs it, the progress bar ends at done."""
import pytest

from billing.periods import current_period_start
from extensions import db
from tests.conftest import PASSWORD, make_user, work_jobs
from tests.jobs.test_projections_run import build_provider
from tests.livesrv import browser_page, live_server, login

pytestmark = pytest.mark.browser


def test_run_projections_button_and_live_progress(app):
    make_user(app, "staff")
    with app.app_context():
        build_provider(ts_base=current_period_start())
    try:
        with live_server(app) as base, browser_page(base) as page:
            login(page, base, "staff@example.com", PASSWORD)
            page.goto(f"{base}/admin/projection/")
            assert page.locator("text=No projections").count() == 1
            page.click("button:has-text('Run projections')")
            page.wait_for_selector(".job-status[data-job-status='queued']")
            work_jobs(app)
            page.wait_for_selector(".job-status[data-job-status='done']", timeout=10000)
            assert page.locator(".job-state").inner_text() == "done"
            assert "Projected 3 buckets" in page.locator(".job-message").inner_text()
            page.reload()
            assert page.locator("tr.over-commit").count() >= 1
            assert page.console_errors == [] and page.foreign_requests == []
    finally:
        with app.app_context():
            db.engine.dispose()

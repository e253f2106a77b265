"""In a real browser with a real `flask --app app worker --burst`: run billing from the page, watch the job finish, export, download."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, make_user
from tests.jobs.test_billing_jobs import two_unit_types
from tests.livesrv import browser_page, live_server, login

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


def worker_burst(app) -> None:
    """`flask --app app worker --burst` in its own process, configured through the environment as in production."""
    env = dict(os.environ, DATABASE_URL=app.config["DATABASE_URL"], REDIS_URL=app.config["REDIS_URL"],
               SECRET_KEY=app.config["SECRET_KEY"], METERDESK_INSTANCE=app.config["INSTANCE_DIR"])
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "worker", "--burst", app.config["RQ_QUEUE"]],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_admin_runs_billing_from_the_page_and_downloads_the_export(app, tmp_path):
    two_unit_types(app)
    make_user(app, "admin")
    with live_server(app) as base, browser_page(base) as page:
        login(page, base, "admin@example.com", PASSWORD)
        page.goto(f"{base}/admin/billingreading/")
        assert page.locator("text=No data loaded").count() == 1
        page.fill("input[type=month][name=period]", "2026-10")
        page.click("button:has-text('Run Billing')")
        page.wait_for_selector(".alert:has-text('Billing 2026-10 started')")
        billing_box = page.locator(".run-billing ~ .job-status")
        assert billing_box.get_attribute("data-job-status") == "queued"
        worker_burst(app)
        billing_box.locator(".job-state:text-is('done')").wait_for(timeout=15000)
        assert billing_box.locator(".progress-bar").inner_text() == "100%"
        assert "2 bucket(s) billed, total $271.50" in billing_box.locator(".job-message").inner_text()

        page.reload()
        assert page.locator("table.model-list tbody tr").count() == 2
        assert page.locator("table.client-summary", has_text="$261.50").count() == 1
        assert "most recently loaded period (2026-10)" in page.locator(".export-help").inner_text()
        page.click("button:has-text('Export CSV')")
        page.wait_for_selector(".alert:has-text('Export of 2026-10 started')")
        worker_burst(app)
        export_box = page.locator(".export-csv ~ .job-status")
        download_link = export_box.locator("a.job-download:not(.d-none)")
        download_link.wait_for(timeout=15000)
        with page.expect_download() as info:
            download_link.click()
        saved = tmp_path / info.value.suggested_filename
        info.value.save_as(saved)
        assert saved.name.startswith("export-2026-10-")
        assert sorted(zipfile.ZipFile(saved).namelist()) == ["cpu.csv", "gb.csv"]

        page.on("dialog", lambda dialog: dialog.accept())
        page.click("button:has-text('Finalize 2026-10')")
        page.wait_for_selector(".alert:has-text('Finalizing 2026-10 started')")
        worker_burst(app)
        billing_box.locator(".job-state:text-is('done')").wait_for(timeout=15000)
        page.reload()
        assert page.locator("table.model-list tbody td.col-finalized:has-text('Yes')").count() == 2
        assert page.console_errors == [] and page.foreign_requests == []

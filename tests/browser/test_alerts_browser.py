"""In a real browser: the Silent page, the dashboard's silent tile and anomalies, a flagged bucket page, and an admin
making a webhook, sending it a test event and reading the delivery log, with no console errors and nothing fetched
from outside 127.0.0.1."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from extensions import db
from tests.conftest import work_jobs
from jobs.redis import get_queue, get_redis
from models import utcnow
from webhooks.signing import signature_matches
from tests.conftest import PASSWORD, make_user
from tests.livesrv import browser_page, live_server, login
from tests.webhooks.helpers import asset, bucket, last_periods, line, owner, projection, read, unit
from tests.webhooks.receiver import receiver

pytestmark = pytest.mark.browser
SHOTS = "/tmp/meterdesk_alerts_{}.png"


@pytest.fixture
def alerts(app):
    make_user(app, "admin")
    with app.app_context():
        now = utcnow()
        gb, cpu = unit("gb"), unit("cpu", silent_after_hours=6)
        acme = owner("Acme Hosting")
        vms = [asset(f"vm-{n}", acme) for n in range(1, 4)]
        storage = bucket("Storage", gb, vms[:2], client=acme, commit="100")
        bucket("Compute", cpu, [vms[2]], client=acme, commit="50")
        read(vms[0], gb, now - timedelta(hours=30))
        read(vms[1], gb, now - timedelta(hours=2))
        read(vms[2], cpu, now - timedelta(hours=9))
        for period, usage in zip(last_periods(3), ("90", "100", "110")):
            line(storage, period, usage)
        projection(storage, "180")
        db.session.commit()
        return {"storage": storage.id, "acme": acme.id}


def test_silent_assets_anomalies_and_webhooks_in_a_browser(app, alerts):
    with receiver() as hook_server, live_server(app) as base, browser_page(base) as page:
        login(page, base, "admin@example.com", PASSWORD)
        page.goto(f"{base}/admin/")
        assert page.locator("[data-tile=silent] .tile-value").inner_text() == "2"
        anomaly = page.locator(f"table.usage-anomalies tr[data-bucket-id='{alerts['storage']}']")
        assert "180" in anomaly.inner_text() and "+80.0%" in anomaly.inner_text()
        page.screenshot(path=SHOTS.format("dashboard"), full_page=True)

        page.click("[data-tile=silent]")
        page.wait_for_url(f"{base}/admin/assets/silent/")
        rows = page.locator("table.silent-assets tbody tr")
        assert rows.count() == 2 and rows.nth(0).locator("td").nth(0).inner_text().startswith("vm-1")
        page.screenshot(path=SHOTS.format("silent"), full_page=True)

        page.goto(f"{base}/admin/bucket/details/?id={alerts['storage']}")
        assert "Usage anomaly:" in page.locator(".usage-anomaly").inner_text()
        page.screenshot(path=SHOTS.format("bucket"), full_page=True)

        page.goto(f"{base}/admin/clients/{alerts['acme']}")
        assert page.locator(".open-issues .silent-issues li").count() == 2
        page.screenshot(path=SHOTS.format("client"), full_page=True)

        page.click("a.dropdown-toggle:has-text('Settings')")
        page.click("a[href='/admin/webhook/']")
        page.wait_for_url(f"{base}/admin/webhook/")
        page.goto(f"{base}/admin/webhook/new/")
        page.fill("input[name=url]", hook_server.url)
        page.check("input[name=event_types][value='asset.silent']")
        page.check("input[name=event_types][value='usage.anomaly']")
        page.screenshot(path=SHOTS.format("webhook_form"), full_page=True)
        page.click("input[type=submit][value='Save']")
        secret = page.locator("code.new-webhook-secret").inner_text()
        assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{43}", secret)
        page.screenshot(path=SHOTS.format("webhook_secret"), full_page=True)

        page.click("text=Done")
        page.wait_for_url(f"{base}/admin/webhook/")
        page.locator("input[name=rowid]").first.check()
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("a.dropdown-toggle:has-text('With selected')")
        page.click("a:has-text('Send test event')")
        page.wait_for_selector("text=Test event queued for 1 webhook(s)")
        page.screenshot(path=SHOTS.format("webhooks"), full_page=True)
        with app.app_context():
            work_jobs(app)
        [got] = hook_server.wait_for(1)
        assert signature_matches(secret, got.body, got.headers["X-Meterdesk-Signature"])

        page.click("text=Deliveries")
        assert "webhook.test" in page.locator("table.model-list").inner_text()
        page.screenshot(path=SHOTS.format("deliveries"), full_page=True)
        assert page.console_errors == [] and page.foreign_requests == []

"""A newcomer in a real browser: log in, open a client from the Clients grid, follow every link on the client page
and on a bucket page and check the rows that arrive; Billing Readings offers no Finalize that would fail.

Set SCREENSHOT_DIR to keep screenshots of the client, bucket, unbound and billing pages."""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone

import pytest

from billing.periods import current_period_start, period_label, previous_period
from extensions import db
from tests import factories as f
from tests.conftest import PASSWORD, make_user
from tests.livesrv import browser_page, live_server, login

pytestmark = pytest.mark.browser


def shot(page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def grid_rows(page) -> list[str]:
    """The text of each data row of the grid on the page."""
    return [text.strip() for text in page.locator("table.model-list tbody tr").all_inner_texts()
            if "No " not in text[:4]]


def record_links(page) -> list[str]:
    """Every link inside the record page's content (not the navigation bar), in page order, without repeats."""
    found = page.eval_on_selector_all(".record-page a[href]", "links => links.map(a => a.getAttribute('href'))")
    return list(dict.fromkeys(found))


def add_unbound_and_new(app, acme_id: int) -> None:
    """Acme gets an unacknowledged asset `acme-new-1` reporting vm-hours this month with no bucket binding it."""
    start = current_period_start(datetime.now(timezone.utc))
    with app.app_context():
        from models import Client, UnitType

        acme = db.session.get(Client, acme_id)
        asset = f.asset("acme-new-1", acme)
        asset.acknowledged = False
        vm = db.session.query(UnitType).filter_by(name="vm-hours").one()
        f.readings(asset, [(start.isoformat(), "12.5")], vm)
        db.session.commit()


def test_newcomer_follows_every_link_of_a_client_and_a_bucket(app, provider):
    make_user(app, "admin")
    add_unbound_and_new(app, provider["acme"])
    this = period_label(current_period_start(datetime.now(timezone.utc)))
    with live_server(app) as base, browser_page(base) as page:
        login(page, base, "admin@example.com", PASSWORD)
        page.click("nav >> text=Clients")
        page.click("table.model-list >> text=Acme")
        page.wait_for_url(f"{base}/admin/clients/{provider['acme']}")
        client_url = page.url
        assert page.locator("h4").inner_text().startswith("Acme")
        assert page.locator("table.client-buckets tbody tr").count() == 2
        assert page.locator(".client-issues .issue-unbound").inner_text().count("acme-new-1 (vm-hours)") == 1
        assert page.locator("#chart-billing-history .plot-container").count() == 1
        shot(page, "client")

        seen = []
        for href in record_links(page):
            page.goto(base + href)
            seen.append(href)
            assert page.locator(".alert-danger").count() == 0, href
            if "/admin/bucket/" in href:
                rows = grid_rows(page)
                assert len(rows) == 2 and all("Acme" in row for row in rows), (href, rows)
            elif "/admin/billingreading/" in href:
                rows = grid_rows(page)
                assert len(rows) == 4 and all(row.startswith("Acme") for row in rows), (href, rows)
            elif "/admin/assets/unbound/" in href or "/admin/assets/new/" in href:
                rows = grid_rows(page)
                assert len(rows) == 1 and "acme-new-1" in rows[0], (href, rows)
            elif "/admin/asset/" in href:
                rows = grid_rows(page)
                assert len(rows) == 1 and "Acme" in rows[0], (href, rows)
            elif "/admin/assets/page/" in href:
                assert page.locator("h4").inner_text().startswith("acme-new-1")
            elif "/admin/buckets/page/" in href:
                assert page.locator("h4").inner_text().split("\n")[0].strip() in ("Acme VMs", "Acme Storage")
            else:
                raise AssertionError(f"unexpected link {href} on the client page")
        assert sum("/admin/buckets/page/" in h for h in seen) == 2 and len(seen) >= 7

        page.goto(client_url)
        page.click("table.client-buckets >> text=Acme VMs")
        page.wait_for_url(f"{base}/admin/buckets/page/{provider['acme_vm']}")
        assert page.locator("table.bucket-history tbody tr").count() == 3
        body = page.locator(".record-page").inner_text()
        assert "1.000000" not in body and "True" not in body and not re.search(r":\d\d\.\d{6}", body)
        assert "$1.00 per unit" in body and "$2.00 per unit" in body
        shot(page, "bucket")
        for href in record_links(page):
            page.goto(base + href)
            if href.startswith("/admin/clients/"):
                assert page.locator("h4").inner_text().startswith("Acme")
            elif "/admin/unittype/" in href:
                rows = grid_rows(page)
                assert len(rows) == 1 and rows[0].startswith("vm-hours"), rows
            elif "/admin/billingreading/" in href:
                rows = grid_rows(page)
                assert len(rows) == 3 and all(row.startswith("Acme") for row in rows), rows
            elif "/admin/bucket/edit/" in href:
                assert page.locator("input[name=name]").input_value() == "Acme VMs"
            else:
                raise AssertionError(f"unexpected link {href} on the bucket page")

        page.goto(f"{base}/admin/assets/unbound/")
        cell = page.locator("td.col-unbound").first.inner_text()
        assert "vm-hours: 12.5 (sum)" in cell and "$25.00" in cell
        shot(page, "unbound")

        page.goto(f"{base}/admin/billingreading/")
        assert this in page.locator(".export-help").inner_text()
        last = period_label(previous_period(current_period_start(datetime.now(timezone.utc))))
        assert page.locator(".finalize-period button").all_inner_texts() == [f"Finalize {last}"]
        assert page.locator(f"text=Finalize {this}").count() == 0
        page.fill("#billing-period", this)
        page.dispatch_event("#billing-period", "input")
        assert page.locator("#billing-finalize").is_disabled()
        shot(page, "billing")
        page.on("dialog", lambda dialog: dialog.accept())
        page.click(".finalize-period button")
        page.wait_for_load_state()
        assert f"Finalizing {last} started" in page.locator(".alert").first.inner_text()
        assert page.console_errors == [] and page.foreign_requests == []

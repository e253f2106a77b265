"""In a real browser: names made of markup stay text on the pages with charts; no script of theirs runs, the charts
still draw under the CSP, and nothing is loaded from outside."""
from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, make_user
from tests.hardening.test_hardening_input import COMMENT_OPEN, XSS, hostile_billed_period
from tests.livesrv import browser_page, live_server, login

pytestmark = pytest.mark.browser


def test_a_client_named_like_a_script_runs_nothing_and_the_charts_draw(app):
    ids = hostile_billed_period(app)
    make_user(app, "admin")
    with live_server(app) as base, browser_page(base) as page:
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        login(page, base, "admin@example.com", PASSWORD)
        page.goto(f"{base}/admin/")
        page.locator("#chart-revenue-by-source .plot-container").wait_for(state="attached", timeout=15000)
        assert COMMENT_OPEN in page.locator("#chart-revenue-by-source").inner_text()
        page.goto(f"{base}/admin/clients/{ids[XSS]}")
        assert page.locator("h4").filter(has_text=XSS).count() == 1
        page.locator("#chart-billing-history .plot-container").wait_for(state="attached", timeout=15000)
        page.goto(f"{base}/admin/client/")
        assert page.locator("table.model-list", has_text=XSS).count() == 1
        assert dialogs == [] and page.console_errors == [] and page.foreign_requests == []
